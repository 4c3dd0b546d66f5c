//! A run's output: relayed line by line into the daemon's log (with job, tick, fence and stream),
//! and its tail kept for the run history.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// Bytes of output kept per run.
pub(crate) const TAIL_BYTES: usize = 4096;
/// A longer line is relayed in pieces of this size.
const MAX_LINE: u64 = 16 * 1024;

/// The last [`TAIL_BYTES`] of a run's output.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    text: String,
    truncated: bool,
}

impl Tail {
    pub(crate) fn push(&mut self, line: &str) {
        self.text.push_str(line);
        if !line.ends_with('\n') {
            self.text.push('\n');
        }
        if self.text.len() > TAIL_BYTES {
            let mut cut = self.text.len() - TAIL_BYTES;
            // Always whole characters, and whole lines where one fits.
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            if let Some(newline) = self.text[cut..].find('\n').filter(|&i| i + 1 < self.text.len() - cut) {
                cut += newline + 1;
            }
            self.text.drain(..cut);
            self.truncated = true;
        }
    }

    pub(crate) fn take(&mut self) -> (String, bool) {
        (std::mem::take(&mut self.text), self.truncated)
    }
}

/// Who a line belongs to, for the log.
#[derive(Debug, Clone)]
pub(crate) struct RunLog {
    pub(crate) job: Arc<str>,
    pub(crate) tick: Arc<str>,
    pub(crate) fence: u64,
    pub(crate) run_id: Arc<str>,
}

/// Reads `reader` to its end, logging each line and keeping the tail.
pub(crate) async fn relay(
    reader: impl AsyncRead + Unpin,
    stream: &'static str,
    log: RunLog,
    tail: Arc<Mutex<Tail>>,
) {
    // Small: thousands of runs may be in flight, most of them silent.
    let mut reader = BufReader::with_capacity(1024, reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let shown = line.trim_end_matches(['\n', '\r']);
        tracing::info!(
            target: "chime::job",
            job = %log.job, tick = %log.tick, fence = log.fence, run_id = %log.run_id, stream,
            "{shown}"
        );
        tail.lock().unwrap_or_else(PoisonError::into_inner).push(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_whole_lines() {
        let mut tail = Tail::default();
        tail.push("first\n");
        tail.push("no newline");
        assert_eq!(tail.take(), ("first\nno newline\n".to_string(), false));
        for i in 0..1000 {
            tail.push(&format!("line {i}\n"));
        }
        let (text, truncated) = tail.take();
        assert!(truncated && text.len() <= TAIL_BYTES);
        assert!(text.starts_with("line ") && text.ends_with("line 999\n"), "{text:?}");
        let mut wide = Tail::default();
        wide.push(&"é".repeat(3000));
        let (text, _) = wide.take();
        assert!(text.len() <= TAIL_BYTES && text.ends_with("é\n"));
    }
}
