//! Opaque page tokens: base64 of a small JSON object, as MLflow's are.

use crate::{KeelError, Result};
use base64::Engine;

/// Encodes an offset into an opaque page token.
pub fn encode_offset_token(offset: u64) -> String {
    let json = serde_json::json!({ "offset": offset }).to_string();
    base64::engine::general_purpose::STANDARD.encode(json)
}

/// Decodes a page token made by [`encode_offset_token`]; an empty token is offset 0.
pub fn decode_offset_token(token: Option<&str>) -> Result<u64> {
    let token = match token {
        None | Some("") => return Ok(0),
        Some(t) => t,
    };
    let invalid = || {
        KeelError::invalid(format!(
            "Invalid page token, could not base64-decode: {token}"
        ))
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| invalid())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    value.get("offset").and_then(|o| o.as_u64()).ok_or_else(|| {
        KeelError::invalid(format!(
            "Invalid page token, offset missing or negative: {token}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_round_trips() {
        assert_eq!(
            decode_offset_token(Some(&encode_offset_token(150))).unwrap(),
            150
        );
        assert_eq!(decode_offset_token(None).unwrap(), 0);
        assert_eq!(decode_offset_token(Some("")).unwrap(), 0);
    }

    #[test]
    fn garbage_token_is_invalid_parameter() {
        let err = decode_offset_token(Some("not a token!")).unwrap_err();
        assert_eq!(err.code, crate::ErrorCode::InvalidParameterValue);
    }
}
