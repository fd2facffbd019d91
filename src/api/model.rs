//! The gateway's response models, parsed leniently.
//!
//! The gateway has been seen sending `RetCode` as a string, numbers as strings or floats where
//! ints are documented, and any field of a data model may be missing. Every field here is
//! optional, numbers become `f64` (what Prometheus stores anyway) and a value of the wrong shape
//! becomes "absent" rather than failing the whole answer: one odd field must not hide the rest of
//! a task's state.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The envelope every action answers with.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    /// 0 on success. A missing RetCode is treated as a decode error by the client.
    #[serde(rename = "RetCode", default, deserialize_with = "lenient::integer")]
    pub ret_code: Option<i64>,
    /// Human-readable error text when `ret_code` is not 0.
    #[serde(rename = "Message", default, deserialize_with = "lenient::string")]
    pub message: Option<String>,
    /// The action's payload; its shape depends on the action.
    #[serde(rename = "Data", default)]
    pub data: Option<Value>,
}

/// `Data` of `GetUDTSTaskStatus`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StatusData {
    /// The task status; an open set (see [`crate::status`]).
    #[serde(default, deserialize_with = "lenient::string")]
    pub status: Option<String>,
    /// Why the task failed, while it is failed.
    #[serde(default, deserialize_with = "lenient::string")]
    pub failed_message: Option<String>,
    /// Retries used so far.
    #[serde(default, deserialize_with = "lenient::number")]
    pub cur_retry_count: Option<f64>,
    /// Retries the user allowed.
    #[serde(default, deserialize_with = "lenient::number")]
    pub max_retry_count: Option<f64>,
    /// Full-load progress; empty for incremental-only tasks.
    #[serde(default, deserialize_with = "lenient::object")]
    pub progress: Option<Progress>,
    /// Binlog position of a MySQL incremental phase.
    #[serde(default, deserialize_with = "lenient::object")]
    pub sync: Option<SyncData>,
}

/// `Progress` of a task.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Progress {
    /// Rows (entries) to migrate in all.
    #[serde(default, deserialize_with = "lenient::number")]
    pub total_count: Option<f64>,
    /// Rows migrated so far.
    #[serde(default, deserialize_with = "lenient::number")]
    pub cur_count: Option<f64>,
    /// Estimated total duration, seconds.
    #[serde(default, deserialize_with = "lenient::number")]
    pub total_duration: Option<f64>,
    /// Elapsed duration, seconds.
    #[serde(default, deserialize_with = "lenient::number")]
    pub cur_duration: Option<f64>,
    /// Completion, 0..100.
    #[serde(default, deserialize_with = "lenient::number")]
    pub percentage: Option<f64>,
    /// Redis replication offset.
    #[serde(default, deserialize_with = "lenient::number")]
    pub redis_offset_size: Option<f64>,
    /// Redis replication delay, seconds.
    #[serde(default, deserialize_with = "lenient::number")]
    pub redis_delay_time: Option<f64>,
    /// MongoDB replication delay, seconds.
    #[serde(default, deserialize_with = "lenient::number")]
    pub mongo_delay_time: Option<f64>,
}

/// `Sync` of a task: where the incremental phase is in the source's binlog.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SyncData {
    /// Binlog file name, e.g. `mysql-bin.000006`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub binlog_name: Option<String>,
    /// Offset inside that file.
    #[serde(default, deserialize_with = "lenient::number")]
    pub binlog_pos: Option<f64>,
    /// GTID set; kept for `check` output, never used as a label (it churns).
    #[serde(rename = "BinlogGTID", default, deserialize_with = "lenient::string")]
    pub binlog_gtid: Option<String>,
}

impl SyncData {
    /// The numeric suffix of the binlog file name (`mysql-bin.000006` -> 6), so rotation shows up
    /// as a number that only grows instead of a churning label.
    pub fn binlog_file_index(&self) -> Option<f64> {
        let name = self.binlog_name.as_deref()?;
        let (_, suffix) = name.rsplit_once('.')?;
        if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        suffix.parse::<f64>().ok()
    }
}

/// One entry of `ListUDTSTask`'s `Data` array.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListItem {
    /// The task id; entries without one are skipped.
    #[serde(default, deserialize_with = "lenient::string")]
    pub task_id: Option<String>,
    /// The name the user gave the task.
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: Option<String>,
    /// The mode: `full`, `incremental`, `full+incremental`, `bidirectional`.
    #[serde(rename = "Type", default, deserialize_with = "lenient::string")]
    pub mode: Option<String>,
    /// Creation time, unix seconds.
    #[serde(default, deserialize_with = "lenient::number")]
    pub create_time: Option<f64>,
    /// Billing expiry, unix seconds.
    #[serde(default, deserialize_with = "lenient::number")]
    pub expire_time: Option<f64>,
    /// Status, retries and progress at list time, read as a status answer is.
    #[serde(flatten)]
    pub state: StatusData,
}

