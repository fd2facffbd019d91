// The recording rules the cut-over and slot alerts and the dashboard use; each names the
// exporter's series with `_config.udtsSelector`.
// Edit here, then run deploy/mixin/generate to render what deploy/ ships.
{
  prometheusRules+:: {
    groups+: [
      {
        name: 'udts-cutover.rules',
        rules: [
          {
            record: 'udts:task_source_applied_bytes:rate5m',
            expr: |||
              rate(udts_task_source_applied_bytes_total{%(udtsSelector)s}[5m])
            ||| % $._config,
          },
          {
            record: 'udts:source_written_bytes:rate5m',
            expr: |||
              rate(udts_source_binlog_written_bytes_total{%(udtsSelector)s}[5m])
            ||| % $._config,
          },
          {
            record: 'udts:task_source_written_bytes:rate5m',
            expr: |||
              max by (instance, job, account, task_id) (
                udts_task_info{%(udtsSelector)s, source!=""} * 0
                  + on(instance, job, source) group_left()
                udts:source_written_bytes:rate5m
              )
            ||| % $._config,
          },
          {
            record: 'udts:task_source_catchup_eta_seconds',
            expr: |||
              udts_task_source_lag_bytes{%(udtsSelector)s}
                / on(instance, job, account, task_id)
              (
                (
                  udts:task_source_applied_bytes:rate5m
                    - on(instance, job, account, task_id)
                  udts:task_source_written_bytes:rate5m
                ) > 0
              )
            ||| % $._config,
          },
          {
            record: 'udts:task_progress_rows:rate5m',
            expr: |||
              rate(udts_task_progress_rows{%(udtsSelector)s}[5m])
            ||| % $._config,
          },
          {
            record: 'udts:task_full_load_eta_seconds',
            expr: |||
              (udts_task_progress_target_rows{%(udtsSelector)s} - udts_task_progress_rows{%(udtsSelector)s})
                / on(instance, job, account, task_id)
              (udts:task_progress_rows:rate5m > 0)
            ||| % $._config,
          },
        ],
      },
      {
        name: 'udts-replication-slots.rules',
        rules: [
          {
            record: 'udts:source_wal_written_bytes:rate15m',
            expr: |||
              rate(udts_source_wal_written_bytes_total{%(udtsSelector)s}[15m])
            ||| % $._config,
          },
          {
            record: 'udts:source_replication_slot_retained_bytes:deriv1h',
            expr: |||
              deriv(udts_source_replication_slot_retained_bytes{%(udtsSelector)s}[1h]) * 3600
            ||| % $._config,
          },
          {
            record: 'udts:source_replication_slot_invalidation_seconds',
            expr: |||
              (
                udts_source_replication_slot_safe_wal_bytes{%(udtsSelector)s}
                  / on(instance, job, source) group_left()
                (udts:source_wal_written_bytes:rate15m > 0)
              )
                and on(instance, job, source, slot)
              (udts:source_replication_slot_retained_bytes:deriv1h > 0)
            ||| % $._config,
          },
        ],
      },
    ],
  },
}
