//! Alert rules of a monitor and their notifications.
//!
//! ```yaml
//!     alerts:
//!       - name: inputs-drifted
//!         when: dataset_drift          # or multivariate_drift, `drifted_share >= 0.3`, `missing_share > 0.1`,
//!                                      # `accuracy < 0.8` (any performance metric), `rows < 100`
//!         for: 10m                     # the condition must hold this long (default 0: at once)
//!         min_rows: 500                # fewer rows in the window: the rule is not evaluated
//!         webhook: {url: https://hooks.example.com/keel, secret: s3cret}
//! ```
//!
//! A rule is evaluated on every `ok` result of its monitor, per model
//! version. It goes *pending* when its condition first holds, *fires* once
//! the condition has held for `for` (one notification), and *resolves* on
//! the first evaluation where the condition no longer holds (a second
//! notification). Windows without enough rows, or without the metric, leave
//! the state as it was. Notifications are signed and sent like the
//! registry's webhooks (MLflow's `X-MLflow-Signature` scheme, the same
//! destination allow-list, retries with back-off), off the evaluation path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use keel_tracking::webhooks::payload::signature;
use keel_tracking::webhooks::{AttemptOutcome, Deliverer, SignedRequest};
use serde::{Deserialize, Serialize};

use crate::service::{MonitorResult, Status};
use crate::spec::parse_duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    name: String,
    when: String,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    min_rows: Option<u64>,
    webhook: WebhookTarget,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    pub url: String,
    /// Signs deliveries (HMAC-SHA256, MLflow's scheme); never shown by the API.
    #[serde(default, skip_serializing)]
    pub secret: Option<String>,
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRule {
    pub name: String,
    pub when: String,
    #[serde(skip)]
    pub condition: Condition,
    #[serde(rename = "for_seconds")]
    pub hold: f64,
    pub min_rows: Option<u64>,
    pub webhook: WebhookTarget,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    DatasetDrift,
    /// The window's reconstruction error is outside the reference's thresholds.
    MultivariateDrift,
    Compare {
        quantity: Quantity,
        op: Op,
        threshold: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Quantity {
    DriftedShare,
    /// The largest missing-value share over the features.
    MissingShare,
    Rows,
    Metric(String),
    /// CBPE's estimate of a metric on the window's latest chunk.
    Estimated(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Less,
    LessEq,
    Greater,
    GreaterEq,
}

const METRICS: [&str; 7] = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "rmse",
    "mae",
];
/// What CBPE estimates, as `estimated_<metric>` in conditions.
const ESTIMATED: [&str; 6] = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "specificity",
];

impl RawAlert {
    pub fn validate(self) -> Result<AlertRule, String> {
        let at = format!("alert `{}`", self.name);
        if self.name.is_empty() {
            return Err("an alert needs a name".to_owned());
        }
        let condition = parse_condition(&self.when).map_err(|err| format!("{at}: {err}"))?;
        let hold = match &self.for_ {
            Some(text) => parse_duration(text).map_err(|err| format!("{at}: for: {err}"))?,
            None => Duration::ZERO,
        };
        let url = self.webhook.url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "{at}: the webhook url must start with http:// or https://"
            ));
        }
        Ok(AlertRule {
            name: self.name,
            when: self.when,
            condition,
            hold: hold.as_secs_f64(),
            min_rows: self.min_rows,
            webhook: self.webhook,
        })
    }
}

