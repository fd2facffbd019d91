//! The task page at `/`: complete without JavaScript (rendered here from the prepared views),
//! then kept live by a small script that re-reads `/api/v1/tasks`. Everything is embedded in
//! the binary: no CDN, no fonts, works air-gapped. Every string from the API or the config is
//! escaped; the Content-Security-Policy allows scripts and styles only from the exporter.

use std::collections::VecDeque;
use std::fmt::Write as _;

use crate::exposition::Exposition;
use crate::human::duration;
use crate::state::Sample;
use crate::task_view::{grouped, Health, TaskView};

/// The page's script, served at [`SCRIPT_PATH`].
pub const SCRIPT: &str = include_str!("udts.js");
/// The page's style sheet, served at [`STYLE_PATH`].
pub const STYLE: &str = include_str!("udts.css");
/// Where the script is served.
pub const SCRIPT_PATH: &str = "/static/udts.js";
/// Where the style sheet is served.
pub const STYLE_PATH: &str = "/static/udts.css";

/// Rows rendered unless all are asked for: enough to see every problem, light enough for a
/// phone at 10,000 tasks.
pub const DEFAULT_ROWS: usize = 500;

/// Sent with every answer: scripts, styles and fetches only from the exporter itself, nothing
/// inline, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// What the page is asked to show.
#[derive(Debug, Default)]
pub struct PageQuery {
    /// The filter: tasks whose id, name or status contains it (case-insensitive).
    pub filter: String,
    /// Show every task instead of the worst [`DEFAULT_ROWS`].
    pub all: bool,
}

impl PageQuery {
    /// Reads `?q=...&all=1`.
    pub fn parse(query: Option<&str>) -> Self {
        let mut page = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "q" => page.filter = value.trim().to_string(),
                "all" => page.all = value == "1" || value == "true",
                _ => {}
            }
        }
        page
    }
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `task` matches the filter `needle` (lowercase).
pub fn matches(task: &TaskView, needle: &str) -> bool {
    needle.is_empty()
        || [
            Some(task.id.as_str()),
            task.name.as_deref(),
            task.status.as_deref(),
            task.account.as_deref(),
        ]
        .into_iter()
        .flatten()
        .any(|field| field.to_lowercase().contains(needle))
}

/// The whole page for `exposition` at `now`.
pub fn render(
    exposition: &Exposition,
    query: &PageQuery,
    telemetry_path: &str,
    now: f64,
) -> String {
    let prepared = exposition.prepared();
    let views = &prepared.views;
    let needle = query.filter.to_lowercase();
    let mut html = String::with_capacity(64 * 1024);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>UDTS tasks</title><link rel=\"stylesheet\" href=\"{STYLE_PATH}\">\
         <script src=\"{SCRIPT_PATH}\" defer></script></head>\
         <body data-rows=\"{}\" data-poll=\"{}\" data-generated=\"{}\">\
         <header><h1>UDTS tasks</h1><nav><a href=\"{}\">Metrics</a> <a href=\"/healthz\">Health</a> \
         <a href=\"/readyz\">Readiness</a> <a href=\"/api/v1/tasks\">JSON</a></nav>\
         <p id=\"freshness\" class=\"freshness\" role=\"status\">Data from {} UTC \
         (udts-exporter {}).</p></header><main>",
        if query.all { 0 } else { DEFAULT_ROWS },
        exposition.poll_interval_seconds,
        exposition.rendered_at,
        escape(telemetry_path),
        clock(exposition.rendered_at),
        env!("CARGO_PKG_VERSION"),
    );
    html.push_str("<ul id=\"summary\" class=\"summary\" aria-label=\"Tasks per status\">");
    let mut summary: Vec<_> = views.summary.iter().collect();
    summary.sort_by_key(|(word, (health, _))| (*health, word.to_string()));
    for (word, (health, count)) in summary {
        let _ = write!(
            html,
            "<li class=\"chip h-{}\"><span>{}</span> <b>{count}</b></li>",
            health.as_str(),
            escape(word)
        );
    }
    if views.ready_for_cutover > 0 {
        let _ = write!(
            html,
            "<li class=\"chip ready\"><span>ready for cut-over</span> <b>{}</b></li>",
            views.ready_for_cutover
        );
    }
    let _ = write!(
        html,
        "</ul><form class=\"filter\" method=\"get\" action=\"/\" role=\"search\">\
         <input type=\"search\" id=\"filter\" name=\"q\" value=\"{}\" \
         placeholder=\"Filter by id, name or status\" aria-label=\"Filter tasks\" autocomplete=\"off\">\
         {}<button type=\"submit\">Filter</button></form>",
        escape(&query.filter),
        if query.all {
            "<input type=\"hidden\" name=\"all\" value=\"1\">"
        } else {
            ""
        },
    );
    html.push_str(
        "<div class=\"table-wrap\"><table id=\"tasks\"><thead><tr>\
         <th data-sort=\"id\" scope=\"col\">Task</th><th data-sort=\"kind\" scope=\"col\">Kind</th>\
         <th data-sort=\"health\" scope=\"col\">Status</th><th data-sort=\"progress\" scope=\"col\">Progress</th>\
         <th data-sort=\"sync\" scope=\"col\">Sync / delay</th><th data-sort=\"retries\" scope=\"col\">Retries</th>\
         <th data-sort=\"last_success\" scope=\"col\">Last read</th><th scope=\"col\">Trend</th>\
         <th scope=\"col\">Error</th></tr></thead><tbody>",
    );
    let limit = if query.all { usize::MAX } else { DEFAULT_ROWS };
    let mut shown = 0;
    let mut matching = 0;
    for (task, trend) in views.tasks.iter().zip(&views.trends) {
        if !matches(task, &needle) {
            continue;
        }
        matching += 1;
        if shown < limit {
            row(&mut html, task, trend, now);
            shown += 1;
        }
    }
    if matching == 0 {
        html.push_str("<tr class=\"empty\"><td colspan=\"9\">No task matches.</td></tr>");
    }
    html.push_str("</tbody></table></div>");
    let _ = write!(
        html,
        "<p id=\"more\" class=\"more\">Showing {shown} of {matching} matching tasks ({} in all).",
        views.tasks.len()
    );
    if shown < matching {
        let _ = write!(
            html,
            " <a id=\"show-all\" href=\"/?all=1&amp;q={}\">Show all</a>",
            escape(
                &url::form_urlencoded::byte_serialize(query.filter.as_bytes()).collect::<String>()
            )
        );
    }
    html.push_str("</p>");
    slots(&mut html, &views.sources);
    let _ = write!(
        html,
        "<p id=\"cost\" class=\"more\">{}</p>",
        cost(exposition.series, views.tasks.len())
    );
    html.push_str("</main></body></html>");
    html
}

