//! Webhooks on SQLite: `impl WebhookStore for SqliteStore`.
//!
//! A webhook is one row in `webhooks` plus one row per subscribed event in
//! `webhook_events`; pages are loaded with one query for the rows and one
//! `IN (...)` query for their events.

use std::collections::HashMap;

use async_trait::async_trait;
use keel_core::page::{decode_offset_token, encode_offset_token};
use keel_core::store::Page;
use keel_core::webhooks::{
    webhook_not_found, NewWebhook, Webhook, WebhookAction, WebhookEntity, WebhookEvent,
    WebhookStatus, WebhookStore, WebhookUpdate,
};
use keel_core::Result;
use sqlx::SqliteConnection;

use super::errors::{corrupt, DbResultExt};
use super::sql::{now_ms, placeholders, MAX_IDS_PER_IN_LIST};
use super::SqliteStore;

const WEBHOOK_COLUMNS: &str =
    "webhook_id, name, description, url, status, secret, creation_time, last_updated_time";

/// `webhooks` columns in [`WEBHOOK_COLUMNS`] order, as sqlx reads them.
type WebhookTuple = (
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    i64,
    i64,
);

struct WebhookRow {
    webhook_id: String,
    name: String,
    description: Option<String>,
    url: String,
    status: String,
    secret: Option<String>,
    creation_time: i64,
    last_updated_time: i64,
}

impl From<WebhookTuple> for WebhookRow {
    fn from(row: WebhookTuple) -> Self {
        let (webhook_id, name, description, url, status, secret, creation_time, last_updated_time) =
            row;
        WebhookRow {
            webhook_id,
            name,
            description,
            url,
            status,
            secret,
            creation_time,
            last_updated_time,
        }
    }
}

fn rows(tuples: Vec<WebhookTuple>) -> Vec<WebhookRow> {
    tuples.into_iter().map(WebhookRow::from).collect()
}

/// Attaches each row's events (in the order they were given) to it.
async fn load(conn: &mut SqliteConnection, rows: Vec<WebhookRow>) -> Result<Vec<Webhook>> {
    let mut events: HashMap<String, Vec<WebhookEvent>> = HashMap::new();
    for chunk in rows.chunks(MAX_IDS_PER_IN_LIST) {
        let sql = format!(
            "SELECT webhook_id, entity, action FROM webhook_events
             WHERE webhook_id IN ({}) ORDER BY webhook_id, position",
            placeholders(chunk.len())
        );
        let mut query = sqlx::query_as::<_, (String, String, String)>(&sql);
        for row in chunk {
            query = query.bind(&row.webhook_id);
        }
        for (webhook_id, entity, action) in query
            .fetch_all(&mut *conn)
            .await
            .db("read webhook events")?
        {
            events
                .entry(webhook_id)
                .or_default()
                .push(parse_event(&entity, &action)?);
        }
    }
    rows.into_iter()
        .map(|row| {
            let status = WebhookStatus::parse(&row.status)
                .ok_or_else(|| corrupt("webhook status", &row.status))?;
            Ok(Webhook {
                events: events.remove(&row.webhook_id).unwrap_or_default(),
                webhook_id: row.webhook_id,
                name: row.name,
                description: row.description,
                url: row.url,
                status,
                secret: row.secret,
                creation_timestamp: row.creation_time,
                last_updated_timestamp: row.last_updated_time,
            })
        })
        .collect()
}

fn parse_event(entity: &str, action: &str) -> Result<WebhookEvent> {
    let entity = WebhookEntity::parse(entity).ok_or_else(|| corrupt("webhook entity", entity))?;
    let action = WebhookAction::parse(action).ok_or_else(|| corrupt("webhook action", action))?;
    WebhookEvent::new(entity, action).map_err(|err| corrupt("webhook event", err.message))
}

async fn insert_events(
    conn: &mut SqliteConnection,
    webhook_id: &str,
    events: &[WebhookEvent],
) -> Result<()> {
    for (position, event) in events.iter().enumerate() {
        sqlx::query(
            "INSERT INTO webhook_events (webhook_id, entity, action, position) VALUES (?, ?, ?, ?)
             ON CONFLICT (webhook_id, entity, action) DO NOTHING",
        )
        .bind(webhook_id)
        .bind(event.entity().as_str())
        .bind(event.action().as_str())
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .execute(&mut *conn)
        .await
        .db("store a webhook event")?;
    }
    Ok(())
}

