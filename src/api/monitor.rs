//! UDTS's own monitoring numbers in UCloud CloudWatch: the metric keys UDTS publishes (product
//! `udts` for transfer tasks, `udtsdis` for integration tasks) and the decoding of
//! `QueryMetricDataSummary`, the latest value of each metric for a page of resources.
//!
//! Everything is lenient per sample, as the rest of the gateway's answers: a resource or a
//! metric of the wrong shape, a per-metric error, a value that is not a finite non-negative
//! number, or a timestamp that is not a time is left out and counted, never a failed answer.

use serde_json::Value;

use crate::task::TaskKind;

/// The action that reads the latest samples.
pub const ACTION: &str = "QueryMetricDataSummary";

/// What UDTS measures of a task, one per metric key (either product).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MonitorMetric {
    /// `sync_syncing_delay_time`: sync delay, seconds.
    SyncDelay,
    /// `sync_remaining_binlogsize`: data not yet applied, bytes.
    RemainingBytes,
    /// `sync_estimate_remaining_seconds`: UDTS's estimate of the time left, seconds.
    EstimatedRemaining,
    /// `source_data_size`: read from the source, bytes per second.
    SourceReadBytes,
    /// `source_data_count`: read from the source, rows per second.
    SourceReadRows,
    /// `target_data_size`: written to the target, bytes per second.
    TargetWriteBytes,
    /// `target_data_count`: written to the target, rows per second.
    TargetWriteRows,
    /// `source_network_delay`: latency UDTS to source, milliseconds.
    SourceLatency,
    /// `target_network_delay`: latency UDTS to target, milliseconds.
    TargetLatency,
}

impl MonitorMetric {
    /// Every metric, in the order the series are written.
    pub const ALL: [Self; 9] = [
        Self::SyncDelay,
        Self::RemainingBytes,
        Self::EstimatedRemaining,
        Self::SourceReadBytes,
        Self::SourceReadRows,
        Self::TargetWriteBytes,
        Self::TargetWriteRows,
        Self::SourceLatency,
        Self::TargetLatency,
    ];

    /// The key without its product prefix.
    fn suffix(self) -> &'static str {
        match self {
            Self::SyncDelay => "sync_syncing_delay_time",
            Self::RemainingBytes => "sync_remaining_binlogsize",
            Self::EstimatedRemaining => "sync_estimate_remaining_seconds",
            Self::SourceReadBytes => "source_data_size",
            Self::SourceReadRows => "source_data_count",
            Self::TargetWriteBytes => "target_data_size",
            Self::TargetWriteRows => "target_data_count",
            Self::SourceLatency => "source_network_delay",
            Self::TargetLatency => "target_network_delay",
        }
    }

    /// The metric key as `product` publishes it.
    pub fn key(self, product: &str) -> String {
        format!("{product}_{}", self.suffix())
    }

    /// The metric a key names, for either product; the `udtsdis` docs' truncated spelling of
    /// the estimate (`udtsdis_sync_estimate_remaining_seco`) counts as the estimate.
    pub fn of_key(key: &str) -> Option<Self> {
        let suffix = key
            .strip_prefix("udtsdis_")
            .or_else(|| key.strip_prefix("udts_"))?;
        if suffix == "sync_estimate_remaining_seco" {
            return Some(Self::EstimatedRemaining);
        }
        Self::ALL.into_iter().find(|m| m.suffix() == suffix)
    }

    /// The value in the base unit the exporter serves: latencies arrive in milliseconds.
    pub fn to_base_unit(self, value: f64) -> f64 {
        match self {
            Self::SourceLatency | Self::TargetLatency => value / 1000.0,
            _ => value,
        }
    }
}

/// The CloudWatch product of a task kind.
pub fn product_key(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Transfer => "udts",
        TaskKind::Integration => "udtsdis",
    }
}

/// One sample of one metric of one resource.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricSample {
    pub metric: MonitorMetric,
    /// Unix seconds.
    pub at: f64,
    /// In the metric's documented unit, as the gateway sent it.
    pub value: f64,
}

/// What one `QueryMetricDataSummary` page said.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SummaryPage {
    /// The samples, by resource id.
    pub resources: Vec<(String, Vec<MetricSample>)>,
    /// Samples left out: an unknown metric key, a per-metric error, a value or time that is
    /// not a measurement.
    pub rejected: usize,
}

