//! The pure arithmetic of a timer's schedule: its options ([`Plan`]), its recurring grid
//! ([`Grid`]) and the jitter draw. No clock, no tokio: the driver passes "now" in.

use super::Missed;
use crate::error::Error;

/// How a timer is (re)armed: its options, validated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Nanoseconds: the interval of a recurring timer, the delay of a one-shot.
    pub(crate) interval: u64,
    pub(crate) recurring: bool,
    pub(crate) immediate: bool,
    /// Initial delay of a recurring timer, distinct from the interval (TINN's `Delay`).
    pub(crate) first: Option<u64>,
    /// Upper bound (exclusive) of the random delay added once.
    pub(crate) jitter: u64,
    pub(crate) missed: Missed,
}

/// A recurring timer's grid: run `k` is due at `anchor + k * interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grid {
    pub(crate) anchor: u64,
    /// The grid index of the armed run.
    pub(crate) k: u64,
    /// The armed run is off the grid (the immediate first run): the next run is `k`, not `k + 1`.
    pub(crate) off_grid: bool,
}

impl Plan {
    /// Checks the options that do not depend on the clock.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.immediate && !self.recurring {
            return Err(Error::invalid(
                "immediate",
                "requires .recurring(): a one-shot runs once, after its delay",
            ));
        }
        if self.first.is_some() && !self.recurring {
            return Err(Error::invalid("first", "requires .recurring(): a one-shot's delay is its interval"));
        }
        if self.first.is_some() && self.immediate {
            return Err(Error::invalid(
                "first",
                "conflicts with .immediate(): both set when the first run is",
            ));
        }
        if self.recurring && self.interval == 0 {
            return Err(Error::invalid("interval", "a recurring timer needs a non-zero interval"));
        }
        if self.missed != Missed::Skip && !self.recurring {
            return Err(Error::invalid("missed", "requires .recurring(): a one-shot has no ticks to miss"));
        }
        Ok(())
    }

    /// Arms the plan at `now` with the random `jitter` draw (in `[0, self.jitter)`): the first deadline
    /// and, for a recurring timer, its grid.
    pub(crate) fn start(&self, now: u64, jitter: u64) -> Result<(u64, Option<Grid>), Error> {
        debug_assert!(jitter < self.jitter.max(1));
        let err = Error::out_of_range;
        let (delay, option) = match self.first {
            Some(first) => (first, "first"),
            None => (self.interval, "interval"),
        };
        let base = now.checked_add(delay).ok_or_else(|| err(option))?;
        // Checked against the bound, not the draw, so the answer does not depend on chance.
        base.checked_add(self.jitter).ok_or_else(|| err("jitter"))?;
        let anchor = base + jitter;
        if !self.recurring {
            return Ok((anchor, None));
        }
        // The grid must reach at least its second tick, or a recurring timer would stop silently.
        anchor.checked_add(self.interval).ok_or_else(|| err("interval"))?;
        let deadline = if self.immediate { now } else { anchor };
        Ok((deadline, Some(Grid { anchor, k: 0, off_grid: self.immediate })))
    }
}

impl Grid {
    /// The next deadline after a run that ended at `now`, and the ticks it skips, under `missed`.
    pub(crate) fn advance(&mut self, interval: u64, missed: Missed, now: u64) -> (u64, u64) {
        let next = if self.off_grid { self.k } else { self.k + 1 };
        self.off_grid = false;
        let at = |k: u64| self.anchor.saturating_add(k.saturating_mul(interval));
        match missed {
            Missed::Burst => {
                self.k = next;
                (at(next), 0)
            }
            Missed::Skip => {
                let due = at(next);
                if due > now {
                    self.k = next;
                    return (due, 0);
                }
                // Overran: run once now, for the latest tick that has passed.
                let latest = (now - self.anchor) / interval;
                self.k = latest;
                (at(latest), latest - next)
            }
            Missed::Delay => {
                self.anchor = now.saturating_add(interval);
                self.k = 0;
                (self.anchor, 0)
            }
        }
    }

    /// Under [`Missed::Skip`], a run found due at `now` stands for every tick that has passed: it runs
    /// once, for the latest. Returns that tick's deadline and how many due runs it replaces, or `None`
    /// when only the armed run is due.
    pub(crate) fn catch_up(&mut self, interval: u64, now: u64) -> Option<(u64, u64)> {
        if now < self.anchor {
            return None;
        }
        let latest = (now - self.anchor) / interval;
        let skipped = if self.off_grid {
            latest + 1 // the immediate run, and grid ticks 0 ..= latest
        } else if latest > self.k {
            latest - self.k
        } else {
            return None;
        };
        self.k = latest;
        self.off_grid = false;
        Some((self.anchor.saturating_add(latest.saturating_mul(interval)), skipped))
    }

