// The files deploy/ ships, rendered from the mixin: `deploy/mixin/generate` writes them.
// A different selector renders the same rules for another scrape config:
//   jsonnet -S -m OUT --tla-str udtsSelector='job="udts-exporter"' deploy/mixin/files.jsonnet
function(udtsSelector='job="udts"')
  local mixin = (import 'mixin.libsonnet') + { _config+:: { udtsSelector: udtsSelector } };
  local yaml = import 'yaml.libsonnet';
  local groups = mixin.prometheusRules.groups + mixin.prometheusAlerts.groups;
  local generated =
    '# Generated from deploy/mixin (edit the mixin, then run deploy/mixin/generate); CI fails\n' +
    '# when this file and the mixin differ.\n';
  {
    'prometheus/alerts.yml':
      '# Alerting and recording rules for udts-exporter.\n' + generated +
      '#\n' +
      "# Task alerts join udts_task_info for the task's name and kind and the labels operators give\n" +
      '# tasks (team, env: [[tasks]] labels and [[discovery.labels]]), so Alertmanager can route by\n' +
      '# team. They match on (instance, account, task_id): `account` exists only with several accounts\n' +
      '# and matches empty otherwise; a label a task does not have is simply absent from its alert.\n' +
      '# Keep udts_task_info exposed ([metrics] allow/deny): without it these alerts cannot fire.\n' +
      '# Every alert links its runbook (docs/runbooks.md); deploy/prometheus/alerts_test.yml tests\n' +
      '# them (`promtool test rules alerts_test.yml`).\n' +
      yaml.manifest({ groups: groups }),
    'kubernetes/prometheusrule.yaml':
      '# The rules of deploy/prometheus/alerts.yml for prometheus-operator.\n' + generated +
      yaml.manifest({
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'PrometheusRule',
        metadata: {
          name: 'udts-exporter',
          labels: { 'app.kubernetes.io/name': 'udts-exporter' },
        },
        spec: { groups: groups },
      }),
  }