impl ListItem {
    /// What the list says of the task's state, in the shape of a status answer: status,
    /// retries and progress; no `Sync`, delays or failure message (only the status call has
    /// those).
    pub fn listed_state(&self) -> StatusData {
        StatusData {
            failed_message: None,
            sync: None,
            progress: self.state.progress.as_ref().map(|p| Progress {
                redis_offset_size: None,
                redis_delay_time: None,
                mongo_delay_time: None,
                ..p.clone()
            }),
            ..self.state.clone()
        }
    }
}

/// One entry of `GetUDTSTaskHistory`'s `Data`: the task entered `ant_state` at `create_time`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    /// The status entered.
    #[serde(default, deserialize_with = "lenient::string")]
    pub ant_state: Option<String>,
    /// When, unix seconds.
    #[serde(default, deserialize_with = "lenient::number")]
    pub create_time: Option<f64>,
}

/// When the task entered `current` for the last time, by its history: the start of the
/// trailing run of entries in that status. `None` when the history does not end in `current`
/// (it is stale or empty) or carries no times.
pub fn entered_current_status(history: &[HistoryItem], current: &str) -> Option<f64> {
    let mut timed: Vec<(f64, &str)> = history
        .iter()
        .filter_map(|h| Some((h.create_time?, h.ant_state.as_deref()?)))
        .collect();
    timed.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut since = None;
    for (time, state) in timed.iter().rev() {
        if *state != current {
            break;
        }
        since = Some(*time);
    }
    since
}

/// Deserializers that turn a value of the wrong shape into `None` instead of an error.
mod lenient {
    use super::*;