/// `dataset_drift`, or `QUANTITY OP NUMBER`.
pub fn parse_condition(text: &str) -> Result<Condition, String> {
    let text = text.trim();
    if text == "dataset_drift" {
        return Ok(Condition::DatasetDrift);
    }
    if text == "multivariate_drift" {
        return Ok(Condition::MultivariateDrift);
    }
    let usage = || {
        format!(
            "`{text}` is not a condition: use dataset_drift, or QUANTITY OP NUMBER with QUANTITY one of drifted_share, missing_share, rows, {} and OP one of < <= > >=",
            METRICS.join(", ")
        )
    };
    let position = text.find(['<', '>']).ok_or_else(usage)?;
    let (name, rest) = text.split_at(position);
    let (op, number) = if let Some(number) = rest.strip_prefix("<=") {
        (Op::LessEq, number)
    } else if let Some(number) = rest.strip_prefix(">=") {
        (Op::GreaterEq, number)
    } else if let Some(number) = rest.strip_prefix('<') {
        (Op::Less, number)
    } else if let Some(number) = rest.strip_prefix('>') {
        (Op::Greater, number)
    } else {
        return Err(usage());
    };
    let threshold: f64 = number.trim().parse().map_err(|_| usage())?;
    let quantity = match name.trim() {
        "drifted_share" => Quantity::DriftedShare,
        "missing_share" => Quantity::MissingShare,
        "rows" => Quantity::Rows,
        metric if METRICS.contains(&metric) => Quantity::Metric(metric.to_owned()),
        estimated
            if estimated
                .strip_prefix("estimated_")
                .is_some_and(|metric| ESTIMATED.contains(&metric)) =>
        {
            Quantity::Estimated(estimated["estimated_".len()..].to_owned())
        }
        _ => return Err(usage()),
    };
    Ok(Condition::Compare {
        quantity,
        op,
        threshold,
    })
}

impl Condition {
    /// Whether the condition holds on `result`, with the value it looked at;
    /// `None` when the result does not tell (no drift report, no such metric).
    pub fn check(&self, result: &MonitorResult) -> Option<(bool, f64)> {
        match self {
            Condition::DatasetDrift => {
                let drift = result.drift.as_ref()?;
                Some((drift.dataset_drifted, drift.drifted_share))
            }
            Condition::MultivariateDrift => {
                let chunk = result.multivariate.as_ref()?;
                Some((chunk.alert, chunk.reconstruction_error))
            }
            Condition::Compare {
                quantity,
                op,
                threshold,
            } => {
                let value = match quantity {
                    Quantity::DriftedShare => result.drift.as_ref()?.drifted_share,
                    Quantity::MissingShare => result
                        .data_quality
                        .values()
                        .map(|quality| quality.missing_share)
                        .fold(None, |max: Option<f64>, v| {
                            Some(max.map_or(v, |m| m.max(v)))
                        })?,
                    Quantity::Rows => result.rows as f64,
                    Quantity::Metric(name) => {
                        let performance = result.performance.as_ref()?;
                        if performance.labelled_rows == 0 {
                            return None;
                        }
                        *performance.metrics.get(name)?
                    }
                    Quantity::Estimated(name) => {
                        result.estimated_performance.as_ref()?.latest(name)?
                    }
                };
                let holds = match op {
                    Op::Less => value < *threshold,
                    Op::LessEq => value <= *threshold,
                    Op::Greater => value > *threshold,
                    Op::GreaterEq => value >= *threshold,
                };
                Some((holds, value))
            }
        }
    }
}

/// A change of an alert's state, as stored with the result and sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub alert: String,
    /// `pending`, `firing` or `resolved`.
    pub status: String,
    pub condition: String,
    pub value: f64,
    /// Since when the condition has held (pending and firing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct State {
    pending_since: Option<DateTime<Utc>>,
    firing: bool,
}

/// Alert states per (monitor, version, alert) and the webhook sender.
pub struct Alerts {
    states: Mutex<HashMap<(String, String, String), State>>,
    deliverer: Option<Arc<Deliverer>>,
}

impl Alerts {
    /// `deliverer: None` records transitions without sending (no rules use it then).
    pub fn new(deliverer: Option<Arc<Deliverer>>) -> Alerts {
        Alerts {
            states: Mutex::new(HashMap::new()),
            deliverer,
        }
    }

