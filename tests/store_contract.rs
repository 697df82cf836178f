//! The item-store contract, held against both backends: what the repositories rely on.

use latchkey::store::{Condition, Item, Key, Page, StoreError, Write};
use latchkey_tests::{Backend, fresh_store, on_both_backends};
use serde_json::{Map, Value, json};

on_both_backends!(
    a_put_item_reads_back_with_every_json_type_intact,
    put_if_absent_refuses_a_second_put_and_keeps_the_first,
    a_transaction_with_one_false_condition_writes_nothing_and_names_the_write,
    attribute_equals_is_a_compare_and_swap,
    equals_checks_every_attribute_and_null_means_absent,
    an_import_of_many_items_reads_back_in_full,
    a_check_writes_nothing_but_its_condition_gates_the_transaction,
    query_returns_one_partitions_items_by_prefix_in_sort_key_order,
    query_page_reads_pages_in_either_order_after_a_cursor,
    conditional_delete_only_removes_a_matching_item,
    twenty_concurrent_puts_if_absent_have_exactly_one_winner,
    a_user_item_stored_by_an_earlier_version_still_signs_in_and_changes,
);

fn attributes(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

fn item(pk: &str, sk: &str, value: Value) -> Item {
    Item { key: Key::new(pk, sk), attributes: attributes(value) }
}

async fn a_put_item_reads_back_with_every_json_type_intact(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let original = item(
        "P",
        "S",
        json!({"text": "héllo", "empty": "", "int": -42, "big": 1_795_854_405_i64, "flag": true, "nothing": null,
               "list": [1, "two", {"three": 3}], "nested": {"a": {"b": [true]}}}),
    );
    store.write(vec![Write::put(original.clone(), Condition::Always)]).await.unwrap();
    assert_eq!(store.get(&Key::new("P", "S")).await.unwrap(), Some(original));
    assert_eq!(store.get(&Key::new("P", "missing")).await.unwrap(), None);
}

async fn put_if_absent_refuses_a_second_put_and_keeps_the_first(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    store.write(vec![Write::put(item("P", "S", json!({"v": 1})), Condition::NotExists)]).await.unwrap();
    let second = store.write(vec![Write::put(item("P", "S", json!({"v": 2})), Condition::NotExists)]).await;
    assert!(matches!(second, Err(StoreError::ConditionFailed { write: 0 })), "{second:?}");
    assert_eq!(store.get(&Key::new("P", "S")).await.unwrap().unwrap().attributes["v"], 1);
}

async fn a_transaction_with_one_false_condition_writes_nothing_and_names_the_write(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    store.write(vec![Write::put(item("TAKEN", "U", json!({})), Condition::Always)]).await.unwrap();
    let result = store
        .write(vec![
            Write::put(item("NEW1", "U", json!({})), Condition::NotExists),
            Write::put(item("NEW2", "U", json!({})), Condition::NotExists),
            Write::put(item("TAKEN", "U", json!({"overwritten": true})), Condition::NotExists),
        ])
        .await;
    assert!(matches!(result, Err(StoreError::ConditionFailed { write: 2 })), "{result:?}");
    assert_eq!(store.get(&Key::new("NEW1", "U")).await.unwrap(), None);
    assert_eq!(store.get(&Key::new("NEW2", "U")).await.unwrap(), None);
    assert_eq!(store.get(&Key::new("TAKEN", "U")).await.unwrap().unwrap().attributes, Map::new());
}

async fn attribute_equals_is_a_compare_and_swap(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    store.write(vec![Write::put(item("P", "S", json!({"version": "a"})), Condition::Always)]).await.unwrap();
    let swap = |from: &str, to: &str| {
        Write::put(item("P", "S", json!({"version": to})), Condition::equals("version", json!(from)))
    };
    store.write(vec![swap("a", "b")]).await.unwrap();
    let stale = store.write(vec![swap("a", "c")]).await;
    assert!(matches!(stale, Err(StoreError::ConditionFailed { .. })), "{stale:?}");
    assert_eq!(store.get(&Key::new("P", "S")).await.unwrap().unwrap().attributes["version"], "b");
    let absent =
        store.write(vec![Write::put(item("Q", "S", json!({})), Condition::equals("version", json!("a")))]).await;
    assert!(matches!(absent, Err(StoreError::ConditionFailed { .. })), "a missing item never matches: {absent:?}");
}

async fn equals_checks_every_attribute_and_null_means_absent(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    store
        .write(vec![Write::put(item("P", "S", json!({"hash": "h1", "attempts": 2})), Condition::Always)])
        .await
        .unwrap();
    let both =
        |hash: &str, attempts: u32| Condition::Equals(vec![("hash", json!(hash)), ("attempts", json!(attempts))]);
    for wrong in [both("h2", 2), both("h1", 3)] {
        let refused = store.write(vec![Write::put(item("P", "S", json!({"attempts": 9})), wrong)]).await;
        assert!(matches!(refused, Err(StoreError::ConditionFailed { write: 0 })), "{refused:?}");
    }
    store.write(vec![Write::put(item("P", "S", json!({"hash": "h1", "attempts": 3})), both("h1", 2))]).await.unwrap();
    // `null` stands for an attribute the item does not have; the item itself must exist.
    let absent = Condition::equals("version", Value::Null);
    store.write(vec![Write::put(item("P", "S", json!({"version": 1})), absent.clone())]).await.unwrap();
    let now_present = store.write(vec![Write::put(item("P", "S", json!({})), absent.clone())]).await;
    assert!(matches!(now_present, Err(StoreError::ConditionFailed { .. })), "{now_present:?}");
    let missing_item = store.write(vec![Write::put(item("NONE", "S", json!({})), absent)]).await;
    assert!(matches!(missing_item, Err(StoreError::ConditionFailed { .. })), "{missing_item:?}");
}

async fn a_check_writes_nothing_but_its_condition_gates_the_transaction(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    store.write(vec![Write::put(item("GATE", "S", json!({"open": true})), Condition::Always)]).await.unwrap();
    let gated = |open: bool, sk: &str| {
        vec![
            Write::check(Key::new("GATE", "S"), Condition::equals("open", open)),
            Write::put(item("BEHIND", sk, json!({})), Condition::Always),
        ]
    };
    let refused = store.write(gated(false, "A")).await;
    assert!(matches!(refused, Err(StoreError::ConditionFailed { write: 0 })), "{refused:?}");
    assert_eq!(store.get(&Key::new("BEHIND", "A")).await.unwrap(), None);
    store.write(gated(true, "B")).await.unwrap();
    assert!(store.get(&Key::new("BEHIND", "B")).await.unwrap().is_some());
    let gate = store.get(&Key::new("GATE", "S")).await.unwrap().unwrap();
    assert_eq!(gate.attributes["open"], true, "the checked item is unchanged");
    let alone = store.write(vec![Write::check(Key::new("GATE", "S"), Condition::equals("open", false))]).await;
    assert!(matches!(alone, Err(StoreError::ConditionFailed { write: 0 })), "{alone:?}");
}

async fn an_import_of_many_items_reads_back_in_full(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let items: Vec<_> = (0..260).map(|n| item("BULK", &format!("{n:04}"), json!({"n": n}))).collect();
    store.import(items).await.unwrap();
    let read = store.query("BULK", "").await.unwrap();
    assert_eq!(read.len(), 260);
    assert_eq!(read[259].attributes["n"], 259);
}

async fn query_returns_one_partitions_items_by_prefix_in_sort_key_order(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let writes = ["SESSION#b", "PROFILE", "SESSION#a", "SESSION#c"]
        .into_iter()
        .map(|sk| Write::put(item("USER#1", sk, json!({"sk": sk})), Condition::Always))
        .chain([Write::put(item("USER#2", "SESSION#z", json!({})), Condition::Always)])
        .collect();
    store.write(writes).await.unwrap();
    let found: Vec<String> =
        store.query("USER#1", "SESSION#").await.unwrap().into_iter().map(|item| item.key.sk).collect();
    assert_eq!(found, ["SESSION#a", "SESSION#b", "SESSION#c"]);
    assert_eq!(store.query("USER#1", "").await.unwrap().len(), 4);
    assert!(store.query("USER#3", "").await.unwrap().is_empty());
}

async fn query_page_reads_pages_in_either_order_after_a_cursor(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let writes = (0..7)
        .map(|n| Write::put(item("CONVERSATION#1", &format!("MSG#{n:02}"), json!({ "n": n })), Condition::Always))
        .chain([Write::put(item("CONVERSATION#1", "META", json!({})), Condition::Always)])
        .chain([Write::put(item("CONVERSATION#2", "MSG#00", json!({})), Condition::Always)])
        .collect();
    store.write(writes).await.unwrap();
    let sort_keys = |items: Vec<Item>| items.into_iter().map(|item| item.key.sk).collect::<Vec<_>>();
    let page = |limit, descending, after: Option<&str>| Page { limit, descending, after: after.map(String::from) };

    let newest = store.query_page("CONVERSATION#1", "MSG#", &page(3, true, None)).await.unwrap();
    assert_eq!(sort_keys(newest), ["MSG#06", "MSG#05", "MSG#04"]);
    let older = store.query_page("CONVERSATION#1", "MSG#", &page(3, true, Some("MSG#04"))).await.unwrap();
    assert_eq!(sort_keys(older), ["MSG#03", "MSG#02", "MSG#01"]);
    let last = store.query_page("CONVERSATION#1", "MSG#", &page(3, true, Some("MSG#01"))).await.unwrap();
    assert_eq!(sort_keys(last), ["MSG#00"], "the prefix bounds the page: META is not a message");
    let oldest = store.query_page("CONVERSATION#1", "MSG#", &page(2, false, Some("MSG#04"))).await.unwrap();
    assert_eq!(sort_keys(oldest), ["MSG#05", "MSG#06"]);
    assert!(store.query_page("CONVERSATION#3", "MSG#", &page(3, true, None)).await.unwrap().is_empty());
    let everything = store.query_page("CONVERSATION#1", "", &page(2, true, None)).await.unwrap();
    assert_eq!(sort_keys(everything), ["MSG#06", "MSG#05"], "an empty prefix pages the whole partition");
}

async fn conditional_delete_only_removes_a_matching_item(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    store.write(vec![Write::put(item("P", "S", json!({"owner": "ada"})), Condition::Always)]).await.unwrap();
    let wrong = store.write(vec![Write::delete(Key::new("P", "S"), Condition::equals("owner", json!("eve")))]).await;
    assert!(matches!(wrong, Err(StoreError::ConditionFailed { .. })));
    assert!(store.get(&Key::new("P", "S")).await.unwrap().is_some());
    store.write(vec![Write::delete(Key::new("P", "S"), Condition::equals("owner", json!("ada")))]).await.unwrap();
    assert_eq!(store.get(&Key::new("P", "S")).await.unwrap(), None);
    // Deleting what is not there is not an error unless the condition says so.
    store.write(vec![Write::delete(Key::new("P", "S"), Condition::Always)]).await.unwrap();
}

async fn twenty_concurrent_puts_if_absent_have_exactly_one_winner(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let attempts = (0..20).map(|n| {
        let store = std::sync::Arc::clone(&store);
        tokio::spawn(async move {
            store
                .write(vec![
                    Write::put(item("EMAIL#race", "UNIQUE", json!({"n": n})), Condition::NotExists),
                    Write::put(item(&format!("USER#{n}"), "PROFILE", json!({})), Condition::NotExists),
                ])
                .await
        })
    });
    let results = futures::future::join_all(attempts).await;
    let winners = results.iter().filter(|result| matches!(result, Ok(Ok(())))).count();
    let refused = results.iter().filter(|r| matches!(r, Ok(Err(StoreError::ConditionFailed { .. })))).count();
    assert_eq!((winners, refused), (1, 19), "{results:?}");
}

/// A user item exactly as an earlier version stored it (before pending addresses, previous
/// addresses and the TOTP setup flag existed, and when it held its avatar's route path): it
/// reads, signs in and takes a change without a migration. The API body is its own struct, so
/// it shows the fields added since too.
async fn a_user_item_stored_by_an_earlier_version_still_signs_in_and_changes(backend: Backend) {
    use latchkey::crypto::passwords::PasswordHasher;
    use latchkey::domain::{Password, PasswordPolicy};
    use latchkey_tests::{PASSWORD, TestServer, test_config};

    let (store, guard) = fresh_store(backend).await;
    let hasher = PasswordHasher::new(test_config().argon2).unwrap();
    let hash = hasher.hash(&Password::new(PASSWORD.into(), PasswordPolicy::default()).unwrap()).await.unwrap();
    let id = "0b9f7d9e-3c1a-4f5e-8d2b-6a7c8e9f0a1b";
    let stored = json!({
        "id": id, "email": "legacy@example.com", "username": "legacy", "phone": null, "role": "USER",
        "type": "EMAIL", "status": "NORMAL", "extra": {"theme": "dark"}, "is_email_verified": true,
        "avatar": format!("/v1/users/{id}/avatar"), "identities": [],
        "created_at": "2026-11-01T10:00:00Z", "updated_at": "2026-11-01T10:00:00Z",
        "password_hash": hash,
        "second_factors": {"totp": null, "totp_pending": null, "email_codes": false},
        "avatar_key": format!("avatars/{id}/earlier.png"), "session_epoch": 0, "version": 3
    });
    let writes = vec![
        Write::put(item(&format!("USER#{id}"), "PROFILE", stored), Condition::Always),
        Write::put(item("EMAIL#legacy@example.com", "UNIQUE", json!({"user_id": id})), Condition::Always),
        Write::put(item("USERNAME#legacy", "UNIQUE", json!({"user_id": id})), Condition::Always),
        Write::put(
            item(
                "DIRECTORY",
                &format!("01761991200000000000#{id}"),
                json!({"id": id, "username": "legacy", "email": "legacy@example.com", "status": "NORMAL"}),
            ),
            Condition::Always,
        ),
    ];
    store.write(writes).await.unwrap();
    let server = TestServer::with_store(store, guard, test_config()).await;
    let signed_in = server.post("/v1/auth/login", json!({"username": "legacy", "password": PASSWORD})).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    let access = signed_in.body["access_token"].as_str().unwrap().to_owned();
    let me = server.get("/v1/users/me", Some(&access)).await;
    assert_eq!(
        (me.body["email"].as_str(), me.body["extra"]["theme"].as_str()),
        (Some("legacy@example.com"), Some("dark"))
    );
    assert!(me.body["pending_email"].is_null(), "{}", me.body);
    let avatar = format!("/v1/users/{id}/avatar");
    assert_eq!(me.body["avatar"].as_str(), Some(avatar.as_str()), "the avatar it had is still shown");
    let changed = server.patch_authorized("/v1/users/me", &access, json!({"username": "legacy_renamed"})).await;
    assert_eq!((changed.status, changed.body["username"].as_str()), (200, Some("legacy_renamed")), "{}", changed.body);
    let me = server.get("/v1/users/me", Some(&access)).await;
    assert_eq!(me.body["avatar"].as_str(), Some(avatar.as_str()), "and still after a change: {}", me.body);
}
