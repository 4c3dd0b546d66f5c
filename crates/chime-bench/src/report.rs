//! Results: figures (chime, a peer, the ratio and the goal), the scale curve, and how they print
//! as a table or as JSON.

use serde::Serialize;

/// What a figure's numbers count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Unit {
    /// Nanoseconds (per operation, or a lateness).
    Nanos,
    /// Bytes (per timer, or in total).
    Bytes,
    /// A plain count.
    Count,
    /// A factor (a speed-up).
    Factor,
}

/// Which way is better for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Better {
    /// Smaller numbers win (time, memory).
    Lower,
    /// Larger numbers win (speed-ups).
    Higher,
}

/// A goal (see the goals table in this crate's README) and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Goal {
    /// The goal as the table states it, e.g. `>= 5x`.
    pub(crate) text: String,
    /// Whether the figure meets it.
    pub(crate) met: bool,
}

/// One measured figure: chime, optionally a peer, the ratio and the goal.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// The workload it belongs to (1-8).
    pub(crate) workload: u8,
    /// What was measured, e.g. `arm+cancel 1M pending`.
    pub(crate) name: String,
    /// The unit of `chime` and `peer`.
    pub(crate) unit: Unit,
    /// Which way is better.
    pub(crate) better: Better,
    /// chime's figure.
    pub(crate) chime: f64,
    /// The peer's name, e.g. `tokio sleep`.
    pub(crate) peer_name: Option<String>,
    /// The peer's figure.
    pub(crate) peer: Option<f64>,
    /// How many times better chime is than the peer (above 1: chime wins).
    pub(crate) ratio: Option<f64>,
    /// The goal, where there is one.
    pub(crate) goal: Option<Goal>,
}

impl Figure {
    /// A figure of chime alone.
    pub(crate) fn new(workload: u8, name: impl Into<String>, unit: Unit, better: Better, chime: f64) -> Self {
        Figure {
            workload,
            name: name.into(),
            unit,
            better,
            chime,
            peer_name: None,
            peer: None,
            ratio: None,
            goal: None,
        }
    }

    /// Adds the peer's figure and the ratio.
    pub(crate) fn vs(mut self, peer_name: impl Into<String>, peer: f64) -> Self {
        let ratio = match self.better {
            Better::Lower => peer / self.chime,
            Better::Higher => self.chime / peer,
        };
        self.peer_name = Some(peer_name.into());
        self.peer = Some(peer);
        self.ratio = ratio.is_finite().then_some(ratio);
        self
    }

    /// Goal: chime at least `min` times better than the peer.
    pub(crate) fn goal_ratio(mut self, min: f64) -> Self {
        let met = self.ratio.is_some_and(|r| r >= min);
        self.goal = Some(Goal { text: format!(">= {min}x"), met });
        self
    }

    /// Goal: chime's figure at least `min` (`text` says it as the goals table does).
    pub(crate) fn goal_min(mut self, min: f64, text: impl Into<String>) -> Self {
        self.goal = Some(Goal { text: text.into(), met: self.chime >= min });
        self
    }

    /// Goal: chime's figure at most `max` (`text` says it as the goals table does).
    pub(crate) fn goal_max(mut self, max: f64, text: impl Into<String>) -> Self {
        self.goal = Some(Goal { text: text.into(), met: self.chime <= max });
        self
    }

    /// The figure as one line, e.g. `arm+cancel 1M: chime 60 ns, tokio 380 ns, 6.3x (goal >= 5x: met)`.
    pub(crate) fn line(&self) -> String {
        let mut line = format!("{}: chime {}", self.name, fmt_value(self.unit, self.chime));
        if let (Some(name), Some(peer)) = (&self.peer_name, self.peer) {
            line += &format!(", {name} {}", fmt_value(self.unit, peer));
        }
        if let Some(ratio) = self.ratio {
            line += &format!(", {}", fmt_ratio(ratio));
        }
        if let Some(goal) = &self.goal {
            line += &format!(" (goal {}: {})", goal.text, met_word(goal.met));
        }
        line
    }
}

/// One point of the scale curve (workload 6).
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct ScalePoint {
    /// Pending chime timers.
    pub(crate) pending: usize,
    /// Wall nanoseconds per arm while filling up to `pending`.
    pub(crate) arm_ns: f64,
    /// Resident bytes added by the timers.
    pub(crate) rss_bytes: u64,
    /// Resident bytes per pending timer.
    pub(crate) bytes_per_timer: f64,
    /// The slowest 1024 consecutive arms while filling, in wall nanoseconds.
    pub(crate) worst_chunk_ns: u64,
}