    /// Applies `rules` to `result`: returns the transitions (and `pending`
    /// notes) and sends a notification for each firing or resolution.
    pub fn evaluate(&self, rules: &[AlertRule], result: &MonitorResult) -> Vec<AlertEvent> {
        let mut events = Vec::new();
        if result.status != Status::Ok {
            return events;
        }
        let Ok(mut states) = self.states.lock() else {
            return events;
        };
        for rule in rules {
            if rule.min_rows.is_some_and(|min| result.rows < min) {
                continue;
            }
            let Some((holds, value)) = rule.condition.check(result) else {
                continue;
            };
            let key = (
                result.monitor.clone(),
                result.version.clone(),
                rule.name.clone(),
            );
            let state = states.entry(key).or_default();
            let now = result.evaluated_at;
            let event = |status: &str, since: Option<DateTime<Utc>>| AlertEvent {
                alert: rule.name.clone(),
                status: status.to_owned(),
                condition: rule.when.clone(),
                value,
                since: since.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            };
            if holds {
                let since = *state.pending_since.get_or_insert(now);
                let held = (now - since).to_std().unwrap_or_default().as_secs_f64();
                if !state.firing && held >= rule.hold {
                    state.firing = true;
                    let fired = event("firing", Some(since));
                    self.notify(rule, result, &fired);
                    events.push(fired);
                } else if !state.firing {
                    events.push(event("pending", Some(since)));
                }
            } else {
                state.pending_since = None;
                if state.firing {
                    state.firing = false;
                    let resolved = event("resolved", None);
                    self.notify(rule, result, &resolved);
                    events.push(resolved);
                }
            }
        }
        events
    }

    /// Whether `alert` of `monitor` on `version` is firing.
    pub fn firing(&self, monitor: &str, version: &str, alert: &str) -> bool {
        self.states
            .lock()
            .ok()
            .and_then(|states| {
                states
                    .get(&(monitor.to_owned(), version.to_owned(), alert.to_owned()))
                    .map(|state| state.firing)
            })
            .unwrap_or(false)
    }