async fn fetch_one(conn: &mut SqliteConnection, webhook_id: &str) -> Result<Webhook> {
    let row: Option<WebhookTuple> = sqlx::query_as(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE webhook_id = ?"
    ))
    .bind(webhook_id)
    .fetch_optional(&mut *conn)
    .await
    .db("read a webhook")?;
    let row = row.ok_or_else(|| webhook_not_found(webhook_id))?;
    load(conn, vec![WebhookRow::from(row)])
        .await?
        .pop()
        .ok_or_else(|| webhook_not_found(webhook_id))
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook(&self, new_webhook: &NewWebhook) -> Result<Webhook> {
        let context = format!("create webhook '{}'", new_webhook.name);
        let webhook_id = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        let mut tx = self.begin_write(&context).await?;
        sqlx::query(
            "INSERT INTO webhooks
                 (webhook_id, name, description, url, status, secret, creation_time, last_updated_time)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&webhook_id)
        .bind(&new_webhook.name)
        .bind(&new_webhook.description)
        .bind(&new_webhook.url)
        .bind(new_webhook.status.as_str())
        .bind(&new_webhook.secret)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .db(&context)?;
        insert_events(&mut tx, &webhook_id, &new_webhook.events).await?;
        let webhook = fetch_one(&mut tx, &webhook_id).await?;
        tx.commit().await.db(&context)?;
        Ok(webhook)
    }

    async fn get_webhook(&self, webhook_id: &str) -> Result<Webhook> {
        let mut tx = self.begin_read("read a webhook").await?;
        fetch_one(&mut tx, webhook_id).await
    }

    async fn list_webhooks(
        &self,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<Webhook>> {
        let offset = decode_offset_token(page_token)?;
        let page_size = u64::from(max_results.max(1));
        let mut tx = self.begin_read("list webhooks").await?;
        let mut page: Vec<WebhookTuple> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks
             ORDER BY creation_time DESC, webhook_id LIMIT ? OFFSET ?"
        ))
        .bind(i64::try_from(page_size + 1).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await
        .db("list webhooks")?;
        let next_page_token = if page.len() as u64 > page_size {
            page.truncate(page.len() - 1);
            Some(encode_offset_token(offset + page_size))
        } else {
            None
        };
        Ok(Page {
            items: load(&mut tx, rows(page)).await?,
            next_page_token,
        })
    }

    async fn list_webhooks_by_event(&self, event: WebhookEvent) -> Result<Vec<Webhook>> {
        let mut tx = self.begin_read("list webhooks by event").await?;
        let subscribed: Vec<WebhookTuple> = sqlx::query_as(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks
             WHERE webhook_id IN (
                 SELECT webhook_id FROM webhook_events WHERE entity = ? AND action = ?)
             ORDER BY creation_time DESC, webhook_id"
        ))
        .bind(event.entity().as_str())
        .bind(event.action().as_str())
        .fetch_all(&mut *tx)
        .await
        .db("list webhooks by event")?;
        load(&mut tx, rows(subscribed)).await
    }

    async fn update_webhook(&self, webhook_id: &str, update: &WebhookUpdate) -> Result<Webhook> {
        let context = format!("update webhook {webhook_id}");
        let mut tx = self.begin_write(&context).await?;
        let current = fetch_one(&mut tx, webhook_id).await?;
        let description = match &update.description {
            Some(text) if text.is_empty() => None,
            Some(text) => Some(text.clone()),
            None => current.description,
        };
        let secret = match &update.secret {
            Some(text) if text.is_empty() => None,
            Some(text) => Some(text.clone()),
            None => current.secret,
        };
        sqlx::query(
            "UPDATE webhooks SET name = ?, description = ?, url = ?, status = ?, secret = ?,
                 last_updated_time = ?
             WHERE webhook_id = ?",
        )
        .bind(update.name.as_ref().unwrap_or(&current.name))
        .bind(description)
        .bind(update.url.as_ref().unwrap_or(&current.url))
        .bind(update.status.unwrap_or(current.status).as_str())
        .bind(secret)
        .bind(now_ms())
        .bind(webhook_id)
        .execute(&mut *tx)
        .await
        .db(&context)?;
        if let Some(events) = &update.events {
            sqlx::query("DELETE FROM webhook_events WHERE webhook_id = ?")
                .bind(webhook_id)
                .execute(&mut *tx)
                .await
                .db(&context)?;
            insert_events(&mut tx, webhook_id, events).await?;
        }
        let webhook = fetch_one(&mut tx, webhook_id).await?;
        tx.commit().await.db(&context)?;
        Ok(webhook)
    }

    async fn delete_webhook(&self, webhook_id: &str) -> Result<()> {
        let context = format!("delete webhook {webhook_id}");
        let mut tx = self.begin_write(&context).await?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE webhook_id = ?")
            .bind(webhook_id)
            .execute(&mut *tx)
            .await
            .db(&context)?
            .rows_affected();
        if deleted == 0 {
            return Err(webhook_not_found(webhook_id));
        }
        tx.commit().await.db(&context)
    }
}
