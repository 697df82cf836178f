//! The embedded backend: one redb file, for the local server and tests without AWS.
//!
//! redb serialises write transactions, so checking conditions and writing inside one
//! transaction gives the same all-or-nothing guarantee as `TransactWriteItems`.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition};
use serde_json::{Map, Value};

use super::{Item, ItemStore, Key, Page, StoreError, Write, condition_holds};

/// (pk, sk) -> the attributes as JSON.
const ITEMS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("items");

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the data file {0} is in use by another process (is latchkey-local already running?)")]
    InUse(String),
    #[error("cannot open the data file {path}: {source}")]
    Other { path: String, source: redb::Error },
}

impl EmbeddedStore {
    /// Opens (or creates) the store file at `path`. Only one process may hold it at a time.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let shown = path.display().to_string();
        let db = Database::create(path).map_err(|error| match error {
            redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse(shown.clone()),
            other => OpenError::Other { path: shown.clone(), source: other.into() },
        })?;
        let init = || -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            txn.open_table(ITEMS)?;
            Ok(txn.commit()?)
        };
        init().map_err(|source| OpenError::Other { path: shown.clone(), source })?;
        // Password hashes and sealed secrets: only the server's user may read the file.
        crate::private_files::restrict(path)
            .map_err(|error| OpenError::Other { path: shown, source: redb::StorageError::Io(error).into() })?;
        Ok(Self { db: Arc::new(db) })
    }

    /// redb is blocking I/O: run it off the async workers.
    async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|error| StoreError::Unavailable(format!("store task failed: {error}")))?
    }
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn decode(bytes: &[u8]) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_slice(bytes).map_err(|error| StoreError::Malformed(error.to_string()))
}

fn encode(attributes: &Map<String, Value>) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(attributes).map_err(|error| StoreError::Malformed(error.to_string()))
}

#[async_trait]
impl ItemStore for EmbeddedStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        // Reads run inline: a redb read transaction takes microseconds and never waits for
        // a writer or an fsync, so a thread hand-off would cost more than it protects.
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(ITEMS).map_err(unavailable)?;
        let found = table.get((key.pk.as_str(), key.sk.as_str())).map_err(unavailable)?;
        found.map(|bytes| Ok(Item { attributes: decode(bytes.value())?, key: key.clone() })).transpose()
    }

    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut table = txn.open_table(ITEMS).map_err(unavailable)?;
                for (position, write) in writes.iter().enumerate() {
                    let (key, condition) = match write {
                        Write::Put { item, condition } => (&item.key, condition),
                        Write::Delete { key, condition } | Write::Check { key, condition } => (key, condition),
                    };
                    let current = table.get((key.pk.as_str(), key.sk.as_str())).map_err(unavailable)?;
                    let current = current.map(|bytes| decode(bytes.value())).transpose()?;
                    if !condition_holds(condition, current.as_ref()) {
                        // Dropping the transaction without commit discards every write.
                        return Err(StoreError::ConditionFailed { write: position });
                    }
                }
                for write in writes {
                    match write {
                        Write::Put { item, .. } => {
                            let bytes = encode(&item.attributes)?;
                            table
                                .insert((item.key.pk.as_str(), item.key.sk.as_str()), bytes.as_slice())
                                .map_err(unavailable)?;
                        }
                        Write::Delete { key, .. } => {
                            table.remove((key.pk.as_str(), key.sk.as_str())).map_err(unavailable)?;
                        }
                        Write::Check { .. } => {}
                    }
                }
            }
            txn.commit().map_err(unavailable)
        })
        .await
    }

    async fn import(&self, items: Vec<Item>) -> Result<(), StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut table = txn.open_table(ITEMS).map_err(unavailable)?;
                for item in items {
                    let bytes = encode(&item.attributes)?;
                    table
                        .insert((item.key.pk.as_str(), item.key.sk.as_str()), bytes.as_slice())
                        .map_err(unavailable)?;
                }
            }
            txn.commit().map_err(unavailable)
        })
        .await
    }

    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.query_page(pk, sk_prefix, &Page { limit: usize::MAX, descending: false, after: None }).await
    }

    async fn query_page(&self, pk: &str, sk_prefix: &str, page: &Page) -> Result<Vec<Item>, StoreError> {
        use std::ops::Bound::{Excluded, Included};
        let (pk, sk_prefix, page) = (pk.to_owned(), sk_prefix.to_owned(), page.clone());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(ITEMS).map_err(unavailable)?;
            // Every sort key starting with the prefix sorts below the prefix and char::MAX.
            let end = format!("{sk_prefix}{}", char::MAX);
            let (mut low, mut high) =
                (Included((pk.as_str(), sk_prefix.as_str())), Excluded((pk.as_str(), end.as_str())));
            // A cursor narrows the range; one outside the prefix cannot widen it.
            match (&page.after, page.descending) {
                (Some(after), false) if after.as_str() >= sk_prefix.as_str() => {
                    low = Excluded((pk.as_str(), after.as_str()))
                }
                (Some(after), true) if after.as_str() < end.as_str() => high = Excluded((pk.as_str(), after.as_str())),
                _ => {}
            }
            let range = table.range::<(&str, &str)>((low, high)).map_err(unavailable)?;
            let entries: Box<dyn Iterator<Item = _>> =
                if page.descending { Box::new(range.rev()) } else { Box::new(range) };
            let mut items = Vec::new();
            for entry in entries.take(page.limit) {
                let (key, value) = entry.map_err(unavailable)?;
                let (item_pk, item_sk) = key.value();
                items.push(Item { key: Key::new(item_pk, item_sk), attributes: decode(value.value())? });
            }
            Ok(items)
        })
        .await
    }
}