    fn notify(&self, rule: &AlertRule, result: &MonitorResult, event: &AlertEvent) {
        let Some(deliverer) = self.deliverer.clone() else {
            return;
        };
        let body = serde_json::json!({
            "alert": event.alert,
            "status": event.status,
            "condition": event.condition,
            "value": event.value,
            "since": event.since,
            "monitor": result.monitor,
            "model": result.model,
            "version": result.version,
            "evaluated_at": result.evaluated_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "window_start": result.window_start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "rows": result.rows,
            "drifted_share": result.drift.as_ref().map(|d| d.drifted_share),
            "dataset_drifted": result.drift.as_ref().map(|d| d.dataset_drifted),
            "drifted_columns": result.drift.as_ref().map(|d| d.columns.iter().filter(|c| c.drifted).map(|c| c.column.clone()).collect::<Vec<_>>()),
            "performance": result.performance.as_ref().map(|p| &p.metrics),
        })
        .to_string();
        let delivery_id = uuid::Uuid::new_v4().to_string();
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .to_string();
        let signed = rule
            .webhook
            .secret
            .as_deref()
            .filter(|secret| !secret.is_empty())
            .map(|secret| signature(secret, &delivery_id, &timestamp, &body));
        let request = SignedRequest {
            url: rule.webhook.url.clone(),
            body,
            delivery_id,
            timestamp,
            signature: signed,
        };
        let alert = rule.name.clone();
        tokio::spawn(async move {
            let (outcome, attempts) = deliverer.deliver(request).await;
            match outcome {
                AttemptOutcome::Answered { status, .. } if (200..300).contains(&status) => {
                    tracing::info!(%alert, status, attempts, "alert delivered");
                }
                AttemptOutcome::Answered { status, .. } => {
                    tracing::warn!(%alert, status, attempts, "alert webhook answered with an error");
                }
                AttemptOutcome::Refused(refusal) => {
                    tracing::warn!(%alert, reason = %refusal.message(), "alert webhook refused");
                }
                AttemptOutcome::Failed(reason) => {
                    tracing::warn!(%alert, %reason, attempts, "alert webhook delivery failed");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_or_explain() {
        assert_eq!(
            parse_condition("dataset_drift"),
            Ok(Condition::DatasetDrift)
        );
        assert_eq!(
            parse_condition("accuracy < 0.8"),
            Ok(Condition::Compare {
                quantity: Quantity::Metric("accuracy".into()),
                op: Op::Less,
                threshold: 0.8
            })
        );
        assert_eq!(
            parse_condition("drifted_share>=0.3"),
            Ok(Condition::Compare {
                quantity: Quantity::DriftedShare,
                op: Op::GreaterEq,
                threshold: 0.3
            })
        );
        let err = parse_condition("accuracy = 0.8").unwrap_err();
        assert!(err.contains("not a condition"), "{err}");
        assert_eq!(
            parse_condition("estimated_roc_auc < 0.7"),
            Ok(Condition::Compare {
                quantity: Quantity::Estimated("roc_auc".into()),
                op: Op::Less,
                threshold: 0.7
            })
        );
        assert!(parse_condition("estimated_rmse > 1").is_err());
        assert!(parse_condition("speed > 3").is_err());
        assert!(parse_condition("rows > many").is_err());
    }

    fn result(minute: i64, drifted: bool, rows: u64) -> MonitorResult {
        let at = DateTime::<Utc>::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap();
        MonitorResult {
            monitor: "m".into(),
            model: "lr".into(),
            version: "1".into(),
            evaluated_at: at,
            window_start: at,
            window_end: at,
            rows,
            status: Status::Ok,
            message: None,
            drift: Some(keel_monitor::report::DriftReport {
                columns: Vec::new(),
                n_drifted: usize::from(drifted),
                drifted_share: if drifted { 1.0 } else { 0.0 },
                dataset_drifted: drifted,
            }),
            data_quality: Default::default(),
            performance: None,
            estimated_performance: None,
            multivariate: None,
            alerts: Vec::new(),
        }
    }

    fn rule(hold_minutes: u64, min_rows: Option<u64>) -> AlertRule {
        RawAlert {
            name: "drifted".into(),
            when: "dataset_drift".into(),
            for_: Some(format!("{hold_minutes}m")),
            min_rows,
            webhook: WebhookTarget {
                url: "http://127.0.0.1:9/x".into(),
                secret: None,
            },
        }
        .validate()
        .unwrap()
    }

    fn statuses(events: Vec<AlertEvent>) -> Vec<String> {
        events.into_iter().map(|e| e.status).collect()
    }

    #[test]
    fn pending_then_firing_after_for_then_resolved() {
        let alerts = Alerts::new(None);
        let rules = [rule(10, None)];
        assert_eq!(
            statuses(alerts.evaluate(&rules, &result(0, true, 50))),
            ["pending"]
        );
        assert_eq!(
            statuses(alerts.evaluate(&rules, &result(5, true, 50))),
            ["pending"]
        );
        assert!(!alerts.firing("m", "1", "drifted"));
        assert_eq!(
            statuses(alerts.evaluate(&rules, &result(10, true, 50))),
            ["firing"]
        );
        assert!(alerts.firing("m", "1", "drifted"));
        // Firing is announced once.
        assert!(alerts.evaluate(&rules, &result(11, true, 50)).is_empty());
        assert_eq!(
            statuses(alerts.evaluate(&rules, &result(12, false, 50))),
            ["resolved"]
        );
        assert!(!alerts.firing("m", "1", "drifted"));
        // An interruption restarts the `for` clock.
        assert_eq!(
            statuses(alerts.evaluate(&rules, &result(13, true, 50))),
            ["pending"]
        );
        assert!(alerts.evaluate(&rules, &result(14, false, 50)).is_empty());
        assert_eq!(
            statuses(alerts.evaluate(&rules, &result(20, true, 50))),
            ["pending"]
        );
    }

    #[test]
    fn small_windows_leave_the_state_alone() {
        let alerts = Alerts::new(None);
        let rules = [rule(0, Some(100))];
        assert!(alerts.evaluate(&rules, &result(0, true, 99)).is_empty());
        assert_eq!(
            statuses(alerts.evaluate(&rules, &result(1, true, 100))),
            ["firing"]
        );
        // Too few rows cannot resolve it either.
        assert!(alerts.evaluate(&rules, &result(2, false, 10)).is_empty());
        assert!(alerts.firing("m", "1", "drifted"));
    }
}
