//! MLflow 3 webhook endpoints: `/webhooks` (create, list),
//! `/webhooks/{webhook_id}` (get, update, delete) and
//! `/webhooks/{webhook_id}/test`, with the methods MLflow's client uses.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use keel_api::webhooks as w;
use keel_core::webhooks::WebhookUpdate;
use keel_tracking::webhooks::{CreateWebhook, WebhookTestResult};
use serde_json::{json, Value};

use crate::error::{required, ApiResult};
use crate::extract::MlflowRequest;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks", post(create_webhook).get(list_webhooks))
        .route(
            "/webhooks/{webhook_id}",
            get(get_webhook)
                .patch(update_webhook)
                .delete(delete_webhook),
        )
        .route("/webhooks/{webhook_id}/test", post(test_webhook))
}

fn webhook_response(webhook: &keel_core::webhooks::Webhook) -> Json<w::WebhookResponse> {
    Json(w::WebhookResponse {
        webhook: webhook.into(),
    })
}

async fn create_webhook(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::CreateWebhook>,
) -> ApiResult<Json<w::WebhookResponse>> {
    let name = required(req.name, "name")?;
    let url = required(req.url, "url")?;
    if req.events.is_empty() {
        return Err(crate::error::missing("events"));
    }
    let events = w::events_to_domain(&req.events)?;
    let status = req.status.as_ref().map(w::status_to_domain).transpose()?;
    let webhook = state
        .webhooks
        .create_webhook(CreateWebhook {
            name,
            url,
            events,
            description: req.description,
            secret: req.secret,
            status,
        })
        .await?;
    Ok(webhook_response(&webhook))
}

async fn list_webhooks(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::ListWebhooks>,
) -> ApiResult<Json<w::ListWebhooksResponse>> {
    let page = state
        .webhooks
        .list_webhooks(
            req.max_results,
            req.page_token.as_deref().filter(|token| !token.is_empty()),
        )
        .await?;
    Ok(Json(w::ListWebhooksResponse {
        webhooks: page.items.iter().map(w::Webhook::from).collect(),
        next_page_token: page.next_page_token,
    }))
}

async fn get_webhook(
    State(state): State<AppState>,
    Path(webhook_id): Path<String>,
) -> ApiResult<Json<w::WebhookResponse>> {
    let webhook = state.webhooks.get_webhook(&webhook_id).await?;
    Ok(webhook_response(&webhook))
}

async fn update_webhook(
    State(state): State<AppState>,
    Path(webhook_id): Path<String>,
    MlflowRequest(req): MlflowRequest<w::UpdateWebhook>,
) -> ApiResult<Json<w::WebhookResponse>> {
    // As MLflow: an empty name, URL or event list means "unchanged"; an empty
    // description or secret clears it.
    let events = if req.events.is_empty() {
        None
    } else {
        Some(w::events_to_domain(&req.events)?)
    };
    let update = WebhookUpdate {
        name: req.name.filter(|name| !name.is_empty()),
        description: req.description,
        url: req.url.filter(|url| !url.is_empty()),
        events,
        secret: req.secret,
        status: req.status.as_ref().map(w::status_to_domain).transpose()?,
    };
    let webhook = state.webhooks.update_webhook(&webhook_id, update).await?;
    Ok(webhook_response(&webhook))
}

async fn delete_webhook(
    State(state): State<AppState>,
    Path(webhook_id): Path<String>,
) -> ApiResult<Json<Value>> {
    state.webhooks.delete_webhook(&webhook_id).await?;
    Ok(Json(json!({})))
}

async fn test_webhook(
    State(state): State<AppState>,
    Path(webhook_id): Path<String>,
    MlflowRequest(req): MlflowRequest<w::TestWebhook>,
) -> ApiResult<Json<w::TestWebhookResponse>> {
    let event = req
        .event
        .as_ref()
        .map(w::WebhookEvent::to_domain)
        .transpose()?;
    let result: WebhookTestResult = state.webhooks.test_webhook(&webhook_id, event).await?;
    Ok(Json(w::TestWebhookResponse {
        result: w::WebhookTestResult {
            success: result.success,
            response_status: result.response_status.map(i64::from),
            response_body: result.response_body,
            error_message: result.error_message,
        },
    }))
}
