// The alerts: each names the exporter's series with `_config.udtsSelector`, takes its `for`
// from `_config.alerts`, and links its runbook (docs/runbooks.md) through `runbookURLPattern`.
// Edit here, then run deploy/mixin/generate to render what deploy/ ships.
local fold(text) = std.strReplace(std.rstripChars(text, '\n'), '\n', ' ');

{
  prometheusAlerts+:: {
    groups+: [
      {
        name: 'udts-tasks',
        rules: [
          {
            alert: 'UDTSTaskFailedUnrecoverable',
            expr: |||
              (udts_task_status{%(udtsSelector)s, status=~"FailedUnrecoverable|StoppedUnrecoverable"} == 1)
                * on(instance, account, task_id) group_left(name, task_type, team, env)
              udts_task_info{%(udtsSelector)s}
            ||| % $._config,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'UDTS task {{ $labels.task_id }} ({{ $labels.name }}) is {{ $labels.status }}',
              description: fold(|||
                The {{ $labels.task_type }} task {{ $labels.task_id }} ({{ $labels.name }}) is {{
                $labels.status }}: UDTS gave up and will not retry by itself. Read the reason in
                udts_task_failure_info or the console, fix the source/target (credentials, network,
                disk, schema), then restart the task.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskFailedUnrecoverable'),
            },
          },
          {
            alert: 'UDTSTaskFailed',
            expr: |||
              (udts_task_status{%(udtsSelector)s, status="Failed"} == 1)
                * on(instance, account, task_id) group_left(name, task_type, team, env)
              udts_task_info{%(udtsSelector)s}
            ||| % $._config,
            'for': $._config.alerts.UDTSTaskFailed['for'],
            labels: { severity: 'critical' },
            annotations: {
              summary: fold(|||
                UDTS task {{ $labels.task_id }} ({{ $labels.name }}) has been Failed for 5 minutes
              |||),
              description: fold(|||
                The {{ $labels.task_type }} task {{ $labels.task_id }} ({{ $labels.name }}) has been
                in status Failed for 5 minutes without retrying. Check udts_task_failure_info for
                the reason and the task's retry settings; restart it once the cause is fixed.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskFailed'),
            },
          },
          {
            alert: 'UDTSTaskRetriesNearLimit',
            expr: |||
              (
                udts_task_retries{%(udtsSelector)s} > 0
                  and udts_task_max_retries{%(udtsSelector)s} > 0
                  and udts_task_retries{%(udtsSelector)s} >= %(threshold)s * udts_task_max_retries{%(udtsSelector)s}
              )
                * on(instance, account, task_id) group_left(name, task_type, team, env) udts_task_info{%(udtsSelector)s}
            ||| % ($._config { threshold: $._config.alerts.UDTSTaskRetriesNearLimit.threshold }),
            labels: { severity: 'warning' },
            annotations: {
              summary: 'UDTS task {{ $labels.task_id }} has used {{ $value }} retries',
              description: fold(|||
                Task {{ $labels.task_id }} keeps failing and retrying; it has used half or more of
                its MaxRetryCount and will end FailedUnrecoverable when it runs out. Look at
                udts_task_failure_info and fix the cause before the retries are gone.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskRetriesNearLimit'),
            },
          },
          {
            alert: 'UDTSTaskFullLoadStalled',
            expr: |||
              (
                (time() - udts_task_last_progress_timestamp_seconds{%(udtsSelector)s} > %(threshold)s)
                  and on(instance, account, task_id)
                (udts_task_status{%(udtsSelector)s, status=~"Dumping|Loading"} == 1)
              )
                * on(instance, account, task_id) group_left(name, task_type, team, env) udts_task_info{%(udtsSelector)s}
            ||| % ($._config { threshold: $._config.alerts.UDTSTaskFullLoadStalled.threshold }),
            'for': $._config.alerts.UDTSTaskFullLoadStalled['for'],
            labels: { severity: 'warning' },
            annotations: {
              summary: 'UDTS full load {{ $labels.task_id }} has not progressed for 30 minutes',
              description: fold(|||
                Task {{ $labels.task_id }} is dumping or loading but its row count and percentage
                have not moved for over 30 minutes. Check the source and target for locks, full
                disks or lost connections.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskFullLoadStalled'),
            },
          },
          {
            alert: 'UDTSTaskBinlogNotAdvancing',
            expr: |||
              (
                (time() - udts_task_last_progress_timestamp_seconds{%(udtsSelector)s} > %(threshold)s)
                  and on(instance, account, task_id)
                (udts_task_status{%(udtsSelector)s, status="Syncing"} == 1)
                  unless on(instance, account, task_id)
                (udts_task_source_lag_bytes{%(udtsSelector)s} == 0)
              )
                * on(instance, account, task_id) group_left(name, task_type, team, env) udts_task_info{%(udtsSelector)s}
            ||| % ($._config { threshold: $._config.alerts.UDTSTaskBinlogNotAdvancing.threshold }),
            'for': $._config.alerts.UDTSTaskBinlogNotAdvancing['for'],
            labels: { severity: 'warning' },
            annotations: {
              summary: fold(|||
                UDTS task {{ $labels.task_id }} is Syncing but its binlog position is not advancing
              |||),
              description: fold(|||
                Task {{ $labels.task_id }} has been catching up for 15 minutes without the binlog
                file or position moving. Check that the source still has the binlog files and that
                the target accepts writes.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskBinlogNotAdvancing'),
            },
          },
          {
            alert: 'UDTSTaskSourceLagHigh',
            expr: |||
              (udts_task_source_lag_seconds{%(udtsSelector)s} > %(threshold)s)
                * on(instance, account, task_id) group_left(name, task_type, team, env, source)
              udts_task_info{%(udtsSelector)s}
            ||| % ($._config { threshold: $._config.alerts.UDTSTaskSourceLagHigh.threshold }),
            'for': $._config.alerts.UDTSTaskSourceLagHigh['for'],
            labels: { severity: 'warning' },
            annotations: {
              summary: fold(|||
                UDTS task {{ $labels.task_id }} is {{ $value | humanizeDuration }} behind {{
                $labels.source }}
              |||),
              description: fold(|||
                Task {{ $labels.task_id }} ({{ $labels.name }}) has not read binlog events its
                source {{ $labels.source }} wrote {{ $value | humanizeDuration }} ago. Compare the
                source's write rate (rate(udts_source_binlog_written_bytes_total[5m])) with the
                task's progress; check the target's write speed and the task's status.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskSourceLagHigh'),
            },
          },
          {
            alert: 'UDTSTaskBinlogPurged',
            expr: |||
              (udts_task_source_binlog_retained{%(udtsSelector)s} == 0)
                * on(instance, account, task_id) group_left(name, task_type, team, env, source)
              udts_task_info{%(udtsSelector)s}
            ||| % $._config,
            labels: { severity: 'critical' },
            annotations: {
              summary: fold(|||
                The binlog UDTS task {{ $labels.task_id }} needs is gone from {{ $labels.source }}
              |||),
              description: fold(|||
                The source {{ $labels.source }} has purged the binlog file task {{ $labels.task_id
                }} ({{ $labels.name }}) stands in: the task can no longer resume from its position.
                Redo it from a full load, and keep binlogs longer on the source
                (binlog_expire_logs_seconds / expire_logs_days) than a task may stay stopped.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskBinlogPurged'),
            },
          },
          {
            alert: 'UDTSTaskBinlogPurgeRisk',
            expr: |||
              (
                (
                  (udts_task_binlog_file_index{%(udtsSelector)s} * on(instance, account, task_id) group_left(source) udts_task_info{%(udtsSelector)s})
                    == on(instance, source) group_left()
                  udts_source_binlog_oldest_file_index{%(udtsSelector)s}
                )
                  and on(instance, account, task_id) (udts_task_source_binlog_retained{%(udtsSelector)s} == 1)
                  unless on(instance, account, task_id) (udts_task_status{%(udtsSelector)s, status=~"Syncing|Synced"} == 1)
              )
                * on(instance, account, task_id) group_left(name, task_type, team, env)
              udts_task_info{%(udtsSelector)s}
            ||| % $._config,
            'for': $._config.alerts.UDTSTaskBinlogPurgeRisk['for'],
            labels: { severity: 'warning' },
            annotations: {
              summary: 'UDTS task {{ $labels.task_id }} holds the oldest binlog on {{ $labels.source }}',
              description: fold(|||
                Task {{ $labels.task_id }} ({{ $labels.name }}) is not running and stands in the
                oldest binlog file {{ $labels.source }} keeps: the next purge makes it unable to
                resume. Restart the task now, or hold back the source's binlog purge.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskBinlogPurgeRisk'),
            },
          },
          {
            alert: 'UDTSTaskResumeDeadlineNear',
            expr: |||
              (udts_task_resume_deadline_timestamp_seconds{%(udtsSelector)s} - time() < %(threshold)s)
                * on(instance, account, task_id) group_left(name, task_type, team, env)
              udts_task_info{%(udtsSelector)s}
            ||| % ($._config { threshold: $._config.alerts.UDTSTaskResumeDeadlineNear.threshold }),
            labels: { severity: 'warning' },
            annotations: {
              summary: fold(|||
                UDTS task {{ $labels.task_id }} can be resumed for {{ $value | humanizeDuration }}
                more
              |||),
              description: fold(|||
                Task {{ $labels.task_id }} ({{ $labels.name }}) is paused, and UDTS resumes a paused
                task only within 7 days of its pause: {{ $value | humanizeDuration }} left
                (negative: too late). Resume or reset the task before then; past it, the task can
                only be redone from a full load.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskResumeDeadlineNear'),
            },
          },
          {
            alert: 'UDTSTaskExpiringSoon',
            expr: |||
              (
                (udts_task_expire_timestamp_seconds{%(udtsSelector)s} - time() < %(threshold)s)
                  unless on(instance, account, task_id)
                (udts_task_status{%(udtsSelector)s, status=~"Done|Success|FailedUnrecoverable|StoppedUnrecoverable"} == 1)
              )
                * on(instance, account, task_id) group_left(name, task_type, team, env)
              udts_task_info{%(udtsSelector)s}
            ||| % ($._config { threshold: $._config.alerts.UDTSTaskExpiringSoon.threshold }),
            labels: { severity: 'warning' },
            annotations: {
              summary: fold(|||
                UDTS task {{ $labels.task_id }}'s billing expires in {{ $value | humanizeDuration }}
              |||),
              description: fold(|||
                The billing of task {{ $labels.task_id }} ({{ $labels.name }}) expires in {{ $value
                | humanizeDuration }} (negative: it has expired). Renew before then: UDTS stops an
                expired task the day after its expiry and reclaims it the day after that.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskExpiringSoon'),
            },
          },
          {
            alert: 'UDTSTaskRedisLagHigh',
            expr: |||
              (udts_task_redis_delay_seconds{%(udtsSelector)s} > %(threshold)s)
                * on(instance, account, task_id) group_left(name, task_type, team, env) udts_task_info{%(udtsSelector)s}
            ||| % ($._config { threshold: $._config.alerts.UDTSTaskRedisLagHigh.threshold }),
            'for': $._config.alerts.UDTSTaskRedisLagHigh['for'],
            labels: { severity: 'warning' },
            annotations: {
              summary: 'UDTS Redis task {{ $labels.task_id }} lags {{ $value }}s',
              description: fold(|||
                Redis replication of task {{ $labels.task_id }} has been more than 60 s behind for
                10 minutes. Check the target's load and the network between source and target.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskRedisLagHigh'),
            },
          },
          {
            alert: 'UDTSTaskMongoLagHigh',
            expr: |||
              (udts_task_mongo_delay_seconds{%(udtsSelector)s} > %(threshold)s)
                * on(instance, account, task_id) group_left(name, task_type, team, env) udts_task_info{%(udtsSelector)s}
            ||| % ($._config { threshold: $._config.alerts.UDTSTaskMongoLagHigh.threshold }),
            'for': $._config.alerts.UDTSTaskMongoLagHigh['for'],
            labels: { severity: 'warning' },
            annotations: {
              summary: 'UDTS MongoDB task {{ $labels.task_id }} lags {{ $value }}s',
              description: fold(|||
                MongoDB replication of task {{ $labels.task_id }} has been more than 60 s behind for
                10 minutes. Check the target's load and the oplog window of the source.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskMongoLagHigh'),
            },
          },
        ],
      },
      {
        name: 'udts-cutover',
        rules: [
          {
            alert: 'UDTSTaskSourceFallingBehind',
            expr: |||
              (
                udts_task_source_lag_seconds{%(udtsSelector)s} > 60
                  and on(instance, account, task_id)
                deriv(udts_task_source_lag_bytes{%(udtsSelector)s}[30m]) > 0
                  and on(instance, account, task_id)
                predict_linear(udts_task_source_lag_bytes{%(udtsSelector)s}[30m], 3600) > 0
              )
                * on(instance, account, task_id) group_left(name, task_type, team, env, source)
              udts_task_info{%(udtsSelector)s}
            ||| % $._config,
            'for': $._config.alerts.UDTSTaskSourceFallingBehind['for'],
            labels: { severity: 'warning' },
            annotations: {
              summary: 'UDTS task {{ $labels.task_id }} is falling behind {{ $labels.source }}',
              description: fold(|||
                Task {{ $labels.task_id }} ({{ $labels.name }}) is {{ $value | humanizeDuration }}
                behind {{ $labels.source }} and its lag has grown for 30 minutes: at this trend it
                does not catch up within the hour. Compare udts:task_source_applied_bytes:rate5m
                with udts:task_source_written_bytes:rate5m; check the target's write speed.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskSourceFallingBehind'),
            },
          },
          {
            alert: 'UDTSTaskFallingBehind',
            expr: |||
              (
                (udts_task_sync_remaining_bytes{%(udtsSelector)s} - udts_task_sync_remaining_bytes{%(udtsSelector)s} offset 1m) > 0
                  and on(instance, account, task_id)
                (udts_task_sync_remaining_bytes{%(udtsSelector)s} offset 1m - udts_task_sync_remaining_bytes{%(udtsSelector)s} offset 2m) > 0
                  and on(instance, account, task_id)
                (udts_task_sync_remaining_bytes{%(udtsSelector)s} offset 2m - udts_task_sync_remaining_bytes{%(udtsSelector)s} offset 3m) > 0
              )
                * on(instance, account, task_id) group_left(name, task_type, team, env, source)
              udts_task_info{%(udtsSelector)s}
            ||| % $._config,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'UDTS task {{ $labels.task_id }} is falling behind',
              description: fold(|||
                The data task {{ $labels.task_id }} ({{ $labels.name }}) has still to apply grew in
                three samples in a row, as UDTS's own default alarm reads it: the target does not
                keep up with the source. Compare udts_task_target_write_bytes_per_second with
                udts_task_source_read_bytes_per_second and look at
                udts_task_target_network_latency_seconds.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskFallingBehind'),
            },
          },
          {
            alert: 'UDTSTaskSyncDelayHigh',
            expr: |||
              (udts_task_sync_delay_seconds{%(udtsSelector)s} > %(threshold)s)
                * on(instance, account, task_id) group_left(name, task_type, team, env, source)
              udts_task_info{%(udtsSelector)s}
            ||| % ($._config { threshold: $._config.alerts.UDTSTaskSyncDelayHigh.threshold }),
            'for': $._config.alerts.UDTSTaskSyncDelayHigh['for'],
            labels: { severity: 'warning' },
            annotations: {
              summary: 'UDTS task {{ $labels.task_id }} is {{ $value | humanizeDuration }} behind',
              description: fold(|||
                UDTS reports task {{ $labels.task_id }} ({{ $labels.name }}) {{ $value |
                humanizeDuration }} behind its source for 10 minutes (more than 5 minutes). Look at
                udts_task_sync_remaining_bytes and the read and write rates: a slow target or
                network is the usual reason.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskSyncDelayHigh'),
            },
          },
          {
            alert: 'UDTSTaskReadyForCutover',
            expr: |||
              (udts_task_cutover_ready{%(udtsSelector)s} == 1)
                * on(instance, account, task_id) group_left(name, task_type, team, env, source)
              udts_task_info{%(udtsSelector)s}
            ||| % $._config,
            labels: { severity: 'info' },
            annotations: {
              summary: 'UDTS task {{ $labels.task_id }} is ready for cut-over',
              description: fold(|||
                Task {{ $labels.task_id }} ({{ $labels.name }}) has stayed close to the head of its
                source, without retrying, for as long as [cutover] steady_for asks: the application
                can move to the target. `udts-exporter wait --for cutover` gates a runbook on it.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskReadyForCutover'),
            },
          },
        ],
      },
      {
        name: 'udts-replication-slots',
        rules: [
          {
            alert: 'UDTSReplicationSlotRetainingWAL',
            expr: |||
              (udts_source_replication_slot_retained_bytes{%(udtsSelector)s} > %(threshold)s)
                and on(instance, job, source, slot) (udts_source_replication_slot_active{%(udtsSelector)s} == 0)
            ||| % ($._config { threshold: $._config.alerts.UDTSReplicationSlotRetainingWAL.threshold }),
            'for': $._config.alerts.UDTSReplicationSlotRetainingWAL['for'],
            labels: { severity: 'warning' },
            annotations: {
              summary: fold(|||
                Slot {{ $labels.slot }} on {{ $labels.source }} keeps {{ $value | humanize1024 }}B
                of WAL
              |||),
              description: fold(|||
                Nobody reads replication slot {{ $labels.slot }} on {{ $labels.source }}, and it
                keeps {{ $value | humanize1024 }}B of WAL on the source's disk, more as the source
                writes (udts:source_replication_slot_retained_bytes:deriv1h is the growth per hour;
                the exporter cannot see the disk itself). Resume the slot's task, or drop the slot
                if no task will read it again.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSReplicationSlotRetainingWAL'),
            },
          },
          {
            alert: 'UDTSReplicationSlotOrphaned',
            expr: |||
              (udts_source_replication_slot_orphaned{%(udtsSelector)s} == 1)
                * on(instance, job, source, slot) group_left(task_id) udts_source_replication_slot_info{%(udtsSelector)s}
            ||| % $._config,
            'for': $._config.alerts.UDTSReplicationSlotOrphaned['for'],
            labels: { severity: 'warning' },
            annotations: {
              summary: fold(|||
                Slot {{ $labels.slot }} on {{ $labels.source }} belongs to no task that will read it
              |||),
              description: fold(|||
                No task will read replication slot {{ $labels.slot }} on {{ $labels.source }} again
                (its task{{ if $labels.task_id }} {{ $labels.task_id }}{{ end }} is not polled, was
                deleted, finished, or is past UDTS's 7-day resume limit), and it keeps the source
                from recycling WAL. Drop it on the source: SELECT pg_drop_replication_slot('{{
                $labels.slot }}');
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSReplicationSlotOrphaned'),
            },
          },
          {
            alert: 'UDTSReplicationSlotInvalidationSoon',
            expr: |||
              udts:source_replication_slot_invalidation_seconds < %(threshold)s
            ||| % ($._config { threshold: $._config.alerts.UDTSReplicationSlotInvalidationSoon.threshold }),
            'for': $._config.alerts.UDTSReplicationSlotInvalidationSoon['for'],
            labels: { severity: 'warning' },
            annotations: {
              summary: fold(|||
                Slot {{ $labels.slot }} on {{ $labels.source }} is invalidated in about {{ $value |
                humanizeDuration }}
              |||),
              description: fold(|||
                At the source's WAL write rate of the last 15 minutes, replication slot {{
                $labels.slot }} on {{ $labels.source }} passes max_slot_wal_keep_size in about {{
                $value | humanizeDuration }}; the server then invalidates it and its task can never
                continue. Get the task reading again now, or raise max_slot_wal_keep_size.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSReplicationSlotInvalidationSoon'),
            },
          },
          {
            alert: 'UDTSReplicationSlotLost',
            expr: |||
              (udts_source_replication_slot_status{%(udtsSelector)s, status="lost"} == 1)
                * on(instance, job, source, slot) group_left(task_id) udts_source_replication_slot_info{%(udtsSelector)s}
            ||| % $._config,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Slot {{ $labels.slot }} on {{ $labels.source }} was invalidated',
              description: fold(|||
                The server invalidated replication slot {{ $labels.slot }} on {{ $labels.source }}:
                more WAL than max_slot_wal_keep_size was written past it. Its task{{ if
                $labels.task_id }} {{ $labels.task_id }}{{ end }} can never continue from it: redo
                the task (full+incremental), then drop the slot: SELECT pg_drop_replication_slot('{{
                $labels.slot }}');
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSReplicationSlotLost'),
            },
          },
        ],
      },
      {
        name: 'udts-exporter',
        rules: [
          {
            alert: 'UDTSExporterDown',
            expr: |||
              up{%(udtsSelector)s} == 0
            ||| % $._config,
            'for': $._config.alerts.UDTSExporterDown['for'],
            labels: { severity: 'critical' },
            annotations: {
              summary: 'udts-exporter {{ $labels.instance }} is down',
              description: fold(|||
                Prometheus cannot scrape udts-exporter at {{ $labels.instance }}: no UDTS task is
                watched. Check the process or pod and its logs.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSExporterDown'),
            },
          },
          {
            alert: 'UDTSTaskUnreadable',
            expr: |||
              (udts_task_up{%(udtsSelector)s} == 0)
                * on(instance, account, task_id) group_left(name, task_type, team, env) udts_task_info{%(udtsSelector)s}
            ||| % $._config,
            'for': $._config.alerts.UDTSTaskUnreadable['for'],
            labels: { severity: 'warning' },
            annotations: {
              summary: 'udts-exporter cannot read task {{ $labels.task_id }}',
              description: fold(|||
                The last polls of task {{ $labels.task_id }} failed for 10 minutes; its metrics are
                stale. See udts_api_request_errors_total by reason and the exporter's log line for
                the task (RetCode, message, request UUID).
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSTaskUnreadable'),
            },
          },
          {
            alert: 'UDTSApiCredentialsRejected',
            expr: |||
              increase(udts_api_request_errors_total{%(udtsSelector)s, reason="credentials"}[10m]) > 0
            ||| % $._config,
            labels: { severity: 'critical' },
            annotations: {
              summary: "The UDTS API rejects udts-exporter's credentials",
              description: fold(|||
                Calls to {{ $labels.action }} fail with RetCode 170-174 (signature, public key or
                token rejected). Check api.public_key and the private key, and that they belong to
                the configured endpoint.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSApiCredentialsRejected'),
            },
          },
          {
            alert: 'UDTSApiCredentialsExpiring',
            expr: |||
              (udts_api_credentials_expiry_timestamp_seconds{%(udtsSelector)s} - time() < %(threshold)s)
              and on (job, instance, account)
              (udts_api_credential_refresh_failing{%(udtsSelector)s} == 1)
            ||| % ($._config { threshold: $._config.alerts.UDTSApiCredentialsExpiring.threshold }),
            labels: { severity: 'critical' },
            annotations: {
              summary: "udts-exporter's temporary API credentials expire soon and cannot be refreshed",
              description: fold(|||
                The temporary credentials of account "{{ $labels.account }}" (instance role or
                AssumeRole) expire in under 5 minutes and the last fetch of new ones failed. When
                they expire, every task of the account becomes unreadable. Check the metadata server
                or STS (the exporter's log says what failed) and the role's permissions.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSApiCredentialsExpiring'),
            },
          },
          {
            alert: 'UDTSApiAccessDenied',
            expr: |||
              increase(udts_api_request_errors_total{%(udtsSelector)s, reason=~"configuration|permission"}[10m]) > 0
            ||| % $._config,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The UDTS API refuses {{ $labels.action }} ({{ $labels.reason }})',
              description: fold(|||
                Calls fail with a {{ $labels.reason }} RetCode: an unknown project or action (160,
                161, 292) or a zone, IP allow-list, security lock or IAM refusal (293-299). Check
                the project ids and the account's API allow-list.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSApiAccessDenied'),
            },
          },
          {
            alert: 'UDTSApiThrottled',
            expr: |||
              increase(udts_api_request_errors_total{%(udtsSelector)s, reason="throttled"}[10m]) > 0
            ||| % $._config,
            'for': $._config.alerts.UDTSApiThrottled['for'],
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The UDTS API throttles udts-exporter',
              description: fold(|||
                Calls to {{ $labels.action }} are throttled (RetCode 153). Lower
                poll.requests_per_second or api.concurrency, or raise poll.interval.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSApiThrottled'),
            },
          },
          {
            alert: 'UDTSPollCycleOverrun',
            expr: |||
              increase(udts_poll_cycle_overrun_total{%(udtsSelector)s}[30m]) > 0
            ||| % $._config,
            'for': $._config.alerts.UDTSPollCycleOverrun['for'],
            labels: { severity: 'warning' },
            annotations: {
              summary: 'udts-exporter {{ $labels.instance }} cannot poll every task within its interval',
              description: fold(|||
                Poll cycles take longer than poll.interval, so task values are older than expected.
                The exporter's log says which interval would fit; raise poll.interval or
                api.concurrency, or shard the tasks over several exporters.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSPollCycleOverrun'),
            },
          },
          {
            alert: 'UDTSSourceDown',
            expr: |||
              udts_source_up{%(udtsSelector)s} == 0
            ||| % $._config,
            'for': $._config.alerts.UDTSSourceDown['for'],
            labels: { severity: 'warning' },
            annotations: {
              summary: 'udts-exporter cannot read source {{ $labels.source }}',
              description: fold(|||
                The exporter has not read the binlog state of {{ $labels.source }} for 5 minutes, so
                its tasks' lag is unknown. udts_source_errors_total says why (auth, privilege,
                unreachable, timeout, tls, binlog_disabled); the exporter's log names the fix.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSSourceDown'),
            },
          },
          {
            alert: 'UDTSConfigReloadFailed',
            expr: |||
              udts_config_last_reload_successful{%(udtsSelector)s} == 0
            ||| % $._config,
            'for': $._config.alerts.UDTSConfigReloadFailed['for'],
            labels: { severity: 'warning' },
            annotations: {
              summary: 'udts-exporter {{ $labels.instance }} rejected its new configuration',
              description: fold(|||
                The last reload failed and the previous configuration is still in force. The
                exporter's log and the answer of POST /-/reload name the key to fix.
              |||),
              runbook_url: $._config.runbookURLPattern % std.asciiLower('UDTSConfigReloadFailed'),
            },
          },
        ],
      },
    ],
  },
}
