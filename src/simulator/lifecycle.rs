//! Realistic task lifecycles for the simulated gateway, as pure functions of time so that the
//! demo is lively and tests are reproducible.

use serde_json::{json, Map, Value};

/// How a simulated task moves over time.
#[derive(Debug, Clone, PartialEq)]
pub enum Lifecycle {
    /// Created -> Checking -> Dumping -> Loading -> Done, then again after a pause.
    FullLoad {
        /// Rows to migrate.
        rows: u64,
        /// Seconds the dump and load take together.
        seconds: f64,
    },
    /// A full load, then Syncing <-> Synced with an advancing binlog.
    FullThenIncremental {
        /// Rows to migrate.
        rows: u64,
        /// Seconds the dump and load take together.
        seconds: f64,
    },
    /// MySQL incremental: Syncing <-> Synced, binlog position advancing, file rotating.
    MysqlIncremental,
    /// Redis incremental: a growing offset and a delay that wanders.
    RedisIncremental,
    /// MongoDB incremental: a delay that wanders.
    MongoIncremental,
    /// Fails, waits, retries, and after `max_retries` ends FailedUnrecoverable.
    FailsAndGivesUp {
        /// MaxRetryCount.
        max_retries: u32,
    },
    /// Syncs for a while, then Stopping, then Stopped.
    Stops,
    /// MySQL incremental on the demo's simulated source, falling up to two minutes behind it
    /// and catching up again every six minutes.
    MysqlFallsBehind,
    /// Failed at `t = stuck_at` and retrying since, its binlog position frozen there while the
    /// source moves on (and eventually purges the file).
    FailedHoldingBinlog {
        /// Seconds into the task's life when it stopped reading.
        stuck_at: f64,
    },
    /// MySQL incremental on the demo's simulated source, `behind` seconds of binlog behind it at
    /// `t = from` and applying `speed` times as fast as the source writes from then on: above
    /// 1 it catches up and then stays at the head, below 1 it falls further behind.
    MysqlAtSpeed {
        /// The task's age when it was `behind`.
        from: f64,
        /// Seconds of binlog it was behind then.
        behind: f64,
        /// Its apply rate over the source's write rate.
        speed: f64,
    },
}

/// Seconds a full load spends in Created and Checking before dumping.
const PRELUDE: f64 = 5.0;
/// Seconds a finished full load stays Done before the demo starts it again.
const DONE_HOLD: f64 = 60.0;
/// Seconds of one failed attempt: Dumping 8, Failed 4, RetryPending 4, Starting 2.
const ATTEMPT: f64 = 18.0;

/// The message the failing task reports.
pub const FAILURE_MESSAGE: &str = "Access denied for user 'udts'@'10.0.0.5' (using password: YES)";

impl Lifecycle {
    /// Seconds of the source's changes not yet applied at `t`, for the lifecycles with an
    /// incremental phase (what UDTS's monitoring reports as the sync delay); `None` outside it.
    pub fn behind_at(&self, t: f64) -> Option<f64> {
        let t = t.max(0.0);
        // A task at the head still trails by a second or two.
        let jitter = 1.0 + (t / 7.0).sin().abs();
        match self {
            Self::MysqlIncremental | Self::RedisIncremental | Self::MongoIncremental => {
                Some(jitter)
            }
            Self::FullThenIncremental { seconds, .. } => (t > PRELUDE + seconds).then_some(jitter),
            Self::Stops => (t < 40.0).then_some(jitter),
            Self::MysqlFallsBehind => {
                Some(60.0 * (1.0 - (t * std::f64::consts::TAU / 360.0).cos()) + jitter)
            }
            Self::MysqlAtSpeed {
                from,
                behind,
                speed,
            } => Some(t - (from - behind + speed * (t - from)).min(t) + jitter),
            Self::FullLoad { .. }
            | Self::FailsAndGivesUp { .. }
            | Self::FailedHoldingBinlog { .. } => None,
        }
    }