/// What `/metrics` costs the Prometheus that scrapes it, for the page's foot (the script says
/// the same from the JSON's `exposition_series`).
fn cost(series: u64, tasks: usize) -> String {
    format!(
        "/metrics carries {} series for {} tasks: what this exporter adds to the Prometheus \
         that scrapes it.",
        grouped(series),
        grouped(tasks as u64)
    )
}

/// The PostgreSQL sources' watched slots: each in words, an orphaned or lost one with the
/// statement that drops it (the script renders the same from the JSON's `sources`).
fn slots(html: &mut String, sources: &[crate::task_view::slots::SourceSlots]) {
    html.push_str("<section id=\"slots\" aria-label=\"Replication slots\">");
    for source in sources {
        let _ = write!(
            html,
            "<h2>Replication slots on {}</h2><ul class=\"slots\">",
            escape(&source.name)
        );
        for slot in &source.slots {
            let class = if slot.orphaned {
                "slot orphaned"
            } else {
                "slot"
            };
            let _ = write!(html, "<li class=\"{class}\">{}", escape(&slot.words));
            if let Some(statement) = &slot.drop_statement {
                let _ = write!(html, "<br><code>{}</code>", escape(statement));
            }
            html.push_str("</li>");
        }
        html.push_str("</ul>");
    }
    html.push_str("</section>");
}