/// The machine a run happened on.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    /// CPU model (`/proc/cpuinfo`).
    pub(crate) cpu: String,
    /// Logical CPUs available.
    pub(crate) cpus: usize,
    /// Kernel release.
    pub(crate) kernel: String,
}

impl Machine {
    /// Reads the machine's description from `/proc`.
    pub(crate) fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim()))
            .unwrap_or("unknown")
            .to_string();
        let kernel =
            std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
        Machine { cpu, cpus: std::thread::available_parallelism().map_or(1, usize::from), kernel }
    }
}

/// Everything one `compare` run measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// Where it ran.
    pub(crate) machine: Machine,
    /// Whether sizes were shrunk (`--quick`).
    pub(crate) quick: bool,
    /// Every figure, in workload order.
    pub(crate) figures: Vec<Figure>,
    /// The scale curve (workload 6).
    pub(crate) curve: Vec<ScalePoint>,
    /// Remarks the workloads made (method details, anomalies).
    pub(crate) notes: Vec<String>,
    /// Wall seconds the whole run took.
    pub(crate) elapsed_s: f64,
}

impl Report {
    /// An empty report for this machine.
    pub(crate) fn new(quick: bool) -> Self {
        Report {
            machine: Machine::detect(),
            quick,
            figures: Vec::new(),
            curve: Vec::new(),
            notes: Vec::new(),
            elapsed_s: 0.0,
        }
    }

    /// Adds a figure and echoes it to stderr as progress.
    pub(crate) fn push(&mut self, figure: Figure) {
        eprintln!("  {}", figure.line());
        self.figures.push(figure);
    }

    /// Adds a remark.
    pub(crate) fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        eprintln!("  note: {note}");
        self.notes.push(note);
    }

    /// The report as text: the machine, the figures, the scale curve, the goals and the notes.
    pub(crate) fn table(&self) -> String {
        [self.heading(), self.figures_table(), self.curve_table(), self.goals_summary(), self.notes_list()]
            .concat()
    }

    fn heading(&self) -> String {
        let m = &self.machine;
        format!(
            "chime vs tokio, one process, one run{} on {} ({} CPUs, Linux {}), {:.0} s\n",
            if self.quick { " (--quick sizes)" } else { "" },
            m.cpu,
            m.cpus,
            m.kernel,
            self.elapsed_s
        )
    }

    /// One row per figure under a title row per workload.
    fn figures_table(&self) -> String {
        let mut rows: Vec<Row> = Vec::new();
        let mut workload = 0;
        for f in &self.figures {
            if f.workload != workload {
                workload = f.workload;
                rows.push(Row::Title(format!("[{}] {}", workload, workload_title(workload))));
            }
            rows.push(Row::Cells(vec![
                format!("  {}", f.name),
                fmt_value(f.unit, f.chime),
                f.peer_name.clone().unwrap_or_default(),
                f.peer.map(|p| fmt_value(f.unit, p)).unwrap_or_default(),
                f.ratio.map(fmt_ratio).unwrap_or_default(),
                f.goal.as_ref().map_or_else(|| "-".into(), |g| format!("{}: {}", g.text, met_word(g.met))),
            ]));
        }
        // Text columns (name, peer, goal) align left, numbers right.
        render(
            &["figure", "chime", "peer", "peer value", "ratio", "goal"],
            &[true, false, true, false, false, true],
            &rows,
        )
    }

    fn curve_table(&self) -> String {
        if self.curve.is_empty() {
            return String::new();
        }
        let rows: Vec<Row> = self
            .curve
            .iter()
            .map(|p| {
                Row::Cells(vec![
                    crate::measure::size_label(p.pending),
                    format!("{:.1}", p.arm_ns),
                    fmt_value(Unit::Bytes, p.rss_bytes as f64),
                    format!("{:.1}", p.bytes_per_timer),
                    fmt_value(Unit::Nanos, p.worst_chunk_ns as f64),
                ])
            })
            .collect();
        let head = ["pending", "arm ns", "RSS added", "bytes/timer", "slowest 1024 arms"];
        "\nscale curve (chime, one child process per size)\n".to_string() + &render(&head, &[false; 5], &rows)
    }

    fn goals_summary(&self) -> String {
        let goals: Vec<_> = self.figures.iter().filter_map(|f| f.goal.as_ref().map(|g| (f, g))).collect();
        let met = goals.iter().filter(|(_, g)| g.met).count();
        let mut out = format!("\ngoals: {met} of {} met\n", goals.len());
        for (f, _) in goals.iter().filter(|(_, g)| !g.met) {
            out += &format!("  NOT MET: {}\n", f.line());
        }
        out
    }

    fn notes_list(&self) -> String {
        if self.notes.is_empty() {
            return String::new();
        }
        "\nnotes:\n".to_string() + &self.notes.iter().map(|n| format!("  - {n}\n")).collect::<String>()
    }
}

