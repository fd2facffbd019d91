//! The simulated gateway's `QueryMetricDataSummary`: UDTS's monitoring numbers for its tasks,
//! following each task's lifecycle. An incremental task reports its delay, the data behind it
//! and UDTS's estimate, which grow while it falls behind and shrink while it catches up; read
//! and write rates (rows per second only for MySQL); and network latency with some jitter. A
//! full load reports its rates only; a finished, stopped or failing task reports nothing.
//! Samples are a minute old and on the minute, as the service's are.

use serde_json::{json, Value};

use crate::api::monitor::MonitorMetric;

/// Bytes a simulated source writes a second; what an incremental task reads at the head.
const WRITE_RATE: f64 = 40_000.0;

/// The monitored values of a task at `t` seconds into its life, with `state` its status data
/// and `behind` the seconds its lifecycle is behind its source, when it has one.
pub fn values(state: &Value, behind: Option<f64>, t: f64) -> Vec<(MonitorMetric, f64)> {
    use MonitorMetric::*;
    let status = state["Status"].as_str().unwrap_or("");
    let wave = |period: f64| (t / period).sin();
    let latency = [
        (SourceLatency, 2.0 + 1.5 * wave(11.0).abs()),
        (TargetLatency, 1.0 + 0.8 * wave(13.0).abs()),
    ];
    let mysql = state.get("Sync").is_some_and(|sync| sync.is_object());
    match status {
        "Syncing" | "Synced" => {
            // A Redis or MongoDB task's status says its delay; monitoring says the same.
            let behind = state["Progress"]["RedisDelayTime"]
                .as_f64()
                .or_else(|| state["Progress"]["MongoDelayTime"].as_f64())
                .or(behind)
                .unwrap_or(1.0);
            // Falling behind: it writes slower than the source does; catching up, faster.
            let write = WRITE_RATE * if behind > 5.0 { 0.8 } else { 1.0 } * (1.0 + 0.1 * wave(5.0));
            let mut values = vec![
                (SyncDelay, behind.round()),
                (RemainingBytes, (behind * WRITE_RATE).round()),
                (
                    SourceReadBytes,
                    (WRITE_RATE * (1.0 + 0.1 * wave(3.0))).round(),
                ),
                (TargetWriteBytes, write.round()),
            ];
            if mysql {
                values.push((EstimatedRemaining, (behind * 1.5).round()));
                values.push((SourceReadRows, (WRITE_RATE / 200.0).round()));
                values.push((TargetWriteRows, (write / 200.0).round()));
            }
            values.extend(latency);
            values
        }
        "Dumping" | "Loading" => {
            let rate = 2_000_000.0 * (1.0 + 0.2 * wave(4.0));
            let mut values = vec![
                (SourceReadBytes, rate.round()),
                (TargetWriteBytes, (rate * 0.95).round()),
            ];
            values.extend(latency);
            values
        }
        _ => Vec::new(),
    }
}

/// One resource of the answer, as the service words it (and UCloud's SDK models it), with the
/// metrics in `metrics` (all when empty).
pub fn resource(
    (id, name): (&str, &str),
    product: &str,
    values: &[(MonitorMetric, f64)],
    metrics: &[&str],
    at: i64,
) -> Value {
    let attrs: Vec<Value> = values
        .iter()
        .filter(|(metric, _)| metrics.is_empty() || metrics.contains(&metric.key(product).as_str()))
        .map(|(metric, value)| {
            let key = metric.key(product);
            json!({
                "Metric": key,
                "MetricValues": [{
                    "Metric": key,
                    "TagsList": [],
                    "Value": {"Timestamp": at, "Value": value},
                }],
            })
        })
        .collect();
    json!({
        "ResourceId": id,
        "Name": name,
        "ProductKey": product,
        "Region": "cn-bj2",
        "Zone": "",
        "Status": 1,
        "MonitorAttr": attrs,
    })
}