    /// The `Data` of `GetUDTSTaskStatus` at `t` seconds into the task's life.
    pub fn status_at(&self, t: f64) -> Value {
        let t = t.max(0.0);
        match self {
            Self::FullLoad { rows, seconds } => {
                let period = PRELUDE + seconds + DONE_HOLD;
                full_load(*rows, *seconds, t % period).unwrap_or_else(|| done(*rows, *seconds))
            }
            Self::FullThenIncremental { rows, seconds } => full_load(*rows, *seconds, t)
                .unwrap_or_else(|| mysql_incremental(t - PRELUDE - seconds)),
            Self::MysqlIncremental => mysql_incremental(t),
            Self::RedisIncremental => json!({
                "Status": syncing_or_synced(t),
                "CurRetryCount": 0, "MaxRetryCount": 3,
                "Progress": {
                    "RedisOffsetSize": (t * 5_000.0) as u64 + 1_048_576,
                    "RedisDelayTime": (3.0 + 2.5 * (t / 20.0).sin()).round() as u64,
                },
            }),
            Self::MongoIncremental => json!({
                "Status": syncing_or_synced(t),
                "CurRetryCount": 0, "MaxRetryCount": 3,
                "Progress": {"MongoDelayTime": (6.0 + 5.0 * (t / 15.0).sin()).round() as u64},
            }),
            Self::FailsAndGivesUp { max_retries } => failing(*max_retries, t),
            Self::Stops => {
                let status = if t < 40.0 {
                    syncing_or_synced(t)
                } else if t < 46.0 {
                    "Stopping"
                } else {
                    "Stopped"
                };
                let mut data = mysql_incremental(t.min(46.0));
                data["Status"] = json!(status);
                data
            }
            Self::MysqlFallsBehind => {
                let behind = 60.0 * (1.0 - (t * std::f64::consts::TAU / 360.0).cos());
                let mut data = mysql_incremental(t - behind);
                data["Status"] = json!(if behind > 5.0 { "Syncing" } else { "Synced" });
                data
            }
            Self::MysqlAtSpeed {
                from,
                behind,
                speed,
            } => {
                let applied = (from - behind + speed * (t - from)).min(t);
                let mut data = mysql_incremental(applied);
                data["Status"] = json!(if t - applied > 5.0 {
                    "Syncing"
                } else {
                    "Synced"
                });
                data
            }
            Self::FailedHoldingBinlog { stuck_at } => {
                let mut data = mysql_incremental(stuck_at.min(t));
                if t > *stuck_at {
                    data["Status"] = json!("Failed");
                    data["CurRetryCount"] = json!(1);
                    data["FailedMessage"] = json!(LOST_CONNECTION_MESSAGE);
                }
                data
            }
        }
    }
}

/// The message of the task that fails holding its binlog position.
pub const LOST_CONNECTION_MESSAGE: &str =
    "Lost connection to MySQL server during query (target 10.0.0.9:3306)";

/// The full-load phases, or `None` once the load is done.
fn full_load(rows: u64, seconds: f64, t: f64) -> Option<Value> {
    if t < 2.0 {
        return Some(json!({"Status": "Created", "CurRetryCount": 0, "MaxRetryCount": 3}));
    }
    if t < PRELUDE {
        return Some(json!({"Status": "Checking", "CurRetryCount": 0, "MaxRetryCount": 3}));
    }
    let elapsed = t - PRELUDE;
    if elapsed >= seconds {
        return None;
    }
    let fraction = elapsed / seconds;
    let status = if fraction < 0.3 { "Dumping" } else { "Loading" };
    let percentage = (fraction * 1000.0).round() / 10.0;
    Some(json!({
        "Status": status,
        "CurRetryCount": 0, "MaxRetryCount": 3,
        "Progress": {
            "TotalCount": rows,
            "CurCount": (rows as f64 * fraction) as u64,
            "TotalDuration": seconds.round() as u64,
            "CurDuration": elapsed as u64,
            "Percentage": percentage,
        },
    }))
}

fn done(rows: u64, seconds: f64) -> Value {
    json!({
        "Status": "Done",
        "CurRetryCount": 0, "MaxRetryCount": 3,
        "Progress": {
            "TotalCount": rows, "CurCount": rows,
            "TotalDuration": seconds.round() as u64, "CurDuration": seconds.round() as u64,
            "Percentage": 100,
        },
    })
}

fn syncing_or_synced(t: f64) -> &'static str {
    if (t / 7.0) as u64 % 3 == 0 {
        "Syncing"
    } else {
        "Synced"
    }
}

/// Bytes a simulated MySQL source writes per second.
pub const BINLOG_BYTES_PER_SECOND: f64 = 20_000.0;
/// Seconds a simulated binlog file is written before the source rotates it.
pub const BINLOG_FILE_SECONDS: f64 = 60.0;
/// The index of the first simulated binlog file.
pub const FIRST_BINLOG_FILE: u64 = 12;

/// The head of the simulated source `t` seconds after its epoch: file index, position and the
/// last executed GTID sequence. Simulated MySQL tasks at `t` are exactly there.
pub fn binlog_head_at(t: f64) -> (u64, u64, u64) {
    let t = t.max(0.0);
    (
        FIRST_BINLOG_FILE + (t / BINLOG_FILE_SECONDS) as u64,
        4 + ((t % BINLOG_FILE_SECONDS) * BINLOG_BYTES_PER_SECOND) as u64,
        (t * 40.0) as u64,
    )
}

