//! The DynamoDB backend: one table with a `pk`/`sk` primary key and TTL on `ttl`.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, PutRequest, TransactWriteItem, WriteRequest,
};
use serde_json::{Map, Value};

use super::{Condition, Item, ItemStore, Key, Page, StoreError, Write};

/// How often a transaction cancelled only by a concurrent transaction on the same items is
/// retried before giving up. Without this, two racing writers can both be cancelled and
/// neither wins.
const CONFLICT_RETRIES: u32 = 5;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

type DynamoItem = HashMap<String, AttributeValue>;

/// Every DynamoDB write builder has the same three condition setters.
macro_rules! with_condition {
    ($builder:expr, $expression:expr) => {{
        let expression: Expression = $expression;
        $builder
            .set_condition_expression(expression.text)
            .set_expression_attribute_names(expression.names)
            .set_expression_attribute_values(expression.values)
    }};
}

/// A condition rendered as a DynamoDB condition expression with its placeholders.
#[derive(Default)]
struct Expression {
    text: Option<String>,
    names: Option<HashMap<String, String>>,
    values: Option<HashMap<String, AttributeValue>>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn key(key: &Key) -> DynamoItem {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(key.pk.clone())),
            ("sk".to_owned(), AttributeValue::S(key.sk.clone())),
        ])
    }

    fn to_dynamo(item: Item) -> Result<DynamoItem, StoreError> {
        let mut attributes = item.attributes;
        attributes.insert("pk".into(), Value::String(item.key.pk));
        attributes.insert("sk".into(), Value::String(item.key.sk));
        let converted: serde_dynamo::Item = serde_dynamo::to_item(Value::Object(attributes)).map_err(malformed)?;
        Ok(converted.into())
    }

    fn from_dynamo(item: DynamoItem) -> Result<Item, StoreError> {
        let mut attributes: Map<String, Value> = serde_dynamo::from_item(item).map_err(malformed)?;
        let mut take_key = |name: &str| match attributes.remove(name) {
            Some(Value::String(value)) => Ok(value),
            _ => Err(StoreError::Malformed(format!("item without a string `{name}`"))),
        };
        let key = Key::new(take_key("pk")?, take_key("sk")?);
        Ok(Item { key, attributes })
    }

    fn expression(condition: &Condition) -> Result<Expression, StoreError> {
        let text = |text: &str| Expression { text: Some(text.to_owned()), ..Default::default() };
        Ok(match condition {
            Condition::Always => Expression::default(),
            Condition::NotExists => text("attribute_not_exists(pk)"),
            Condition::Equals(expected) => {
                let (mut clauses, mut names, mut values) =
                    (vec!["attribute_exists(pk)".to_owned()], HashMap::new(), HashMap::new());
                for (n, (attribute, value)) in expected.iter().enumerate() {
                    names.insert(format!("#a{n}"), (*attribute).to_owned());
                    if value.is_null() {
                        clauses.push(format!("attribute_not_exists(#a{n})"));
                    } else {
                        clauses.push(format!("#a{n} = :v{n}"));
                        values.insert(format!(":v{n}"), serde_dynamo::to_attribute_value(value).map_err(malformed)?);
                    }
                }
                Expression {
                    text: Some(clauses.join(" AND ")),
                    names: Some(names),
                    values: (!values.is_empty()).then_some(values),
                }
            }
        })
    }

    async fn put(&self, item: Item, condition: &Condition) -> Result<(), SingleWriteError> {
        let result = with_condition!(
            self.client.put_item().table_name(&self.table).set_item(Some(Self::to_dynamo(item)?)),
            Self::expression(condition)?
        )
        .send()
        .await;
        single_write_outcome(result)
    }

    async fn delete(&self, key: &Key, condition: &Condition) -> Result<(), SingleWriteError> {
        let result = with_condition!(
            self.client.delete_item().table_name(&self.table).set_key(Some(Self::key(key))),
            Self::expression(condition)?
        )
        .send()
        .await;
        single_write_outcome(result)
    }

    fn transact_item(&self, write: Write) -> Result<TransactWriteItem, StoreError> {
        let built = match write {
            Write::Put { item, condition } => {
                let put = with_condition!(
                    Put::builder().table_name(&self.table).set_item(Some(Self::to_dynamo(item)?)),
                    Self::expression(&condition)?
                )
                .build()
                .map_err(malformed)?;
                TransactWriteItem::builder().put(put).build()
            }
            Write::Delete { key, condition } => {
                let delete = with_condition!(
                    Delete::builder().table_name(&self.table).set_key(Some(Self::key(&key))),
                    Self::expression(&condition)?
                )
                .build()
                .map_err(malformed)?;
                TransactWriteItem::builder().delete(delete).build()
            }
            Write::Check { key, condition } => {
                let check = with_condition!(
                    ConditionCheck::builder().table_name(&self.table).set_key(Some(Self::key(&key))),
                    Self::expression(&condition)?
                )
                .build()
                .map_err(malformed)?;
                TransactWriteItem::builder().condition_check(check).build()
            }
        };
        Ok(built)
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let items = writes.into_iter().map(|write| self.transact_item(write)).collect::<Result<Vec<_>, _>>()?;
        let mut attempt = 0;
        loop {
            let result = self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await;
            let Err(error) = result else { return Ok(()) };
            let reasons: Vec<String> = error
                .as_service_error()
                .and_then(|e| match e {
                    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => {
                        Some(c.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect())
                    }
                    _ => None,
                })
                .unwrap_or_default();
            if let Some(write) = reasons.iter().position(|code| code == "ConditionalCheckFailed") {
                return Err(StoreError::ConditionFailed { write });
            }
            let conflict_only =
                !reasons.is_empty() && reasons.iter().all(|code| code == "TransactionConflict" || code == "None");
            if conflict_only && attempt < CONFLICT_RETRIES {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
                continue;
            }
            return Err(unavailable(error));
        }
    }
}