/// A row of a text table: cells, or a title printed across the columns.
enum Row {
    Cells(Vec<String>),
    Title(String),
}

/// Lays `rows` out under `head`, each column as wide as its widest cell; `left[i]` aligns column `i`
/// to the left (text), otherwise to the right (numbers). Titles may overhang.
fn render(head: &[&str], left: &[bool], rows: &[Row]) -> String {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        if let Row::Cells(cells) = row {
            for (w, cell) in widths.iter_mut().zip(cells) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        let mut line = String::new();
        for ((cell, w), left) in cells.iter().zip(&widths).zip(left) {
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            line += &if *left { format!("{cell}{pad}  ") } else { format!("{pad}{cell}  ") };
        }
        line.trim_end().to_string() + "\n"
    };
    let mut out = line(&head.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    out += &line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
    for row in rows {
        out += &match row {
            Row::Cells(cells) => line(cells),
            Row::Title(title) => format!("{title}\n"),
        };
    }
    out
}

/// The heading of workload `n`.
fn workload_title(n: u8) -> &'static str {
    match n {
        1 => "arm + cancel, one thread, current_thread runtime",
        2 => "sleep created + polled once + dropped, 100k pending",
        3 => "expiry of callback timers vs spawned tasks awaiting sleeps, 2 workers",
        4 => "resident memory per pending timer (fresh child process per side)",
        5 => "precision: fire time minus deadline",
        6 => "scale",
        7 => "two threads arming + cancelling at once",
        8 => "durable timers on SQLite (synchronous = FULL)",
        _ => "",
    }
}

fn met_word(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// A ratio as `6.3x`.
pub(crate) fn fmt_ratio(ratio: f64) -> String {
    if ratio >= 10.0 { format!("{ratio:.0}x") } else { format!("{ratio:.2}x") }
}

/// A value with its unit, scaled for reading.
pub(crate) fn fmt_value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Nanos if v.abs() >= 1e6 => format!("{:.2} ms", v / 1e6),
        Unit::Nanos if v.abs() >= 1e4 => format!("{:.1} us", v / 1e3),
        Unit::Nanos => format!("{v:.1} ns"),
        Unit::Bytes if v >= 10.0 * 1024.0 * 1024.0 => format!("{:.0} MiB", v / (1024.0 * 1024.0)),
        Unit::Bytes if v >= 10.0 * 1024.0 => format!("{:.0} KiB", v / 1024.0),
        Unit::Bytes => format!("{v:.1} B"),
        Unit::Count => format!("{v:.0}"),
        Unit::Factor => format!("{v:.2}x"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_and_goal() {
        let f = Figure::new(1, "arm+cancel 1M", Unit::Nanos, Better::Lower, 60.0)
            .vs("tokio", 380.0)
            .goal_ratio(5.0);
        assert_eq!(f.line(), "arm+cancel 1M: chime 60.0 ns, tokio 380.0 ns, 6.33x (goal >= 5x: met)");
        let f = Figure::new(4, "engine", Unit::Bytes, Better::Lower, 70.0).goal_max(64.0, "<= 64 B");
        assert!(!f.goal.unwrap().met);
        let f = Figure::new(7, "speed-up", Unit::Factor, Better::Higher, 1.8).vs("tokio", 0.9);
        assert_eq!(f.ratio, Some(2.0));
    }

    #[test]
    fn table_has_every_figure() {
        let mut r = Report::new(true);
        r.figures.push(Figure::new(1, "a", Unit::Nanos, Better::Lower, 1.0).vs("tokio", 2.0).goal_ratio(5.0));
        r.figures.push(Figure::new(4, "b", Unit::Bytes, Better::Lower, 50.0));
        let t = r.table();
        assert!(t.contains("NOT met") && t.contains("[4]") && t.contains("goals: 0 of 1 met"), "{t}");
    }
}
