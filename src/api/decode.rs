//! From the gateway's bytes to the exporter's models: the envelope and its RetCode, then each
//! action's `Data`. Pure functions, so the client and the fuzz targets run the very same code.

use serde_json::Value;

use super::model::{Envelope, HistoryItem, ListItem, StatusData};
use super::ApiError;

/// The `Data` of an answer whose RetCode is 0, or the failure it reports (`request_uuid` is
/// kept for a support ticket). Never quotes the body.
pub fn envelope(body: &[u8], request_uuid: Option<String>) -> Result<Value, ApiError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| ApiError::Decode {
        detail: describe_bad_body(body, &e),
        request_uuid: request_uuid.clone(),
    })?;
    match envelope.ret_code {
        Some(0) => Ok(envelope.data.unwrap_or(Value::Null)),
        Some(code) => Err(ApiError::RetCode {
            code,
            message: envelope.message.unwrap_or_default(),
            request_uuid,
        }),
        None => Err(ApiError::Decode {
            detail: "no RetCode in the answer".into(),
            request_uuid,
        }),
    }
}

/// `GetUDTSTaskStatus`'s `Data`: an object (every field lenient), or nothing said.
pub fn status_data(data: Value) -> Result<StatusData, ApiError> {
    match data {
        Value::Object(_) => serde_json::from_value(data).map_err(|e| ApiError::Decode {
            detail: format!("Data is not a StatusData: {e}"),
            request_uuid: None,
        }),
        // An absent Data on success says nothing about the task, but it is not an error.
        Value::Null => Ok(StatusData::default()),
        _ => Err(ApiError::Decode {
            detail: "Data is not an object".into(),
            request_uuid: None,
        }),
    }
}

/// `GetUDTSTaskHistory`'s `Data`. The documented example answers `{}`, so anything but an
/// array is an empty history, not an error; an item of the wrong shape is left out.
pub fn history(data: Value) -> Vec<HistoryItem> {
    match data {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| serde_json::from_value(item).ok())
            .collect(),
        _ => Vec::new(),
    }
}

/// One `ListUDTSTask` page's `Data`; an item of the wrong shape is left out.
pub fn list_page(data: Value) -> Result<Vec<ListItem>, ApiError> {
    match data {
        Value::Array(items) => Ok(items
            .into_iter()
            .filter_map(|item| serde_json::from_value(item).ok())
            .collect()),
        Value::Null => Ok(Vec::new()),
        _ => Err(ApiError::Decode {
            detail: "Data is not an array".into(),
            request_uuid: None,
        }),
    }
}

/// Says what was wrong with a body without quoting it (an error page could echo our request).
fn describe_bad_body(body: &[u8], error: &serde_json::Error) -> String {
    let trimmed = body.trim_ascii_start();
    if trimmed.is_empty() {
        "empty body".into()
    } else if trimmed.first() == Some(&b'<') {
        "HTML instead of JSON".into()
    } else {
        format!("invalid JSON ({} bytes): {error}", body.len())
    }
}
