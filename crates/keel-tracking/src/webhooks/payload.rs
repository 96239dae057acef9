//! What a delivery carries, byte for byte as MLflow sends it: the envelope
//! `{"entity", "action", "timestamp", "data"}` serialized like Python's
//! `json.dumps` (`", "` and `": "` separators, non-ASCII escaped), and the
//! Standard-Webhooks-style signature `v1,<base64 HMAC-SHA256>` over
//! `<delivery id>.<unix seconds>.<body>`.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use keel_core::tracking::Tag;
use keel_core::webhooks::{WebhookAction, WebhookEntity, WebhookEvent};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use sha2::Sha256;

/// Header names and signature version, as MLflow's `webhooks/constants.py`.
pub const SIGNATURE_HEADER: &str = "X-MLflow-Signature";
pub const TIMESTAMP_HEADER: &str = "X-MLflow-Timestamp";
pub const DELIVERY_ID_HEADER: &str = "X-MLflow-Delivery-Id";
pub const SIGNATURE_VERSION: &str = "v1";

/// Tags as a JSON object in the order given (a later duplicate key wins, as
/// in a Python dict built from the list).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagMap(Vec<(String, String)>);

impl TagMap {
    pub fn new(tags: &[Tag]) -> TagMap {
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(tags.len());
        for tag in tags {
            match pairs.iter_mut().find(|(key, _)| *key == tag.key) {
                Some(pair) => pair.1 = tag.value.clone(),
                None => pairs.push((tag.key.clone(), tag.value.clone())),
            }
        }
        TagMap(pairs)
    }
}

impl Serialize for TagMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// The `data` of an event, field for field as MLflow's payload types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EventPayload {
    RegisteredModelCreated {
        name: String,
        tags: TagMap,
        description: Option<String>,
    },
    ModelVersionCreated {
        name: String,
        version: String,
        source: String,
        run_id: Option<String>,
        tags: TagMap,
        description: Option<String>,
    },
    ModelVersionTagSet {
        name: String,
        version: String,
        key: String,
        value: String,
    },
    ModelVersionTagDeleted {
        name: String,
        version: String,
        key: String,
    },
    ModelVersionAliasCreated {
        name: String,
        alias: String,
        version: String,
    },
    ModelVersionAliasDeleted {
        name: String,
        alias: String,
    },
    /// MLflow's example payload for events Keel never emits (prompts, budgets),
    /// used only by the test endpoint.
    Example(serde_json::Value),
}

fn example_tags() -> TagMap {
    TagMap(vec![("example_key".into(), "example_value".into())])
}

/// MLflow's example payload for `event`, sent by the test endpoint.
pub fn example_payload(event: WebhookEvent) -> EventPayload {
    use WebhookAction as A;
    use WebhookEntity as E;
    let name = || "example_model".to_string();
    let prompt = || "example_prompt".to_string();
    match (event.entity(), event.action()) {
        (E::RegisteredModel, _) => EventPayload::RegisteredModelCreated {
            name: name(),
            tags: example_tags(),
            description: Some("An example registered model".into()),
        },
        (E::ModelVersion, _) => EventPayload::ModelVersionCreated {
            name: name(),
            version: "1".into(),
            source: "models:/123".into(),
            run_id: Some("abcd1234abcd5678".into()),
            tags: example_tags(),
            description: Some("An example model version".into()),
        },
        (E::ModelVersionTag, A::Deleted) => EventPayload::ModelVersionTagDeleted {
            name: name(),
            version: "1".into(),
            key: "example_key".into(),
        },
        (E::ModelVersionTag, _) => EventPayload::ModelVersionTagSet {
            name: name(),
            version: "1".into(),
            key: "example_key".into(),
            value: "example_value".into(),
        },
        (E::ModelVersionAlias, A::Deleted) => EventPayload::ModelVersionAliasDeleted {
            name: name(),
            alias: "example_alias".into(),
        },
        (E::ModelVersionAlias, _) => EventPayload::ModelVersionAliasCreated {
            name: name(),
            alias: "example_alias".into(),
            version: "1".into(),
        },
        (E::Prompt, _) => EventPayload::Example(serde_json::json!({
            "name": prompt(), "tags": {"example_key": "example_value"},
            "description": "An example prompt",
        })),
        (E::PromptVersion, _) => EventPayload::Example(serde_json::json!({
            "name": prompt(), "version": "1", "template": "Hello {{name}}!",
            "tags": {"example_key": "example_value"}, "description": "An example prompt version",
        })),
        (E::PromptTag, A::Deleted) => {
            EventPayload::Example(serde_json::json!({"name": prompt(), "key": "example_key"}))
        }
        (E::PromptTag, _) => EventPayload::Example(serde_json::json!({
            "name": prompt(), "key": "example_key", "value": "example_value",
        })),
        (E::PromptVersionTag, A::Deleted) => EventPayload::Example(serde_json::json!({
            "name": prompt(), "version": "1", "key": "example_key",
        })),
        (E::PromptVersionTag, _) => EventPayload::Example(serde_json::json!({
            "name": prompt(), "version": "1", "key": "example_key", "value": "example_value",
        })),
        (E::PromptAlias, A::Deleted) => {
            EventPayload::Example(serde_json::json!({"name": prompt(), "alias": "example_alias"}))
        }
        (E::PromptAlias, _) => EventPayload::Example(serde_json::json!({
            "name": prompt(), "alias": "example_alias", "version": "1",
        })),
        (E::BudgetPolicy, _) => EventPayload::Example(serde_json::json!({
            "budget_policy_id": "bp-abc123", "budget_unit": "USD", "budget_amount": 100.0,
            "current_spend": 105.5, "duration_unit": "MONTHS", "duration_value": 1,
            "target_scope": "ENDPOINT", "workspace": "default", "target_value": "ep-abc123",
            "window_start": 1_704_067_200_000_i64,
        })),
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    entity: &'static str,
    action: &'static str,
    timestamp: &'a str,
    data: &'a EventPayload,
}

/// The request body of a delivery at `now`.
pub fn delivery_body(event: WebhookEvent, payload: &EventPayload, now: SystemTime) -> String {
    let timestamp = iso_timestamp(now);
    let envelope = Envelope {
        entity: event.entity().as_str(),
        action: event.action().as_str(),
        timestamp: &timestamp,
        data: payload,
    };
    python_json(&envelope)
}

/// Serializes as Python's `json.dumps` with its defaults.
pub fn python_json<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Serializing our own payload types into memory cannot fail.
    if value.serialize(&mut serializer).is_err() {
        return "{}".to_string();
    }
    String::from_utf8(out).unwrap_or_else(|_| "{}".to_string())
}

struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }

    /// `ensure_ascii=True`: everything beyond ASCII as `\uXXXX` (UTF-16 units).
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut units = [0u16; 2];
        for ch in fragment.chars() {
            if ch.is_ascii() {
                let mut byte = [0u8; 1];
                writer.write_all(ch.encode_utf8(&mut byte).as_bytes())?;
            } else {
                for unit in ch.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// `datetime.now(timezone.utc).isoformat()`: `2025-01-31T12:00:00.123456+00:00`
/// (without the fraction when it is zero, as Python writes it).
pub fn iso_timestamp(now: SystemTime) -> String {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let micros = since_epoch.subsec_micros();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let seconds_of_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let time = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60
    );
    if micros == 0 {
        format!("{time}+00:00")
    } else {
        format!("{time}.{micros:06}+00:00")
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `v1,<base64(HMAC-SHA256(secret, "<delivery_id>.<timestamp>.<body>"))>`.
pub fn signature(secret: &str, delivery_id: &str, timestamp: &str, body: &str) -> String {
    // HMAC accepts keys of any length, so this never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(delivery_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!(
        "{SIGNATURE_VERSION},{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn signature_matches_mlflows_scheme() {
        // Computed with Python: base64(hmac.new(b"my-secret",
        // b"d-1.1700000000.{\"a\": 1}", sha256).digest()).
        let signed = signature("my-secret", "d-1", "1700000000", "{\"a\": 1}");
        assert_eq!(signed, "v1,BsTS+ip4KN2s6FLRBVEWvU5xYQzRfRFkunxqEfqgJA8=");
        // Independent check of the HMAC itself with RFC 4231 test case 2.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn bodies_are_formatted_like_python_json_dumps() {
        let payload = EventPayload::ModelVersionCreated {
            name: "modèle".into(),
            version: "3".into(),
            source: "models:/m-1".into(),
            run_id: None,
            tags: TagMap::new(&[Tag::new("b", "1"), Tag::new("a", "2"), Tag::new("b", "3")]),
            description: None,
        };
        let now = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(
            delivery_body(WebhookEvent::MODEL_VERSION_CREATED, &payload, now),
            "{\"entity\": \"model_version\", \"action\": \"created\", \
             \"timestamp\": \"2023-11-14T22:13:20.123456+00:00\", \"data\": {\"name\": \
             \"mod\\u00e8le\", \"version\": \"3\", \"source\": \"models:/m-1\", \"run_id\": null, \
             \"tags\": {\"b\": \"3\", \"a\": \"2\"}, \"description\": null}}"
        );
        assert_eq!(python_json(&vec!["😀"]), "[\"\\ud83d\\ude00\"]");
    }

    #[test]
    fn timestamps_follow_python_isoformat() {
        assert_eq!(iso_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00+00:00");
        let leap_day = UNIX_EPOCH + Duration::from_secs(951_782_400) + Duration::from_micros(5);
        assert_eq!(iso_timestamp(leap_day), "2000-02-29T00:00:00.000005+00:00");
    }

    #[test]
    fn every_event_has_an_example_payload() {
        let body = python_json(&example_payload(WebhookEvent::MODEL_VERSION_ALIAS_DELETED));
        assert_eq!(
            body,
            "{\"name\": \"example_model\", \"alias\": \"example_alias\"}"
        );
    }
}
