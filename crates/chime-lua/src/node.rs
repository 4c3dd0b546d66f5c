//! [`Node`]: what one worker of a run shares with its siblings (`--workers N`): its id and their
//! count, the run's directory (the default cluster store, the shared dictionaries, the control
//! sockets), the cluster store and the `ngx.shared` dictionaries.
//!
//! A single process (no `--workers`) is worker 0 of 1; its run directory is made on first use
//! and removed when the runtime is dropped (or `os.exit` ends the process).

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use crate::shdict::Shdicts;
use crate::store::{Store, StoreUrl};

/// How a worker sits in its run: see [`RuntimeBuilder::node`](crate::RuntimeBuilder::node).
#[derive(Debug, Clone, Default)]
pub struct NodeConfig {
    /// This worker's id, `0..workers`.
    pub worker_id: u32,
    /// How many workers the run has (0 is taken as 1).
    pub workers: u32,
    /// The run's directory, shared by its workers; `None`: a temporary one, made when first needed.
    pub run_dir: Option<PathBuf>,
    /// The cluster store (`--store`); `None`: an SQLite file in the run's directory.
    pub store: Option<StoreUrl>,
    /// The `ngx.shared` dictionaries (`--shdict NAME[=SIZE]`): name and capacity in bytes.
    pub shdicts: Vec<(String, u64)>,
}

enum RunDir {
    Given(PathBuf),
    Owned(tempfile::TempDir),
}

/// A worker's share of its run (lives on the Lua thread).
pub(crate) struct Node {
    pub(crate) config: NodeConfig,
    dir: RefCell<Option<RunDir>>,
    store: RefCell<Option<Store>>,
    shdicts: RefCell<Option<Rc<RefCell<Shdicts>>>>,
}

impl Node {
    pub(crate) fn new(mut config: NodeConfig) -> Node {
        config.workers = config.workers.max(1);
        let dir = config.run_dir.clone().map(RunDir::Given);
        Node { config, dir: RefCell::new(dir), store: RefCell::new(None), shdicts: RefCell::new(None) }
    }

    /// The run's directory, made now if it is this process's own.
    pub(crate) fn dir(&self) -> Result<PathBuf, String> {
        let mut dir = self.dir.borrow_mut();
        if dir.is_none() {
            let made = tempfile::Builder::new()
                .prefix("chime-lua-")
                .tempdir()
                .map_err(|e| format!("cannot make the run's directory: {e}"))?;
            *dir = Some(RunDir::Owned(made));
        }
        Ok(match dir.as_ref() {
            Some(RunDir::Given(path)) => path.clone(),
            Some(RunDir::Owned(t)) => t.path().to_path_buf(),
            None => unreachable!("made above"),
        })
    }

    /// Removes the run's directory if this process made it (before `os.exit` ends the process).
    pub(crate) fn cleanup(&self) {
        self.shdicts.borrow_mut().take();
        if let Some(RunDir::Owned(dir)) = self.dir.borrow_mut().take() {
            let _ = dir.close();
        }
    }

    /// The cluster store, connected on first use.
    pub(crate) fn store(&self, rt: &tokio::runtime::Runtime) -> Result<Store, String> {
        if let Some(store) = self.store.borrow().as_ref() {
            return Ok(store.clone());
        }
        let url = match &self.config.store {
            Some(url) => url.clone(),
            None => StoreUrl::Sqlite(self.dir()?.join("cluster.sqlite")),
        };
        let store = Store::connect(&url, rt)?;
        *self.store.borrow_mut() = Some(store.clone());
        Ok(store)
    }

    /// The shared dictionaries, opened on first use.
    pub(crate) fn shdicts(&self) -> Result<Rc<RefCell<Shdicts>>, String> {
        if let Some(d) = self.shdicts.borrow().as_ref() {
            return Ok(d.clone());
        }
        let d =
            Rc::new(RefCell::new(Shdicts::open(&self.dir()?.join("shdict.sqlite"), &self.config.shdicts)?));
        *self.shdicts.borrow_mut() = Some(d.clone());
        Ok(d)
    }
}

/// Parses nginx's size syntax: `1048576`, `512k`, `8m`, `1g` (either case).
///
/// ```
/// assert_eq!(chime_lua::parse_size("8m"), Ok(8 << 20));
/// assert!(chime_lua::parse_size("8x").is_err());
/// ```
///
/// # Errors
///
/// A message naming the size that is not one.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_lowercase()),
        _ => (t, 'b'),
    };
    let shift = match unit {
        'b' => 0,
        'k' => 10,
        'm' => 20,
        'g' => 30,
        _ => return Err(format!("invalid size {text:?} (bytes, or a number with k, m or g)")),
    };
    let n: u64 =
        digits.parse().map_err(|_| format!("invalid size {text:?} (bytes, or a number with k, m or g)"))?;
    n.checked_mul(1 << shift).filter(|&n| n > 0).ok_or_else(|| format!("invalid size {text:?}"))
}
