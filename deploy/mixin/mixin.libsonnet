// The udts-exporter monitoring mixin: the one source of the alerts, the recording rules and
// the dashboards that deploy/ ships. Plain jsonnet, no vendored library, as
// node-mixin: `prometheusAlerts`, `prometheusRules`, `grafanaDashboards` and `_config`.
(import 'config.libsonnet') +
(import 'alerts.libsonnet') +
(import 'rules.libsonnet') +
(import 'dashboards.libsonnet')