/// `HH:MM:SS` of a unix time, UTC.
fn clock(unix: f64) -> String {
    let seconds = unix.max(0.0) as u64 % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn row(html: &mut String, task: &TaskView, trend: &VecDeque<Sample>, now: f64) {
    let health = task.health;
    let key = format!("{}/{}", task.account.as_deref().unwrap_or(""), task.id);
    let _ = write!(
        html,
        "<tr class=\"h-{}\" data-key=\"{}\"><td class=\"task\"><code>{}</code>",
        health.as_str(),
        escape(&key),
        escape(&task.id)
    );
    if let Some(name) = &task.name {
        let _ = write!(html, "<br><span class=\"name\">{}</span>", escape(name));
    }
    if let Some(account) = &task.account {
        let _ = write!(html, " <span class=\"account\">{}</span>", escape(account));
    }
    let _ = write!(
        html,
        "</td><td>{}<br><span class=\"muted\">{}</span></td>",
        task.kind,
        escape(task.mode.as_deref().unwrap_or("-"))
    );
    let status = task.status.as_deref().unwrap_or("unknown");
    let _ = write!(
        html,
        "<td><span class=\"badge h-{}\">{}</span>",
        health.as_str(),
        escape(status)
    );
    if matches!(
        health,
        Health::Unreadable | Health::Stalled | Health::Behind
    ) {
        let _ = write!(
            html,
            " <span class=\"badge h-{0}\">{0}</span>",
            health.as_str()
        );
    }
    if task.cutover.ready == Some(true) {
        html.push_str(" <span class=\"badge ready\">ready for cut-over</span>");
    }
    if let Some(since) = task.status_since {
        let _ = write!(
            html,
            "<br><span class=\"muted\">for {}</span>",
            duration(now - since)
        );
    }
    if let Some(outlook) = &task.outlook {
        let _ = write!(
            html,
            "<br><span class=\"outlook\">{}</span>",
            escape(outlook)
        );
    }
    if let Some(sentence) = task.udts_sentence() {
        let _ = write!(
            html,
            "<br><span class=\"outlook\">{}</span>",
            escape(&sentence)
        );
    }
    for words in task.deadlines.iter().filter_map(|d| d.words.as_ref()) {
        let _ = write!(
            html,
            "<br><span class=\"deadline\">{}</span>",
            escape(words)
        );
    }
    html.push_str("</td><td class=\"progress\">");
    if let Some(progress) = &task.progress {
        if let Some(ratio) = progress.ratio {
            let _ = write!(
                html,
                "<progress max=\"1\" value=\"{ratio}\">{:.1}%</progress> {:.1}%",
                ratio * 100.0,
                ratio * 100.0
            );
        }
        if let (Some(rows), Some(target)) = (progress.rows, progress.target_rows) {
            let _ = write!(
                html,
                "<br><span class=\"muted\">{} / {} rows</span>",
                grouped(rows),
                grouped(target)
            );
        }
        if let (Some(elapsed), Some(total)) = (
            progress.elapsed_seconds,
            progress.estimated_duration_seconds,
        ) {
            if total > elapsed && progress.ratio.is_some_and(|r| r < 1.0) {
                let _ = write!(
                    html,
                    "<br><span class=\"muted\">{} left</span>",
                    duration((total - elapsed) as f64)
                );
            }
        }
    } else {
        html.push_str("<span class=\"muted\">-</span>");
    }
    html.push_str("</td><td class=\"sync\">");
    match (&task.sync, task.delay_seconds) {
        (_, Some(delay)) => {
            let _ = write!(html, "delay {}", duration(delay));
        }
        (Some(sync), None) => {
            let _ = write!(
                html,
                "<code>{}:{}</code>",
                escape(sync.binlog_file.as_deref().unwrap_or("?")),
                // As `mysqlbinlog --start-position` takes it: no thousands separators.
                sync.binlog_position.map_or("?".into(), |p| p.to_string())
            );
            if let Some(gtid) = &sync.gtid {
                let _ = write!(html, "<br><code class=\"gtid\">{}</code>", escape(gtid));
            }
        }
        (None, None) => html.push_str("<span class=\"muted\">-</span>"),
    }
    if let Some(lag) = &task.source_lag {
        let class = if lag.behind {
            "lag behind"
        } else {
            "lag muted"
        };
        let _ = write!(
            html,
            "<br><span class=\"{class}\">{}</span>",
            escape(&lag.summary)
        );
    }
    if let Some(detail) = task.udts_detail() {
        let _ = write!(
            html,
            "<br><span class=\"monitor muted\" title=\"UDTS's own monitoring\">{}</span>",
            escape(&detail)
        );
    }
    let retries = |v: Option<u64>| v.map_or("-".to_string(), grouped);
    let _ = write!(
        html,
        "</td><td>{} / {}</td><td>{}</td><td class=\"trend\">",
        retries(task.retries),
        retries(task.max_retries),
        task.last_success.map_or("never".to_string(), |at| format!(
            "{} ago",
            duration(now - at)
        ))
    );
    sparkline(html, trend);
    html.push_str("</td><td class=\"error\">");
    if let Some(error) = &task.error {
        let _ = write!(
            html,
            "<strong>{}</strong>: {}",
            escape(error.reason),
            escape(&error.message)
        );
    }
    if let Some(message) = &task.failure_message {
        if task.error.is_some() {
            html.push_str("<br>");
        }
        let _ = write!(html, "{}", escape(message.lines().next().unwrap_or("")));
    }
    html.push_str("</td></tr>");
}

/// An inline SVG polyline of the samples (no script, no style attribute: CSP-clean).
pub fn sparkline(html: &mut String, trend: &VecDeque<Sample>) {
    if trend.len() < 2 {
        html.push_str("<span class=\"muted\">-</span>");
        return;
    }
    let (first, last) = (f64::from(trend[0].at), f64::from(trend[trend.len() - 1].at));
    let (low, high) = trend.iter().fold((f64::MAX, f64::MIN), |(lo, hi), s| {
        (lo.min(s.value), hi.max(s.value))
    });
    let span = (last - first).max(1.0);
    let range = (high - low).max(f64::EPSILON);
    html.push_str(
        "<svg class=\"spark\" viewBox=\"0 0 100 24\" preserveAspectRatio=\"none\" \
         role=\"img\" aria-label=\"trend over the last hour\"><polyline points=\"",
    );
    for sample in trend {
        let x = (sample.at as f64 - first) / span * 100.0;
        let y = 22.0 - (sample.value - low) / range * 20.0;
        let _ = write!(html, "{x:.1},{y:.1} ");
    }
    html.push_str("\"/></svg>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            escape("<img src=x onerror=\"alert('1')\">&"),
            "&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;"
        );
    }

    #[test]
    fn counts_are_grouped_in_thousands() {
        assert_eq!(grouped(2_400_000), "2,400,000");
        assert_eq!(grouped(999), "999");
    }

    #[test]
    fn the_query_is_read_leniently() {
        let query = PageQuery::parse(Some("q=%20Failed%20&all=1&x=y"));
        assert_eq!(query.filter, "Failed");
        assert!(query.all);
        assert!(!PageQuery::parse(None).all);
    }
}