/// The uuid of the simulated source's GTIDs.
pub const SOURCE_UUID: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

/// Binlog advancing 20,000 bytes a second, the file rotating every minute.
fn mysql_incremental(t: f64) -> Value {
    let t = t.max(0.0);
    let (file, position, gtid) = binlog_head_at(t);
    json!({
        "Status": syncing_or_synced(t),
        "CurRetryCount": 0, "MaxRetryCount": 3,
        "Sync": {
            "BinlogName": format!("mysql-bin.{file:06}"),
            "BinlogPos": position,
            "BinlogGTID": format!("{SOURCE_UUID}:1-{gtid}"),
        },
    })
}

fn failing(max_retries: u32, t: f64) -> Value {
    let attempt = (t / ATTEMPT) as u32;
    let within = t % ATTEMPT;
    let mut data = Map::new();
    data.insert("MaxRetryCount".into(), json!(max_retries));
    if attempt > max_retries {
        data.insert("Status".into(), json!("FailedUnrecoverable"));
        data.insert("CurRetryCount".into(), json!(max_retries));
        data.insert("FailedMessage".into(), json!(FAILURE_MESSAGE));
        return Value::Object(data);
    }
    let status = match within {
        w if w < 8.0 => "Dumping",
        w if w < 12.0 => "Failed",
        w if w < 16.0 => "RetryPending",
        _ => "Starting",
    };
    data.insert("Status".into(), json!(status));
    data.insert("CurRetryCount".into(), json!(attempt));
    if status != "Dumping" && status != "Starting" {
        data.insert("FailedMessage".into(), json!(FAILURE_MESSAGE));
    }
    if status == "Dumping" {
        data.insert(
            "Progress".into(),
            json!({"TotalCount": 500_000, "CurCount": (within * 6_000.0) as u64,
                   "Percentage": (within * 1.2 * 10.0).round() / 10.0,
                   "CurDuration": within as u64, "TotalDuration": 80}),
        );
    }
    Value::Object(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(lifecycle: &Lifecycle, t: f64) -> String {
        lifecycle.status_at(t)["Status"]
            .as_str()
            .unwrap_or("Created")
            .to_string()
    }

    #[test]
    fn full_load_climbs_to_done() {
        let lifecycle = Lifecycle::FullLoad {
            rows: 1000,
            seconds: 100.0,
        };
        assert_eq!(status(&lifecycle, 0.0), "Created");
        assert_eq!(status(&lifecycle, 3.0), "Checking");
        assert_eq!(status(&lifecycle, 10.0), "Dumping");
        assert_eq!(status(&lifecycle, 60.0), "Loading");
        assert_eq!(status(&lifecycle, 110.0), "Done");
        let early = lifecycle.status_at(20.0)["Progress"]["Percentage"].as_f64();
        let late = lifecycle.status_at(90.0)["Progress"]["Percentage"].as_f64();
        assert!(early < late, "{early:?} < {late:?}");
        assert_eq!(lifecycle.status_at(110.0)["Progress"]["CurCount"], 1000);
    }

    #[test]
    fn incremental_binlog_advances_and_rotates() {
        let a = mysql_incremental(10.0);
        let b = mysql_incremental(20.0);
        assert!(b["Sync"]["BinlogPos"].as_u64() > a["Sync"]["BinlogPos"].as_u64());
        let later = mysql_incremental(70.0);
        assert_eq!(a["Sync"]["BinlogName"], "mysql-bin.000012");
        assert_eq!(later["Sync"]["BinlogName"], "mysql-bin.000013");
        assert!(a.get("Progress").is_none());
    }

    #[test]
    fn failing_task_retries_then_gives_up() {
        let lifecycle = Lifecycle::FailsAndGivesUp { max_retries: 2 };
        assert_eq!(status(&lifecycle, 1.0), "Dumping");
        assert_eq!(status(&lifecycle, 9.0), "Failed");
        assert_eq!(lifecycle.status_at(9.0)["FailedMessage"], FAILURE_MESSAGE);
        assert_eq!(status(&lifecycle, 13.0), "RetryPending");
        assert_eq!(lifecycle.status_at(20.0)["CurRetryCount"], 1);
        assert_eq!(
            status(&lifecycle, 3.0 * ATTEMPT + 1.0),
            "FailedUnrecoverable"
        );
        assert_eq!(lifecycle.status_at(1000.0)["CurRetryCount"], 2);
    }

    #[test]
    fn stopping_task_ends_stopped() {
        assert_eq!(status(&Lifecycle::Stops, 43.0), "Stopping");
        assert_eq!(status(&Lifecycle::Stops, 500.0), "Stopped");
    }
}
