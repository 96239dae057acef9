//! Conformance checks of `WebhookStore`: written against `Arc<dyn WebhookStore>`
//! so a future backend runs the same functions; here each runs on a fresh
//! SQLite file.

use std::sync::Arc;

use keel_core::webhooks::{NewWebhook, WebhookEvent, WebhookStatus, WebhookStore, WebhookUpdate};
use keel_core::ErrorCode;
use keel_store::SqliteStore;
use tempfile::TempDir;

async fn sqlite() -> (Arc<dyn WebhookStore>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("keel.db").display());
    let store = SqliteStore::open(&url, "mlflow-artifacts:")
        .await
        .expect("open sqlite store");
    (Arc::new(store), dir)
}

fn new_webhook(name: &str, events: &[WebhookEvent]) -> NewWebhook {
    NewWebhook {
        name: name.to_string(),
        url: format!("https://hooks.example.com/{name}"),
        events: events.to_vec(),
        description: Some("a hook".to_string()),
        secret: Some("s3cret".to_string()),
        status: WebhookStatus::Active,
    }
}

async fn created_webhooks_read_back_whole(store: Arc<dyn WebhookStore>) {
    let events = [
        WebhookEvent::MODEL_VERSION_TAG_SET,
        WebhookEvent::REGISTERED_MODEL_CREATED,
        WebhookEvent::MODEL_VERSION_ALIAS_DELETED,
    ];
    let created = store
        .create_webhook(&new_webhook("hook", &events))
        .await
        .expect("create");
    assert!(!created.webhook_id.is_empty());
    assert_eq!(created.events, events, "events keep the order given");
    assert_eq!(created.secret.as_deref(), Some("s3cret"));
    assert_eq!(created.status, WebhookStatus::Active);
    assert!(created.creation_timestamp > 0);
    assert_eq!(created.creation_timestamp, created.last_updated_timestamp);
    let read = store.get_webhook(&created.webhook_id).await.expect("get");
    assert_eq!(read, created);
}

async fn missing_webhooks_are_not_found(store: Arc<dyn WebhookStore>) {
    let err = store.get_webhook("nope").await.expect_err("an error");
    assert_eq!(err.code, ErrorCode::ResourceDoesNotExist);
    assert_eq!(err.message, "Webhook with ID nope not found.");
    let err = store.delete_webhook("nope").await.expect_err("an error");
    assert_eq!(err.code, ErrorCode::ResourceDoesNotExist);
    let err = store
        .update_webhook("nope", &WebhookUpdate::default())
        .await
        .expect_err("an error");
    assert_eq!(err.code, ErrorCode::ResourceDoesNotExist);
}