enum SingleWriteError {
    /// The item is part of a transaction in progress; the write may be retried.
    TransactionConflict,
    Store(StoreError),
}

impl From<StoreError> for SingleWriteError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// Maps the result of a lone PutItem/DeleteItem by its service error code: a failed condition
/// is the caller's business, a transaction conflict is worth a retry, anything else means
/// the store is unavailable.
fn single_write_outcome<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<(), SingleWriteError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let Err(error) = result else { return Ok(()) };
    match error.as_service_error().and_then(ProvideErrorMetadata::code) {
        Some("ConditionalCheckFailedException") => {
            Err(SingleWriteError::Store(StoreError::ConditionFailed { write: 0 }))
        }
        Some("TransactionConflictException") => Err(SingleWriteError::TransactionConflict),
        _ => Err(SingleWriteError::Store(unavailable(error))),
    }
}

fn malformed(error: impl std::fmt::Display) -> StoreError {
    StoreError::Malformed(error.to_string())
}

fn unavailable<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::Unavailable(DisplayErrorContext(error).to_string())
}

/// BatchWriteItem's limit.
const BATCH_SIZE: usize = 25;

#[async_trait]
impl ItemStore for DynamoStore {
    async fn import(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let mut pending: Vec<WriteRequest> = Vec::with_capacity(items.len());
        for item in items {
            let put = PutRequest::builder().set_item(Some(Self::to_dynamo(item)?)).build().map_err(malformed)?;
            pending.push(WriteRequest::builder().put_request(put).build());
        }
        let mut attempt = 0u32;
        while !pending.is_empty() {
            let batch: Vec<WriteRequest> = pending.drain(..pending.len().min(BATCH_SIZE)).collect();
            let output =
                self.client.batch_write_item().request_items(&self.table, batch).send().await.map_err(unavailable)?;
            // Throttled items come back unprocessed: put them back in the queue, with a pause.
            let unprocessed =
                output.unprocessed_items.and_then(|mut tables| tables.remove(&self.table)).unwrap_or_default();
            if !unprocessed.is_empty() {
                attempt += 1;
                if attempt > 30 {
                    return Err(StoreError::Unavailable("BatchWriteItem kept returning unprocessed items".into()));
                }
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt.min(10)))).await;
                pending.extend(unprocessed);
            }
        }
        Ok(())
    }

    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item.map(Self::from_dynamo).transpose()
    }

    async fn write(&self, mut writes: Vec<Write>) -> Result<(), StoreError> {
        // A single write is a plain conditional Put/Delete: half the cost of a transaction.
        let single = match writes.len() {
            0 => return Ok(()),
            1 if !matches!(writes[0], Write::Check { .. }) => writes.pop().expect("one write"),
            _ => return self.transact(writes).await,
        };
        let mut attempt = 0;
        loop {
            let outcome = match &single {
                Write::Put { item, condition } => self.put(item.clone(), condition).await,
                Write::Delete { key, condition } => self.delete(key, condition).await,
                Write::Check { .. } => unreachable!("a lone check goes through `transact`"),
            };
            match outcome {
                // The item is in a running transaction: wait for it like `transact` does.
                Err(SingleWriteError::TransactionConflict) if attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
                }
                Err(SingleWriteError::TransactionConflict) => {
                    return Err(StoreError::Unavailable("transaction conflicts persisted".into()));
                }
                Err(SingleWriteError::Store(error)) => return Err(error),
                Ok(()) => return Ok(()),
            }
        }
    }

    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        let (condition, values) = key_condition(pk, sk_prefix);
        let pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        pages.into_iter().map(|item| Self::from_dynamo(item.map_err(unavailable)?)).collect()
    }

    async fn query_page(&self, pk: &str, sk_prefix: &str, page: &Page) -> Result<Vec<Item>, StoreError> {
        let (condition, values) = key_condition(pk, sk_prefix);
        let start = page.after.as_ref().map(|sk| {
            HashMap::from([
                ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
                ("sk".to_owned(), AttributeValue::S(sk.clone())),
            ])
        });
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .set_exclusive_start_key(start)
            .scan_index_forward(!page.descending)
            .limit(page.limit.clamp(1, i32::MAX as usize) as i32)
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.items.unwrap_or_default().into_iter().map(Self::from_dynamo).collect()
    }
}

/// The key condition of a query for the items of `pk` whose sort key starts with `sk_prefix`.
fn key_condition(pk: &str, sk_prefix: &str) -> (&'static str, HashMap<String, AttributeValue>) {
    let mut values = HashMap::from([(":pk".to_owned(), AttributeValue::S(pk.to_owned()))]);
    if sk_prefix.is_empty() {
        return ("pk = :pk", values);
    }
    values.insert(":prefix".to_owned(), AttributeValue::S(sk_prefix.to_owned()));
    ("pk = :pk AND begins_with(sk, :prefix)", values)
}
