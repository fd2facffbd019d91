// The Grafana dashboards: the overview of every task (its queries filter by the `$job`
// variable, which lists only the jobs `_config.udtsSelector` selects) and one task's drill-down.
{
  grafanaDashboards+:: {
    'udts-overview.json': (import 'dashboards/udts-overview.json') + {
      uid: $._config.dashboard.overviewUID,
      tags: $._config.dashboard.tags,
      refresh: $._config.dashboard.refresh,
      timezone: $._config.dashboard.timezone,
      templating+: {
        list: [
          if variable.name == 'job' then variable {
            query+: { query: 'label_values(udts_exporter_build_info{%s}, job)' % $._config.udtsSelector },
            definition: self.query.query,
          } else variable
          for variable in super.list
        ],
      },
    },
    'udts-task.json': (import 'dashboards/task.libsonnet')($._config),
  },
}
