// What a user of the mixin sets: import it and override `_config`, e.g.
//   (import 'udts-exporter/deploy/mixin/mixin.libsonnet') + {
//     _config+:: { udtsSelector: 'job="udts-exporter"', alerts+: { UDTSTaskFailed+: { 'for': '15m' } } },
//   }
{
  _config+:: {
    // Selects the exporter's series in every alert and recording rule: the shipped scrape
    // configs (deploy/prometheus/prometheus.yml, the ServiceMonitor) name the job `udts`.
    udtsSelector: 'job="udts"',
    // Where each alert's runbook is: %s is the alert's name in lower case (its section's
    // anchor in docs/runbooks.md).
    runbookURLPattern: 'https://github.com/udts-exporter/udts-exporter/blob/main/docs/runbooks.md#%s',
    // The dashboards' uids, tags, refresh and time zone.
    dashboard: {
      overviewUID: 'udts-overview',
      taskUID: 'udts-task',
      tags: ['udts', 'ucloud', 'database'],
      refresh: '30s',
      timezone: 'browser',
    },
    // Each alert's `for` (null: fires at once) and, where it has one, its threshold (seconds,
    // bytes, or for UDTSTaskRetriesNearLimit the share of MaxRetryCount used).
    alerts: {
      UDTSTaskFailedUnrecoverable: { 'for': null },
      UDTSTaskFailed: { 'for': '5m' },
      UDTSTaskRetriesNearLimit: { 'for': null, threshold: 0.5 },
      UDTSTaskFullLoadStalled: { 'for': '5m', threshold: 1800 },
      UDTSTaskBinlogNotAdvancing: { 'for': '5m', threshold: 900 },
      UDTSTaskSourceLagHigh: { 'for': '10m', threshold: 300 },
      UDTSTaskBinlogPurged: { 'for': null },
      UDTSTaskBinlogPurgeRisk: { 'for': '5m' },
      UDTSTaskResumeDeadlineNear: { 'for': null, threshold: 86400 },
      UDTSTaskExpiringSoon: { 'for': null, threshold: 604800 },
      UDTSTaskRedisLagHigh: { 'for': '10m', threshold: 60 },
      UDTSTaskMongoLagHigh: { 'for': '10m', threshold: 60 },
      UDTSTaskSourceFallingBehind: { 'for': '15m' },
      UDTSTaskFallingBehind: { 'for': null },
      UDTSTaskSyncDelayHigh: { 'for': '10m', threshold: 300 },
      UDTSTaskReadyForCutover: { 'for': null },
      UDTSReplicationSlotRetainingWAL: { 'for': '30m', threshold: 1073741824 },
      UDTSReplicationSlotOrphaned: { 'for': '15m' },
      UDTSReplicationSlotInvalidationSoon: { 'for': '5m', threshold: 21600 },
      UDTSReplicationSlotLost: { 'for': null },
      UDTSExporterDown: { 'for': '5m' },
      UDTSTaskUnreadable: { 'for': '10m' },
      UDTSApiCredentialsRejected: { 'for': null },
      UDTSApiCredentialsExpiring: { 'for': null, threshold: 300 },
      UDTSApiAccessDenied: { 'for': null },
      UDTSApiThrottled: { 'for': '10m' },
      UDTSPollCycleOverrun: { 'for': '30m' },
      UDTSSourceDown: { 'for': '5m' },
      UDTSConfigReloadFailed: { 'for': '5m' },
    },
  },
}