async fn updates_change_only_what_is_given(store: Arc<dyn WebhookStore>) {
    let created = store
        .create_webhook(&new_webhook("hook", &[WebhookEvent::MODEL_VERSION_CREATED]))
        .await
        .expect("create");
    let renamed = store
        .update_webhook(
            &created.webhook_id,
            &WebhookUpdate {
                name: Some("renamed".into()),
                status: Some(WebhookStatus::Disabled),
                ..WebhookUpdate::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(renamed.name, "renamed");
    assert_eq!(renamed.status, WebhookStatus::Disabled);
    assert_eq!(renamed.url, created.url);
    assert_eq!(renamed.events, created.events);
    assert_eq!(renamed.secret, created.secret);
    assert_eq!(renamed.description, created.description);
    assert!(renamed.last_updated_timestamp >= created.last_updated_timestamp);

    let changed = store
        .update_webhook(
            &created.webhook_id,
            &WebhookUpdate {
                url: Some("https://other.example.com/".into()),
                events: Some(vec![
                    WebhookEvent::MODEL_VERSION_ALIAS_CREATED,
                    WebhookEvent::MODEL_VERSION_TAG_DELETED,
                ]),
                description: Some(String::new()),
                secret: Some(String::new()),
                ..WebhookUpdate::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(changed.url, "https://other.example.com/");
    assert_eq!(
        changed.events,
        vec![
            WebhookEvent::MODEL_VERSION_ALIAS_CREATED,
            WebhookEvent::MODEL_VERSION_TAG_DELETED
        ]
    );
    assert_eq!(changed.description, None, "an empty description clears it");
    assert_eq!(changed.secret, None, "an empty secret clears it");
    assert_eq!(changed.name, "renamed");
}

async fn lists_page_newest_first(store: Arc<dyn WebhookStore>) {
    let mut ids = Vec::new();
    for idx in 0..5 {
        let webhook = store
            .create_webhook(&new_webhook(
                &format!("hook-{idx}"),
                &[WebhookEvent::MODEL_VERSION_CREATED],
            ))
            .await
            .expect("create");
        ids.push(webhook.webhook_id);
        // Distinct creation times make "newest first" observable.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let first = store.list_webhooks(2, None).await.expect("page 1");
    assert_eq!(first.items.len(), 2);
    let token = first.next_page_token.clone().expect("more pages");
    let second = store.list_webhooks(2, Some(&token)).await.expect("page 2");
    let token = second.next_page_token.clone().expect("more pages");
    let third = store.list_webhooks(2, Some(&token)).await.expect("page 3");
    assert_eq!(third.next_page_token, None);
    let listed: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .chain(&third.items)
        .map(|webhook| webhook.webhook_id.clone())
        .collect();
    ids.reverse();
    assert_eq!(listed, ids);
    assert_eq!(
        first.items[0].events,
        vec![WebhookEvent::MODEL_VERSION_CREATED]
    );
}

async fn listing_by_event_finds_subscribers_of_any_status(store: Arc<dyn WebhookStore>) {
    let versions = store
        .create_webhook(&new_webhook(
            "versions",
            &[WebhookEvent::MODEL_VERSION_CREATED],
        ))
        .await
        .expect("create");
    let both = store
        .create_webhook(&new_webhook(
            "both",
            &[
                WebhookEvent::REGISTERED_MODEL_CREATED,
                WebhookEvent::MODEL_VERSION_CREATED,
            ],
        ))
        .await
        .expect("create");
    store
        .update_webhook(
            &both.webhook_id,
            &WebhookUpdate {
                status: Some(WebhookStatus::Disabled),
                ..WebhookUpdate::default()
            },
        )
        .await
        .expect("disable");
    let mut subscribed: Vec<String> = store
        .list_webhooks_by_event(WebhookEvent::MODEL_VERSION_CREATED)
        .await
        .expect("by event")
        .into_iter()
        .map(|webhook| webhook.webhook_id)
        .collect();
    subscribed.sort();
    let mut expected = vec![versions.webhook_id.clone(), both.webhook_id.clone()];
    expected.sort();
    assert_eq!(subscribed, expected);
    let models = store
        .list_webhooks_by_event(WebhookEvent::REGISTERED_MODEL_CREATED)
        .await
        .expect("by event");
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].status, WebhookStatus::Disabled);
    assert!(store
        .list_webhooks_by_event(WebhookEvent::MODEL_VERSION_TAG_SET)
        .await
        .expect("by event")
        .is_empty());
}

async fn deleted_webhooks_are_gone(store: Arc<dyn WebhookStore>) {
    let webhook = store
        .create_webhook(&new_webhook("hook", &[WebhookEvent::MODEL_VERSION_CREATED]))
        .await
        .expect("create");
    store
        .delete_webhook(&webhook.webhook_id)
        .await
        .expect("delete");
    let err = store
        .get_webhook(&webhook.webhook_id)
        .await
        .expect_err("an error");
    assert_eq!(err.code, ErrorCode::ResourceDoesNotExist);
    assert!(store
        .list_webhooks_by_event(WebhookEvent::MODEL_VERSION_CREATED)
        .await
        .expect("by event")
        .is_empty());
    assert!(store
        .list_webhooks(10, None)
        .await
        .expect("list")
        .items
        .is_empty());
}

async fn garbage_page_tokens_are_invalid(store: Arc<dyn WebhookStore>) {
    let err = store
        .list_webhooks(10, Some("not a token!"))
        .await
        .expect_err("an error");
    assert_eq!(err.code, ErrorCode::InvalidParameterValue);
}

macro_rules! sqlite_conformance {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (store, _dir) = sqlite().await;
                super::$check(store).await;
            }
        )*
    };
}

mod sqlite {
    use super::sqlite;

    sqlite_conformance!(
        created_webhooks_read_back_whole,
        missing_webhooks_are_not_found,
        updates_change_only_what_is_given,
        lists_page_newest_first,
        listing_by_event_finds_subscribers_of_any_status,
        deleted_webhooks_are_gone,
        garbage_page_tokens_are_invalid,
    );
}