    /// A number, or a string holding one. Non-finite values are absent: Prometheus would accept
    /// them, but a NaN progress is a lie about the task, not a measurement.
    pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|v| v.is_finite()))
    }

    /// An integer, or a string or float holding one (`"0"`, `0.0`).
    pub fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let value = number(d)?;
        Ok(value
            .filter(|v| v.fract() == 0.0 && v.abs() < 9.0e15)
            .map(|v| v as i64))
    }

    /// A string; a number or bool is taken as its text, anything else is absent.
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        })
    }

    /// A nested object; anything else (null, `""`, an array) is absent.
    pub fn object<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        match Value::deserialize(d)? {
            value @ Value::Object(_) => serde_json::from_value(value)
                .map(Some)
                .map_err(serde::de::Error::custom),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(entries: &[(&str, f64)]) -> Vec<HistoryItem> {
        entries
            .iter()
            .map(|(state, time)| HistoryItem {
                ant_state: Some(state.to_string()),
                create_time: Some(*time),
            })
            .collect()
    }

    #[test]
    fn the_history_tells_when_the_current_status_was_last_entered() {
        let entries = history(&[
            ("Loading", 300.0),
            ("Starting", 100.0),
            ("Failed", 200.0),
            ("Loading", 400.0),
        ]);
        // Out of order on the wire: sorted by time, the trailing run of Loading starts at 300.
        assert_eq!(entered_current_status(&entries, "Loading"), Some(300.0));
        // A history that does not end in the current status says nothing.
        assert_eq!(entered_current_status(&entries, "Failed"), None);
        assert_eq!(entered_current_status(&[], "Loading"), None);
        // The documented example's `{}` and odd entries parse to nothing, not an error.
        let odd: Vec<HistoryItem> = serde_json::from_str(
            r#"[{"AntState": "Loading"}, {"CreateTime": "12"}, {"AntState": 5, "CreateTime": 7}]"#,
        )
        .unwrap();
        assert_eq!(entered_current_status(&odd, "Loading"), None);
    }

    fn status_of(body: &str) -> StatusData {
        let envelope: Envelope = serde_json::from_str(body).unwrap();
        serde_json::from_value(envelope.data.unwrap()).unwrap()
    }

    #[test]
    fn seed_example_parses() {
        let body = r#"{
            "Action": "GetUDTSTaskStatusResponse",
            "Data": {
                "CurRetryCount": 0, "MaxRetryCount": 0,
                "Progress": {"CurCount": 0, "CurDuration": 0, "Percentage": 0, "TotalCount": 0, "TotalDuration": 0},
                "Status": "Done",
                "Sync": {"BinlogName": "mysql-bin.000006", "BinlogPos": 154}
            },
            "Message": "", "RetCode": 0
        }"#;
        let envelope: Envelope = serde_json::from_str(body).unwrap();
        assert_eq!(envelope.ret_code, Some(0));
        let status = status_of(body);
        assert_eq!(status.status.as_deref(), Some("Done"));
        assert_eq!(status.progress.as_ref().unwrap().percentage, Some(0.0));
        let sync = status.sync.unwrap();
        assert_eq!(sync.binlog_pos, Some(154.0));
        assert_eq!(sync.binlog_file_index(), Some(6.0));
    }

    #[test]
    fn numbers_and_ret_code_may_arrive_as_strings_or_floats() {
        let body = r#"{"RetCode": "0", "Data": {"Status": "Loading", "CurRetryCount": "2",
            "MaxRetryCount": 5.0, "Progress": {"Percentage": "42.5", "CurCount": "1000", "TotalCount": 2000.0}}}"#;
        let envelope: Envelope = serde_json::from_str(body).unwrap();
        assert_eq!(envelope.ret_code, Some(0));
        let status = status_of(body);
        assert_eq!(status.cur_retry_count, Some(2.0));
        assert_eq!(status.max_retry_count, Some(5.0));
        let progress = status.progress.unwrap();
        assert_eq!(progress.percentage, Some(42.5));
        assert_eq!(progress.cur_count, Some(1000.0));
        assert_eq!(progress.total_count, Some(2000.0));
    }

    #[test]
    fn missing_or_empty_progress_is_absent_not_zero() {
        let status = status_of(r#"{"RetCode": 0, "Data": {"Status": "Syncing", "Progress": ""}}"#);
        assert_eq!(status.progress, None);
        let status = status_of(r#"{"RetCode": 0, "Data": {"Status": "Syncing"}}"#);
        assert_eq!(status.progress, None);
        assert_eq!(status.cur_retry_count, None);
    }

    #[test]
    fn unknown_status_is_kept_verbatim() {
        let status = status_of(r#"{"RetCode": 0, "Data": {"Status": "Teleporting"}}"#);
        assert_eq!(status.status.as_deref(), Some("Teleporting"));
    }

    #[test]
    fn non_zero_ret_code_and_message_are_read() {
        let envelope: Envelope =
            serde_json::from_str(r#"{"RetCode": 171, "Message": "Signature VerifyAC Error"}"#)
                .unwrap();
        assert_eq!(envelope.ret_code, Some(171));
        assert_eq!(
            envelope.message.as_deref(),
            Some("Signature VerifyAC Error")
        );
        assert!(envelope.data.is_none());
    }

    #[test]
    fn values_of_the_wrong_shape_are_absent() {
        let status = status_of(
            r#"{"RetCode": 0, "Data": {"Status": null, "CurRetryCount": "many",
                "Progress": {"Percentage": "NaN", "CurCount": [1], "TotalCount": {"x": 1}}, "Sync": []}}"#,
        );
        assert_eq!(status.status, None);
        assert_eq!(status.cur_retry_count, None);
        assert_eq!(status.sync, None);
        let progress = status.progress.unwrap();
        assert_eq!(progress.percentage, None);
        assert_eq!(progress.cur_count, None);
        assert_eq!(progress.total_count, None);
    }

    #[test]
    fn redis_and_mongo_delays_are_read() {
        let status = status_of(
            r#"{"RetCode": 0, "Data": {"Status": "Syncing",
                "Progress": {"RedisOffsetSize": 123456, "RedisDelayTime": 3, "MongoDelayTime": "7"}}}"#,
        );
        let progress = status.progress.unwrap();
        assert_eq!(progress.redis_offset_size, Some(123456.0));
        assert_eq!(progress.redis_delay_time, Some(3.0));
        assert_eq!(progress.mongo_delay_time, Some(7.0));
    }

    #[test]
    fn binlog_file_index_needs_a_numeric_suffix() {
        let sync = |name: &str| SyncData {
            binlog_name: Some(name.into()),
            ..Default::default()
        };
        assert_eq!(sync("mysql-bin.000123").binlog_file_index(), Some(123.0));
        assert_eq!(sync("mysql-bin").binlog_file_index(), None);
        assert_eq!(sync("mysql-bin.").binlog_file_index(), None);
        assert_eq!(sync("mysql-bin.12a").binlog_file_index(), None);
    }

    #[test]
    fn list_items_parse_with_mode_in_type() {
        let items: Vec<ListItem> = serde_json::from_str(
            r#"[{"TaskId": "udts-1", "Name": "orders", "Type": "full+incremental",
                 "Status": "Syncing", "CreateTime": 1700000000, "ExpireTime": "1800000000"}]"#,
        )
        .unwrap();
        assert_eq!(items[0].mode.as_deref(), Some("full+incremental"));
        assert_eq!(items[0].expire_time, Some(1.8e9));
    }
}