    /// The armed run becomes "at `deadline`", and the grid continues from there (Knot's reschedule).
    pub(crate) fn restart_at(deadline: u64) -> Grid {
        Grid { anchor: deadline, k: 0, off_grid: false }
    }
}

/// A uniform draw in `[0, bound)`, or 0 without jitter.
pub(crate) fn draw(bound: u64) -> u64 {
    if bound == 0 { 0 } else { rand::random_range(0..bound) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recurring(interval: u64) -> Plan {
        Plan { interval, recurring: true, ..Plan::default() }
    }

    #[test]
    fn grid_is_drift_free_and_skip_realigns() {
        let plan = recurring(100);
        let (first, grid) = plan.start(0, 0).unwrap();
        let mut grid = grid.unwrap();
        assert_eq!(first, 100);
        assert_eq!(grid.advance(100, Missed::Skip, 130), (200, 0), "a slow run does not shift the grid");
        // The run due at 200 ends at 470: ticks 300 and 400 passed; run now for 400, report 1 skipped.
        assert_eq!(grid.advance(100, Missed::Skip, 470), (400, 1));
        assert_eq!(grid.advance(100, Missed::Skip, 471), (500, 0));
    }

    #[test]
    fn catch_up_runs_once_for_the_latest_passed_tick() {
        let mut grid = Grid { anchor: 100, k: 0, off_grid: false };
        assert_eq!(grid.catch_up(100, 199), None, "only the armed tick is due");
        assert_eq!(grid.catch_up(100, 350), Some((300, 2)), "ticks 100 and 200 are skipped");
        assert_eq!(grid.advance(100, Missed::Skip, 350), (400, 0));
        let mut immediate = Grid { anchor: 100, k: 0, off_grid: true };
        assert_eq!(immediate.catch_up(100, 99), None);
        assert_eq!(immediate.catch_up(100, 100), Some((100, 1)), "the immediate run is skipped");
    }

    #[test]
    fn burst_runs_every_tick_and_delay_rebases() {
        let mut grid = Grid { anchor: 100, k: 0, off_grid: false };
        assert_eq!(grid.advance(100, Missed::Burst, 450), (200, 0));
        assert_eq!(grid.advance(100, Missed::Burst, 450), (300, 0));
        assert_eq!(grid.advance(100, Missed::Delay, 450), (550, 0));
        assert_eq!(grid.advance(100, Missed::Delay, 560), (660, 0));
    }

    #[test]
    fn immediate_runs_now_and_jitter_lands_on_the_second_run() {
        let plan = Plan { immediate: true, jitter: 50, ..recurring(100) };
        let (first, grid) = plan.start(1000, 7).unwrap();
        assert_eq!(first, 1000, "no jitter on the immediate run");
        let mut grid = grid.unwrap();
        assert_eq!(grid.advance(100, Missed::Skip, 1000), (1107, 0));
        assert_eq!(grid.advance(100, Missed::Skip, 1107), (1207, 0));
    }

    #[test]
    fn first_delay_is_distinct_from_the_interval() {
        let plan = Plan { first: Some(1000), ..recurring(300) };
        let (first, grid) = plan.start(0, 0).unwrap();
        assert_eq!(first, 1000);
        assert_eq!(grid.unwrap().advance(300, Missed::Skip, 1000), (1300, 0));
    }

    #[test]
    fn invalid_plans_name_the_option() {
        let name = |plan: Plan| match plan.validate() {
            Err(Error::InvalidOption(o)) => o.option(),
            other => panic!("expected InvalidOption, got {other:?}"),
        };
        assert_eq!(name(Plan { immediate: true, ..Plan::default() }), "immediate");
        assert_eq!(name(Plan { interval: 0, ..recurring(0) }), "interval");
        assert_eq!(name(Plan { first: Some(5), ..Plan::default() }), "first");
        assert_eq!(name(Plan { first: Some(5), immediate: true, ..recurring(5) }), "first");
        assert_eq!(name(Plan { missed: Missed::Burst, ..Plan::default() }), "missed");
        let overflow = Plan { jitter: u64::MAX, ..recurring(5) }.start(10, 0);
        assert!(matches!(overflow, Err(Error::InvalidOption(ref o)) if o.option() == "jitter"));
    }
}
