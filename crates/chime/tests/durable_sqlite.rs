//! The durable store conformance suite on SQLite (a file per test, a connection per handle).

mod common;

use chime::cluster::Sqlite;
use chime::durable::DurableStore;
use common::durable_conformance::{self, DurableBackend};

/// A database file of the test's own.
struct File(std::path::PathBuf);

impl DurableBackend for File {
    type Store = Sqlite;
    async fn connect(&self) -> Sqlite {
        let store = Sqlite::open(&self.0).unwrap();
        store.prepare().await.unwrap();
        store
    }
}

fn file(test: &str) -> Option<File> {
    let dir = std::env::temp_dir().join(format!("chime-durable-sqlite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Some(File(dir.join(format!("{test}.db"))))
}

durable_conformance::durable_conformance_tests!(file);
