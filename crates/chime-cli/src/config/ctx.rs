//! [`Ctx`]: the problems found in one file's text, each at its place, as validation collects them.

use std::ops::Range;

use toml::Spanned;

use super::Problem;

/// Collects problems against one text.
pub(crate) struct Ctx<'a> {
    pub(crate) text: &'a str,
    pub(crate) problems: Vec<Problem>,
}

impl Ctx<'_> {
    pub(crate) fn report(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.problems.push(Problem::at(self.text, span.start, message));
    }

    /// The value of a spanned field through `check`, or a reported problem.
    pub(crate) fn check<T, U>(
        &mut self,
        field: &Spanned<T>,
        check: impl FnOnce(&T) -> Result<U, String>,
    ) -> Option<U> {
        match check(field.get_ref()) {
            Ok(v) => Some(v),
            Err(message) => {
                self.report(field.span(), message);
                None
            }
        }
    }
}