/// `QueryMetricDataSummary`'s `Data`: `{Total, List: [{ResourceId, MonitorAttr: [{Metric,
/// MetricValues: [{Value: {Timestamp, Value}}]}]}]}`. Anything but an object with a list is an
/// empty page.
pub fn summary_page(data: &Value) -> SummaryPage {
    let mut page = SummaryPage::default();
    let Some(list) = data.get("List").and_then(Value::as_array) else {
        return page;
    };
    for resource in list {
        let Some(id) = resource.get("ResourceId").and_then(Value::as_str) else {
            page.rejected += 1;
            continue;
        };
        let mut samples = Vec::new();
        for attr in resource
            .get("MonitorAttr")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(metric) = attr
                .get("Metric")
                .and_then(Value::as_str)
                .and_then(MonitorMetric::of_key)
            else {
                page.rejected += 1;
                continue;
            };
            // A failed metric of an otherwise good answer.
            if attr
                .get("ErrCode")
                .and_then(number)
                .is_some_and(|code| code != 0.0)
            {
                page.rejected += 1;
                continue;
            }
            for value in attr
                .get("MetricValues")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let point = value.get("Value").unwrap_or(value);
                let at = point.get("Timestamp").and_then(number);
                let measured = point.get("Value").and_then(number);
                match (at, measured) {
                    (Some(at), Some(measured)) if plausible(metric, at, measured) => {
                        samples.push(MetricSample {
                            metric,
                            at,
                            value: measured,
                        });
                    }
                    _ => page.rejected += 1,
                }
            }
        }
        page.resources.push((id.to_string(), samples));
    }
    page
}

/// A number, or a string holding one; only finite values.
fn number(value: &Value) -> Option<f64> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }?;
    n.is_finite().then_some(n)
}

/// Whether a sample can be a measurement: a time after 2001 and before 2100 (10-digit unix
/// seconds), and a value that is not negative and not beyond any real task's (a year of delay,
/// a petabyte a second, an exabyte remaining).
fn plausible(metric: MonitorMetric, at: f64, value: f64) -> bool {
    let bound = match metric {
        MonitorMetric::SyncDelay | MonitorMetric::EstimatedRemaining => 366.0 * 86_400.0,
        MonitorMetric::SourceLatency | MonitorMetric::TargetLatency => 3_600_000.0,
        MonitorMetric::RemainingBytes => 1e18,
        _ => 1e15,
    };
    (1e9..4.1e9).contains(&at) && (0.0..=bound).contains(&value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_key_of_both_products_and_the_truncated_spelling_is_known() {
        for metric in MonitorMetric::ALL {
            assert_eq!(MonitorMetric::of_key(&metric.key("udts")), Some(metric));
            assert_eq!(MonitorMetric::of_key(&metric.key("udtsdis")), Some(metric));
        }
        assert_eq!(
            MonitorMetric::of_key("udtsdis_sync_estimate_remaining_seco"),
            Some(MonitorMetric::EstimatedRemaining)
        );
        assert_eq!(MonitorMetric::of_key("uhost_cpu_used"), None);
        assert_eq!(MonitorMetric::of_key("udts_nonsense"), None);
        assert_eq!(MonitorMetric::SourceLatency.to_base_unit(250.0), 0.25);
        assert_eq!(MonitorMetric::RemainingBytes.to_base_unit(250.0), 250.0);
    }

    #[test]
    fn a_summary_keeps_good_samples_and_counts_the_rest() {
        let data = json!({"Total": 3, "List": [
            {"ResourceId": "udts-a", "MonitorAttr": [
                {"Metric": "udts_sync_syncing_delay_time",
                 "MetricValues": [{"Metric": "udts_sync_syncing_delay_time",
                                   "Value": {"Timestamp": 1765000000, "Value": "12.5"}}]},
                {"Metric": "udts_source_network_delay",
                 "MetricValues": [{"Value": {"Timestamp": 1765000000, "Value": 3}}]},
                // A failed metric, a negative value, NaN as a string, a time that is not one.
                {"Metric": "udts_target_data_size", "ErrCode": 500, "MetricValues": [
                    {"Value": {"Timestamp": 1765000000, "Value": 1}}]},
                {"Metric": "udts_sync_remaining_binlogsize",
                 "MetricValues": [{"Value": {"Timestamp": 1765000000, "Value": -1}}]},
                {"Metric": "udts_source_data_size",
                 "MetricValues": [{"Value": {"Timestamp": 1765000000, "Value": "NaN"}}]},
                {"Metric": "udts_source_data_count",
                 "MetricValues": [{"Value": {"Timestamp": 17, "Value": 5}}]},
                {"Metric": "some_other_metric", "MetricValues": []}
            ]},
            {"ResourceId": "udts-b"},
            {"NoId": true}
        ]});
        let page = summary_page(&data);
        assert_eq!(page.rejected, 6);
        assert_eq!(page.resources.len(), 2);
        let (id, samples) = &page.resources[0];
        assert_eq!(id, "udts-a");
        assert_eq!(
            samples,
            &[
                MetricSample {
                    metric: MonitorMetric::SyncDelay,
                    at: 1_765_000_000.0,
                    value: 12.5
                },
                MetricSample {
                    metric: MonitorMetric::SourceLatency,
                    at: 1_765_000_000.0,
                    value: 3.0
                },
            ]
        );
        assert!(page.resources[1].1.is_empty());
        assert_eq!(summary_page(&json!("nonsense")), SummaryPage::default());
        assert_eq!(summary_page(&json!({"List": 5})), SummaryPage::default());
    }
}
