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
    // Each alert's `for` (null: fires at once).
    alerts: {
      UDTSTaskFailedUnrecoverable: { 'for': null },
      UDTSTaskFailed: { 'for': '5m' },
      UDTSTaskRetriesNearLimit: { 'for': null },
      UDTSTaskFullLoadStalled: { 'for': '5m' },
      UDTSTaskBinlogNotAdvancing: { 'for': '5m' },
      UDTSTaskSourceLagHigh: { 'for': '10m' },
      UDTSTaskBinlogPurged: { 'for': null },
      UDTSTaskBinlogPurgeRisk: { 'for': '5m' },
      UDTSTaskResumeDeadlineNear: { 'for': null },
      UDTSTaskExpiringSoon: { 'for': null },
      UDTSTaskRedisLagHigh: { 'for': '10m' },
      UDTSTaskMongoLagHigh: { 'for': '10m' },
      UDTSTaskSourceFallingBehind: { 'for': '15m' },
      UDTSTaskFallingBehind: { 'for': null },
      UDTSTaskSyncDelayHigh: { 'for': '10m' },
      UDTSTaskReadyForCutover: { 'for': null },
      UDTSReplicationSlotRetainingWAL: { 'for': '30m' },
      UDTSReplicationSlotOrphaned: { 'for': '15m' },
      UDTSReplicationSlotInvalidationSoon: { 'for': '5m' },
      UDTSReplicationSlotLost: { 'for': null },
      UDTSExporterDown: { 'for': '5m' },
      UDTSTaskUnreadable: { 'for': '10m' },
      UDTSApiCredentialsRejected: { 'for': null },
      UDTSApiCredentialsExpiring: { 'for': null },
      UDTSApiAccessDenied: { 'for': null },
      UDTSApiThrottled: { 'for': '10m' },
      UDTSPollCycleOverrun: { 'for': '30m' },
      UDTSSourceDown: { 'for': '5m' },
      UDTSConfigReloadFailed: { 'for': '5m' },
    },
  },
}
