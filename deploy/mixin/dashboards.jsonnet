// The dashboards deploy/ ships, rendered from the mixin as JSON (`deploy/mixin/generate`).
function(udtsSelector='job="udts"')
  local mixin = (import 'mixin.libsonnet') + { _config+:: { udtsSelector: udtsSelector } };
  { ['grafana/' + name]: mixin.grafanaDashboards[name] for name in std.objectFields(mixin.grafanaDashboards) }
