// udts-exporter task page: live filter and sort, and a refresh from /api/v1/tasks every few
// seconds without reloading. The page works without this script; with it, every value from the
// API is set as text (never as HTML), so a task name cannot add markup.
"use strict";
(function () {
  var REFRESH_MS = 5000;
  var TREND_MS = 60000;
  var body = document.body;
  var limit = Number(body.getAttribute("data-rows")) || 0;
  var tbody = document.querySelector("#tasks tbody");
  var filterBox = document.getElementById("filter");
  var freshness = document.getElementById("freshness");
  var summary = document.getElementById("summary");
  var more = document.getElementById("more");
  var cost = document.getElementById("cost");
  var state = { tasks: null, generatedAt: 0, fetchedAt: 0, sort: null, dir: 1, trends: {} };
  var failingSince = null;
  document.documentElement.classList.add("js");

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function clock(unix) {
    var d = new Date(unix * 1000);
    return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
  }
  function number(v) { return Math.round(v).toLocaleString("en-US"); }
  // UDTS's monitoring in words, as the server's page says it (src/task_view/words.rs).
  var FINISHED = ["Done", "Success", "Stopped", "FailedUnrecoverable", "StoppedUnrecoverable"];
  // human: begin. The twin of src/human.rs: the same words for the same values, rounded on
  // whole numbers (tests/human_twin.rs runs both).
  function two(large, largeUnit, small, smallUnit) {
    return small === 0 ? large + " " + largeUnit : large + " " + largeUnit + " " + small + " " + smallUnit;
  }
  function tenths(t, unit) { return Math.floor(t / 10) + "." + (t % 10) + " " + unit; }
  function duration(seconds) {
    seconds = isFinite(seconds) ? Math.round(Math.max(0, seconds)) : 0;
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return two(Math.floor(seconds / 60), "min", seconds % 60, "s");
    var minutes = Math.floor((seconds + 30) / 60);
    if (minutes < 24 * 60) return two(Math.floor(minutes / 60), "h", minutes % 60, "min");
    var hours = Math.floor((seconds + 1800) / 3600), days = Math.floor(hours / 24);
    return two(days, days === 1 ? "day" : "days", hours % 24, "h");
  }
  function latency(seconds) {
    seconds = isFinite(seconds) ? Math.max(0, seconds) : 0;
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    return tenths(Math.round(seconds * 10), "s");
  }
  function size(bytes) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    bytes = Math.floor(bytes);
    if (bytes < 1024) return bytes + " B";
    var value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    var rounded = Math.round(value * 10);
    if (rounded >= 10240 && unit < units.length - 1) { unit += 1; rounded = Math.round(value / 1024 * 10); }
    return tenths(rounded, units[unit]);
  }
  // human: end
  function udtsSentence(task) {
    var m = task.monitor;
    if (!m || (task.status !== "Syncing" && task.status !== "Synced")) return null;
    var parts = [];
    if (m.sync_delay_seconds !== null) parts.push("sync delay " + duration(m.sync_delay_seconds));
    if (m.remaining_bytes !== null) {
      var text = size(m.remaining_bytes) + " left to apply";
      if (m.estimated_remaining_seconds !== null && m.estimated_remaining_seconds >= 1 && m.remaining_bytes > 0) {
        text += ", about " + duration(m.estimated_remaining_seconds);
      }
      parts.push(text);
    }
    if (!parts.length) return null;
    var sentence = "UDTS: " + parts.join(", ");
    // Shown, but older than the cut-over verdict may judge by (the view says which).
    if (!m.current_for_verdict && m.sync_delay_seconds !== null) {
      sentence += " (too old for the cut-over verdict)";
    }
    return sentence;
  }
  function udtsDetail(task) {
    var m = task.monitor;
    if (!m || FINISHED.indexOf(task.status) >= 0) return null;
    function speed(verb, bytes, rows) {
      var b = bytes === null ? null : size(bytes) + "/s";
      var r = rows === null ? null : number(rows) + " rows/s";
      if (b && r) return verb + " " + b + " (" + r + ")";
      return b || r ? verb + " " + (b || r) : null;
    }
    function endLatency(end, s) { return s === null ? null : end + " " + latency(s); }
    var speeds = [speed("reads", m.source_read_bytes_per_second, m.source_read_rows_per_second),
      speed("writes", m.target_write_bytes_per_second, m.target_write_rows_per_second)].filter(Boolean);
    var latencies = [endLatency("source", m.source_network_latency_seconds),
      endLatency("target", m.target_network_latency_seconds)].filter(Boolean);
    var text = speeds.join(", ");
    if (latencies.length) text += (text ? "; " : "") + "network latency to " + latencies.join(", ");
    return text || null;
  }
  function now() { return state.generatedAt + (Date.now() - state.fetchedAt) / 1000; }
  function key(task) { return (task.account || "") + "/" + task.id; }

  function matches(task, needle) {
    if (!needle) return true;
    return [task.id, task.name, task.status, task.account].some(function (f) {
      return f && String(f).toLowerCase().indexOf(needle) !== -1;
    });
  }

  var HEALTH = ["unrecoverable", "failed", "unreadable", "stalled", "behind", "other", "active", "done"];
  var SORTS = {
    id: function (t) { return t.id; },
    kind: function (t) { return t.kind + " " + (t.mode || ""); },
    health: function (t) { return HEALTH.indexOf(t.health); },
    progress: function (t) { return t.progress && t.progress.ratio !== null ? t.progress.ratio : -1; },
    sync: function (t) {
      if (t.delay_seconds !== null) return t.delay_seconds;
      return t.sync && t.sync.binlog_position !== null ? t.sync.binlog_position : -1;
    },
    retries: function (t) { return t.retries === null ? -1 : t.retries; },
    last_success: function (t) { return t.last_success === null ? 0 : t.last_success; }
  };

  function sparkline(samples) {
    if (!samples || samples.length < 2) return el("span", "muted", "-");
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 100 24");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "trend over the last hour");
    var first = samples[0][0], last = samples[samples.length - 1][0];
    var lo = Infinity, hi = -Infinity;
    samples.forEach(function (s) { lo = Math.min(lo, s[1]); hi = Math.max(hi, s[1]); });
    var span = Math.max(last - first, 1), range = Math.max(hi - lo, 1e-12);
    var points = samples.map(function (s) {
      return ((s[0] - first) / span * 100).toFixed(1) + "," +
        (22 - (s[1] - lo) / range * 20).toFixed(1);
    }).join(" ");
    var line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points);
    svg.appendChild(line);
    return svg;
  }

  function row(task, at) {
    var tr = el("tr", "h-" + task.health);
    tr.setAttribute("data-key", key(task));
    var cell = el("td", "task");
    cell.appendChild(el("code", null, task.id));
    if (task.name) { cell.appendChild(el("br")); cell.appendChild(el("span", "name", task.name)); }
    if (task.account) { cell.appendChild(document.createTextNode(" ")); cell.appendChild(el("span", "account", task.account)); }
    tr.appendChild(cell);

    cell = el("td", null, task.kind);
    cell.appendChild(el("br"));
    cell.appendChild(el("span", "muted", task.mode || "-"));
    tr.appendChild(cell);

    cell = el("td");
    cell.appendChild(el("span", "badge h-" + task.health, task.status || "unknown"));
    if (task.health === "unreadable" || task.health === "stalled" || task.health === "behind") {
      cell.appendChild(document.createTextNode(" "));
      cell.appendChild(el("span", "badge h-" + task.health, task.health));
    }
    if (task.cutover && task.cutover.ready === true) {
      cell.appendChild(document.createTextNode(" "));
      cell.appendChild(el("span", "badge ready", "ready for cut-over"));
    }
    if (task.status_since !== null) {
      cell.appendChild(el("br"));
      cell.appendChild(el("span", "muted", "for " + duration(at - task.status_since)));
    }
    if (task.outlook) {
      cell.appendChild(el("br"));
      cell.appendChild(el("span", "outlook", task.outlook));
    }
    var sentence = udtsSentence(task);
    if (sentence) {
      cell.appendChild(el("br"));
      cell.appendChild(el("span", "outlook", sentence));
    }
    (task.deadlines || []).forEach(function (d) {
      if (d.words) {
        cell.appendChild(el("br"));
        cell.appendChild(el("span", "deadline", d.words));
      }
    });
    tr.appendChild(cell);

    cell = el("td", "progress");
    var p = task.progress;
    if (p) {
      if (p.ratio !== null) {
        var bar = el("progress");
        bar.max = 1; bar.value = p.ratio;
        bar.textContent = (p.ratio * 100).toFixed(1) + "%";
        cell.appendChild(bar);
        cell.appendChild(document.createTextNode(" " + (p.ratio * 100).toFixed(1) + "%"));
      }
      if (p.rows !== null && p.target_rows !== null) {
        cell.appendChild(el("br"));
        cell.appendChild(el("span", "muted", number(p.rows) + " / " + number(p.target_rows) + " rows"));
      }
      if (p.elapsed_seconds !== null && p.estimated_duration_seconds !== null &&
          p.estimated_duration_seconds > p.elapsed_seconds && p.ratio !== null && p.ratio < 1) {
        cell.appendChild(el("br"));
        cell.appendChild(el("span", "muted", duration(p.estimated_duration_seconds - p.elapsed_seconds) + " left"));
      }
    } else {
      cell.appendChild(el("span", "muted", "-"));
    }
    tr.appendChild(cell);

    cell = el("td", "sync");
    if (task.delay_seconds !== null) {
      cell.textContent = "delay " + duration(task.delay_seconds);
    } else if (task.sync) {
      cell.appendChild(el("code", null, (task.sync.binlog_file || "?") + ":" +
        (task.sync.binlog_position === null ? "?" : String(task.sync.binlog_position))));
      if (task.sync.gtid) { cell.appendChild(el("br")); cell.appendChild(el("code", "gtid", task.sync.gtid)); }
    } else {
      cell.appendChild(el("span", "muted", "-"));
    }
    if (task.source_lag) {
      cell.appendChild(el("br"));
      cell.appendChild(el("span", task.source_lag.behind ? "lag behind" : "lag muted", task.source_lag.summary));
    }
    var detail = udtsDetail(task);
    if (detail) {
      cell.appendChild(el("br"));
      var span = el("span", "monitor muted", detail);
      span.title = "UDTS's own monitoring";
      cell.appendChild(span);
    }
    tr.appendChild(cell);

    function count(v) { return v === null ? "-" : number(v); }
    tr.appendChild(el("td", null, count(task.retries) + " / " + count(task.max_retries)));
    tr.appendChild(el("td", null, task.last_success === null ? "never" : duration(at - task.last_success) + " ago"));
    cell = el("td", "trend");
    cell.appendChild(sparkline(state.trends[key(task)]));
    tr.appendChild(cell);

    cell = el("td", "error");
    if (task.error) {
      cell.appendChild(el("strong", null, task.error.reason));
      cell.appendChild(document.createTextNode(": " + task.error.message));
    }
    if (task.failure_message) {
      if (task.error) cell.appendChild(el("br"));
      cell.appendChild(document.createTextNode(task.failure_message.split("\n")[0]));
    }
    tr.appendChild(cell);
    return tr;
  }

  function render() {
    if (!state.tasks) return;
    var needle = filterBox.value.trim().toLowerCase();
    var tasks = state.tasks.filter(function (t) { return matches(t, needle); });
    if (state.sort) {
      var get = SORTS[state.sort], dir = state.dir;
      tasks = tasks.map(function (t, i) { return [t, i]; }).sort(function (a, b) {
        var x = get(a[0]), y = get(b[0]);
        if (x < y) return -dir;
        if (x > y) return dir;
        return a[1] - b[1];
      }).map(function (p) { return p[0]; });
    }
    var shown = limit ? tasks.slice(0, limit) : tasks;
    var at = now();
    var fragment = document.createDocumentFragment();
    shown.forEach(function (t) { fragment.appendChild(row(t, at)); });
    if (!tasks.length) {
      var empty = el("tr", "empty");
      var td = el("td", null, "No task matches.");
      td.colSpan = 9;
      empty.appendChild(td);
      fragment.appendChild(empty);
    }
    tbody.replaceChildren(fragment);

    var counts = {};
    state.tasks.forEach(function (t) {
      var word = (t.health === "unreadable" || t.health === "stalled" || t.health === "behind") ? t.health : (t.status || "unknown");
      var c = counts[word] || (counts[word] = { health: t.health, n: 0 });
      if (HEALTH.indexOf(t.health) < HEALTH.indexOf(c.health)) c.health = t.health;
      c.n += 1;
    });
    var words = Object.keys(counts).sort(function (a, b) {
      var d = HEALTH.indexOf(counts[a].health) - HEALTH.indexOf(counts[b].health);
      return d || (a < b ? -1 : a > b ? 1 : 0);
    });
    var chips = document.createDocumentFragment();
    words.forEach(function (w) {
      var li = el("li", "chip h-" + counts[w].health);
      li.appendChild(el("span", null, w));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("b", null, counts[w].n));
      chips.appendChild(li);
    });
    var ready = state.tasks.filter(function (t) { return t.cutover && t.cutover.ready === true; }).length;
    if (ready > 0) {
      var chip = el("li", "chip ready");
      chip.appendChild(el("span", null, "ready for cut-over"));
      chip.appendChild(document.createTextNode(" "));
      chip.appendChild(el("b", null, ready));
      chips.appendChild(chip);
    }
    summary.replaceChildren(chips);

    more.replaceChildren(document.createTextNode("Showing " + shown.length + " of " + tasks.length +
      " matching tasks (" + state.tasks.length + " in all)."));
    if (shown.length < tasks.length) {
      var all = el("a", null, "Show all");
      all.href = "#";
      all.id = "show-all";
      all.addEventListener("click", function (e) { e.preventDefault(); limit = 0; render(); refreshTrends(); });
      more.appendChild(document.createTextNode(" "));
      more.appendChild(all);
    }
  }

  function renderSlots(sources) {
    var section = document.getElementById("slots");
    if (!section) return;
    var fragment = document.createDocumentFragment();
    (sources || []).forEach(function (source) {
      fragment.appendChild(el("h2", null, "Replication slots on " + source.name));
      var list = el("ul", "slots");
      source.slots.forEach(function (slot) {
        var li = el("li", slot.orphaned ? "slot orphaned" : "slot", slot.words);
        if (slot.drop_statement) {
          li.appendChild(el("br"));
          li.appendChild(el("code", null, slot.drop_statement));
        }
        list.appendChild(li);
      });
      fragment.appendChild(list);
    });
    section.replaceChildren(fragment);
  }

  function showFreshness() {
    if (failingSince !== null) {
      freshness.className = "freshness offline";
      freshness.textContent = "Cannot reach the exporter since " + clock(failingSince) +
        " UTC; showing data from " + clock(state.generatedAt) + " UTC.";
    } else {
      freshness.className = "freshness";
      freshness.textContent = "Data from " + clock(state.generatedAt) + " UTC, refreshed every " +
        REFRESH_MS / 1000 + " s.";
    }
  }

  function refresh() {
    fetch("/api/v1/tasks", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (list) {
        state.tasks = list.tasks;
        state.generatedAt = list.generated_at;
        renderSlots(list.sources);
        // The server's page says the same (src/page/mod.rs, cost).
        cost.textContent = "/metrics carries " + number(list.exposition_series) + " series for " +
          number(list.tasks.length) + " tasks: what this exporter adds to the Prometheus that " +
          "scrapes it.";
        state.fetchedAt = Date.now();
        failingSince = null;
        render();
        showFreshness();
      })
      .catch(function () {
        if (failingSince === null) failingSince = Date.now() / 1000;
        showFreshness();
      });
  }

  function refreshTrends() {
    var url = "/api/v1/trends" + (limit ? "?limit=" + limit : "");
    fetch(url, { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (trends) { state.trends = trends; render(); })
      .catch(function () {});
  }

  filterBox.addEventListener("input", function () {
    render();
    var url = new URL(window.location.href);
    if (filterBox.value) url.searchParams.set("q", filterBox.value); else url.searchParams.delete("q");
    window.history.replaceState(null, "", url);
  });
  filterBox.form.addEventListener("submit", function (e) { e.preventDefault(); render(); });
  Array.prototype.forEach.call(document.querySelectorAll("th[data-sort]"), function (th) {
    th.tabIndex = 0;
    function sort() {
      var field = th.getAttribute("data-sort");
      state.dir = state.sort === field ? -state.dir : 1;
      state.sort = field;
      Array.prototype.forEach.call(document.querySelectorAll("th[data-sort]"), function (other) {
        other.removeAttribute("aria-sort");
      });
      th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      render();
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
  });
  refreshTrends();
  refresh();
  setInterval(refresh, REFRESH_MS);
  setInterval(refreshTrends, TREND_MS);
})();
