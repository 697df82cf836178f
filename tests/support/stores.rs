//! A fresh store of either backend for one test.

use std::sync::Arc;

use latchkey::store::ItemStore;
use latchkey::store::embedded::EmbeddedStore;

use crate::{Backend, TestTable};

/// A store of the given backend that lives as long as the returned guard.
pub async fn fresh_store(backend: Backend) -> (Arc<dyn ItemStore>, StoreGuard) {
    match backend {
        Backend::Embedded => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = EmbeddedStore::open(&dir.path().join("test.redb")).expect("open redb");
            (Arc::new(store), StoreGuard::Dir(dir))
        }
        Backend::DynamoDb | Backend::Lambda => {
            let table = TestTable::create().await;
            (Arc::new(table.store()), StoreGuard::Table(table))
        }
    }
}

pub enum StoreGuard {
    Dir(tempfile::TempDir),
    Table(TestTable),
}
