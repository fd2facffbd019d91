//! The simulated gateway's `QueryMetricDataSummary`: UDTS's monitoring numbers for its tasks,
//! following each task's lifecycle. An incremental task reports its delay, the data behind it
//! and UDTS's estimate, which grow while it falls behind and shrink while it catches up; read
//! and write rates (rows per second only for MySQL); and network latency with some jitter. A
//! full load reports its rates only; a finished, stopped or failing task reports nothing.
//! Samples are a minute old and on the minute, as the service's are.
//!
//! Both actions are answered, as UCloud's Python SDK (`ucloud.services.cloudwatch`) sends and
//! parses them: `QueryMetricDataSummary` (the latest value of each metric for a page of
//! resources) and `QueryMetricDataSet` (series of up to 10 metric/resource pairs).

use serde_json::{json, Value};

use crate::api::monitor::MonitorMetric;
use crate::api::signer::Params;
use crate::task::TaskKind;

/// The action that reads series.
pub const DATA_SET_ACTION: &str = "QueryMetricDataSet";

/// Pairs one `QueryMetricDataSet` call may ask for.
const MAX_PAIRS: usize = 10;

/// A task as the monitoring actions list it.
pub struct Monitored<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub kind: TaskKind,
}

/// What a task's metrics were at a minute (unix seconds): (metric, value, sample time).
pub trait Sampler: Fn(&str, i64) -> Vec<(MonitorMetric, f64, i64)> {}
impl<F: Fn(&str, i64) -> Vec<(MonitorMetric, f64, i64)>> Sampler for F {}

fn product_kind(params: &Params) -> Result<(TaskKind, &'static str), (i64, String)> {
    match params.get("ProductKey").map(String::as_str) {
        Some("udts") => Ok((TaskKind::Transfer, "udts")),
        Some("udtsdis") => Ok((TaskKind::Integration, "udtsdis")),
        _ => Err((230, "Params [ProductKey] not valid".into())),
    }
}

/// The values of `N`-numbered parameters `prefix.N` (`ResourceIds.0`, ...), in order of N.
fn numbered<'a>(params: &'a Params, prefix: &str) -> Vec<&'a str> {
    let mut found: Vec<(usize, &str)> = params
        .iter()
        .filter_map(|(key, value)| {
            let n = key.strip_prefix(prefix)?.strip_prefix('.')?.parse().ok()?;
            Some((n, value.as_str()))
        })
        .collect();
    found.sort_unstable();
    found.into_iter().map(|(_, value)| value).collect()
}

/// `QueryMetricDataSummary`: the tasks of `ProductKey` named by `ResourceIds.N` (or all of
/// them), a page by `Offset` and `Limit`, each with the latest minute's values of `Metrics.N`
/// (or all); ids it does not know are left out, as the service does.
pub fn summary(
    params: &Params,
    tasks: &[Monitored<'_>],
    sample: impl Sampler,
) -> Result<Value, (i64, String)> {
    let (kind, product) = product_kind(params)?;
    let number = |key: &str| params.get(key).and_then(|v| v.parse::<usize>().ok());
    let (Some(offset), Some(limit)) = (number("Offset"), number("Limit")) else {
        return Err((230, "Missing params [Offset] or [Limit]".into()));
    };
    let wanted = numbered(params, "ResourceIds");
    let metrics = numbered(params, "Metrics");
    let minute = (crate::time::unix_now() / 60.0).floor() as i64 * 60 - 60;
    let list: Vec<Value> = tasks
        .iter()
        .filter(|t| t.kind == kind && (wanted.is_empty() || wanted.contains(&t.id)))
        .skip(offset)
        .take(limit)
        .map(|task| {
            let samples = sample(task.id, minute);
            resource((task.id, task.name), product, &samples, &metrics)
        })
        .collect();
    Ok(json!({"Total": list.len(), "List": list}))
}

/// `QueryMetricDataSet`: for each `MetricInfos.N` pair (at most 10), the samples of that
/// metric of that task from `StartTime` to `EndTime`, one per `Period` (60 s or more); an
/// unknown resource goes to `InvalidResourceIds`, an unknown metric gets its own `ErrCode`.
pub fn data_set(
    params: &Params,
    tasks: &[Monitored<'_>],
    sample: impl Sampler,
) -> Result<Value, (i64, String)> {
    let (kind, product) = product_kind(params)?;
    let time = |key: &str| params.get(key).and_then(|v| v.parse::<i64>().ok());
    let (Some(start), Some(end)) = (time("StartTime"), time("EndTime")) else {
        return Err((230, "Missing params [StartTime] or [EndTime]".into()));
    };
    let period = time("Period").unwrap_or(60);
    if period < 60 || end < start || (end - start) / period > 1440 {
        return Err((230, "Params [Period] not valid for the time range".into()));
    }
    let pairs: Vec<(String, String)> = (0..)
        .map_while(|n| {
            let metric = params.get(&format!("MetricInfos.{n}.Metric"))?;
            let id = params.get(&format!("MetricInfos.{n}.ResourceId"))?;
            Some((metric.clone(), id.clone()))
        })
        .collect();
    if pairs.is_empty() || pairs.len() > MAX_PAIRS {
        return Err((
            230,
            format!("Params [MetricInfos] must hold 1 to {MAX_PAIRS} pairs"),
        ));
    }
    let mut invalid: Vec<&str> = Vec::new();
    let list: Vec<Value> = pairs
        .iter()
        .map(|(key, id)| {
            // Either spelling of the product's keys (the truncated `..._seco` one too).
            let of_product = key
                .strip_prefix(product)
                .is_some_and(|rest| rest.starts_with('_'));
            let Some(metric) = MonitorMetric::of_key(key).filter(|_| of_product) else {
                return json!({"Metric": key, "ErrCode": 1, "ErrMsg": "metric not found",
                              "Results": [], "TagEntries": []});
            };
            let Some(task) = tasks.iter().find(|t| t.kind == kind && t.id == id) else {
                if !invalid.contains(&id.as_str()) {
                    invalid.push(id);
                }
                return json!({"Metric": key, "ErrCode": 0, "ErrMsg": "", "Results": [],
                              "TagEntries": []});
            };
            let mut values: Vec<(i64, f64)> = Vec::new();
            let first = start - start.rem_euclid(period);
            for minute in (first..=end).step_by(period as usize) {
                for (m, value, at) in sample(task.id, minute) {
                    if m == metric
                        && (start..=end).contains(&at)
                        && !values.iter().any(|v| v.0 == at)
                    {
                        values.push((at, value));
                    }
                }
            }
            values.sort_by_key(|v| v.0);
            let values: Vec<Value> = values
                .into_iter()
                .map(|(at, value)| json!({"Timestamp": at, "Value": value}))
                .collect();
            json!({"Metric": key, "ErrCode": 0, "ErrMsg": "", "TagEntries": [],
                   "Results": [{"ResourceId": task.id, "ResourceName": task.name,
                                "TagList": [], "Values": values}]})
        })
        .collect();
    Ok(json!({"InvalidResourceIds": invalid, "List": list}))
}

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
fn resource(
    (id, name): (&str, &str),
    product: &str,
    samples: &[(MonitorMetric, f64, i64)],
    metrics: &[&str],
) -> Value {
    let attrs: Vec<Value> = samples
        .iter()
        .filter(|(metric, _, _)| {
            metrics.is_empty() || metrics.contains(&metric.key(product).as_str())
        })
        .map(|(metric, value, at)| {
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
