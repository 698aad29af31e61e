/* modelpilot dashboard: polls the server's JSON API and draws inline SVG charts.
 *
 * Hand-written on purpose: no library, no build step, nothing fetched from the internet, so
 * the page works on a server without outside access. Every request it makes is one the
 * server can answer (a token is asked for first, /v1/alerts only if the server has it), so a
 * healthy dashboard leaves the browser console empty.
 */
(function () {
  "use strict";

  const POLL_MS = 5000;
  const TOKEN_KEY = "modelpilot.token";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#2563eb", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
                   "#475569", "#ea580c", "#0d9488", "#9333ea"];
  const SERIES_NAMES = ["latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "request_rate",
                        "error_rate", "client_error_rate", "drift_score", "drift_detected",
                        "key_metric"];
  const CHART_HEIGHT = 190;
  const MARGIN = { top: 10, right: 14, bottom: 24, left: 58 };

  const state = {
    token: null,
    project: null,
    deployments: [],
    selected: null,
    since: 900,
    timer: null,
    generation: 0,
    last: null, // the newest series payload, redrawn on resize
    alerts: null, // null: unknown; {unavailable: true}; or the /v1/alerts body
  };

  class AuthNeeded extends Error {}

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // ---- small DOM helpers ------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children || []) {
      if (child !== null && child !== undefined) {
        node.append(typeof child === "string" ? document.createTextNode(child) : child);
      }
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = String(value);
      else node.setAttribute(key, String(value));
    }
    return node;
  }

  function pill(text, tone, title) {
    return el("span", { className: "pill " + tone, text: text, title: title });
  }

  // ---- formatting ---------------------------------------------------------------------------
  function plain(value) {
    if (value === null || value === undefined || !isFinite(value)) return "–";
    const abs = Math.abs(value);
    if (abs >= 1000) return Math.round(value).toLocaleString("en-US");
    if (abs >= 100) return value.toFixed(0);
    if (abs >= 10) return value.toFixed(1);
    if (abs === 0) return "0";
    return Number(value.toPrecision(3)).toString();
  }

  const FORMATS = {
    ms: (v) => plain(v) + " ms",
    rate: (v) => plain(v) + "/s",
    percent: (v) => (v === null || !isFinite(v) ? "–" : plain(v * 100) + "%"),
    plain: plain,
  };

  function clock(ts, seconds) {
    const d = new Date(ts * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    const hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
    return seconds ? hm + ":" + pad(d.getSeconds()) : hm;
  }

  function ago(ts, now) {
    const s = Math.max(0, Math.round(now - ts));
    if (s < 90) return s + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    return (s / 3600).toFixed(1) + " h";
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const s = Math.max(0, Math.round(seconds));
    const m = Math.floor(s / 60);
    return m ? m + "m " + String(s % 60).padStart(2, "0") + "s" : s + "s";
  }

  // ---- the API ------------------------------------------------------------------------------
  async function api(path) {
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    let response;
    try {
      response = await fetch(path, { headers: headers, cache: "no-store" });
    } catch (err) {
      throw new HttpError(0, "the server is unreachable (" + err.message + ")");
    }
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    if (response.status === 401 || response.status === 403) {
      throw new AuthNeeded((body && body.message) || "the server refused the token");
    }
    if (!response.ok) {
      throw new HttpError(response.status, (body && body.message) || response.statusText);
    }
    return body;
  }

  // ---- the token ----------------------------------------------------------------------------
  function initialToken() {
    const params = new URLSearchParams(window.location.search);
    const fromUrl = params.get("token");
    if (fromUrl) {
      sessionStorage.setItem(TOKEN_KEY, fromUrl);
      // Out of the address bar and the history: a token in a shared screenshot or a copied
      // link would be a leaked token.
      params.delete("token");
      const rest = params.toString();
      window.history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function showLogin(reason) {
    clearTimeout(state.timer);
    $("dashboard").hidden = true;
    $("login").hidden = false;
    if (reason) $("login-reason").textContent = reason;
    setStatus("auth", "token needed");
    $("token-input").focus();
  }

  function onLogin(event) {
    event.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    state.token = token;
    $("token-input").value = "";
    $("login").hidden = true;
    refresh();
  }

  function setStatus(kind, text) {
    const node = $("status");
    node.dataset.state = kind;
    node.textContent = text;
  }

  // ---- polling ------------------------------------------------------------------------------
  async function refresh() {
    clearTimeout(state.timer);
    const generation = ++state.generation;
    try {
      if (!state.project) {
        state.project = await api("/v1/project");
        renderProject();
      }
      const listing = await api("/v1/deployments");
      state.deployments = listing.deployments || [];
      renderSelect();
      const [statuses, alerts, series] = await Promise.all([
        loadStatuses(), loadAlerts(), loadSeries(),
      ]);
      if (generation !== state.generation) return; // a newer refresh has started
      state.last = series;
      state.alerts = alerts;
      $("login").hidden = true;
      $("dashboard").hidden = false;
      renderDeployments(statuses);
      renderAlerts(alerts, series ? series.now : Date.now() / 1000);
      renderCharts(series);
      renderTiles(series, alerts);
      renderEdge(await loadEdge(), series ? series.now : Date.now() / 1000);
      setStatus("ok", "live · updated " + clock(Date.now() / 1000, true));
    } catch (err) {
      if (err instanceof AuthNeeded) {
        sessionStorage.removeItem(TOKEN_KEY);
        state.token = null;
        showLogin("The server refused the token: " + err.message);
        return;
      }
      setStatus("error", err.message + " · retrying");
    }
    if (generation === state.generation) state.timer = setTimeout(refresh, POLL_MS);
  }

  async function loadStatuses() {
    const out = {};
    await Promise.all(state.deployments.map(async (d) => {
      try {
        out[d.name] = await api("/v1/deployments/" + encodeURIComponent(d.name) + "/status");
      } catch (err) {
        if (err instanceof AuthNeeded) throw err;
        out[d.name] = { error: err.message };
      }
    }));
    return out;
  }

  async function loadAlerts() {
    if (!state.project.endpoints || !state.project.endpoints.alerts) return { unavailable: true };
    try {
      return await api("/v1/alerts");
    } catch (err) {
      if (err instanceof AuthNeeded) throw err;
      if (err.status === 404) return { unavailable: true };
      return { error: err.message };
    }
  }

  async function loadSeries() {
    if (!state.selected) return null;
    const query = new URLSearchParams({
      name: SERIES_NAMES.join(","),
      deployment: state.selected,
      since: String(state.since),
      points: "300",
    });
    return api("/v1/metrics/series?" + query.toString());
  }

  // ---- edge devices (docs/edge.md) ---------------------------------------------------------
  async function loadEdge() {
    if (!state.selected) return null;
    try {
      return await api("/v1/edge/" + encodeURIComponent(state.selected) + "/devices");
    } catch (err) {
      if (err instanceof AuthNeeded) throw err;
      return null; // a server without the edge routes: no panel
    }
  }

  function renderEdge(fleet, now) {
    const panel = $("edge-panel");
    panel.hidden = !fleet || !fleet.devices.length;
    if (panel.hidden) return;
    const rollout = fleet.rollout;
    $("edge-heading").textContent = "Edge devices · fleet on v" + fleet.version +
      (rollout && rollout.state === "running"
        ? " · canary v" + rollout.candidate_version + " to " + plain(rollout.share) + "%" : "");
    $("edge-devices").tBodies[0].replaceChildren(...fleet.devices.map((d) => el("tr", {}, [
      el("td", { text: d.device + (d.canary ? " (canary)" : "") }),
      el("td", { text: d.assigned_version === null ? "–" : "v" + d.assigned_version }),
      el("td", { text: d.last_sync === null ? "never" : ago(d.last_sync, now) + " ago" }),
      el("td", { text: String(d.uploaded) }),
      el("td", { text: String(d.dropped), className: d.dropped ? "bad" : "" }),
      el("td", { text: d.drift_share === null || d.drift_share === undefined
        ? "–" : plain(d.drift_share) }),
    ])));
  }

  // ---- header and selection -----------------------------------------------------------------
  function renderProject() {
    const p = state.project;
    $("project").textContent = p.project + " · " + p.task + " · target " + p.target;
    document.title = "modelpilot · " + p.project;
    const charts = $("charts");
    const metrics = p.key_metrics.length ? p.key_metrics : [null];
    for (const metric of metrics) {
      const id = metric ? "chart-key-" + metric.name : "chart-key-none";
      if ($(id)) continue;
      const title = metric ? "Key metric: " + metric.text : "Key metrics";
      charts.append(el("figure", { className: "chart", id: id }, [
        el("figcaption", { text: title }),
      ]));
    }
  }

  function renderSelect() {
    const select = $("deployment-select");
    const names = state.deployments.map((d) => d.name);
    if (!names.includes(state.selected)) state.selected = names.length ? names[0] : null;
    const current = Array.from(select.options).map((o) => o.value);
    if (current.join("\n") !== names.join("\n")) {
      select.replaceChildren(...names.map((n) => el("option", { value: n, text: n })));
    }
    if (state.selected) select.value = state.selected;
    select.disabled = names.length < 2;
  }

  // ---- deployments --------------------------------------------------------------------------
  function renderDeployments(statuses) {
    const body = $("deployments").tBodies[0];
    if (!state.deployments.length) {
      body.replaceChildren(el("tr", {}, [el("td", {
        colspan: 6, className: "muted", text: "No deployment is loaded yet.",
      })]));
      return;
    }
    body.replaceChildren(...state.deployments.map((d) => deploymentRow(d, statuses[d.name])));
  }

  function deploymentRow(d, status) {
    const row = el("tr", {
      className: d.name === state.selected ? "selected" : "",
      "data-deployment": d.name,
      title: "show this deployment's charts",
    });
    row.addEventListener("click", () => {
      state.selected = d.name;
      refresh();
    });
    const name = el("td", {}, [el("strong", { text: d.name }), " ",
                               el("span", { className: "muted", text: "@" + d.alias })]);
    if (!status || status.error) {
      row.append(name, el("td", { text: d.model || "" }),
                 el("td", { colspan: 4 }, [pill("loading", "grey", status && status.error)]));
      return row;
    }
    const serving = el("td", {}, [
      el("strong", { text: "v" + status.version }), " ", pill("serving", "green"),
    ]);
    row.append(name, el("td", { text: status.model || d.model || "" }), serving,
               el("td", {}, [trafficBar(status.routing)]),
               el("td", {}, rolloutCell(status)), el("td", {}, gateChips(status.rollout)));
    return row;
  }

  function trafficBar(routing) {
    const traffic = (routing && routing.traffic) || {};
    const entries = Object.entries(traffic).sort((a, b) => Number(a[0]) - Number(b[0]));
    const bar = el("div", { className: "traffic", role: "img" });
    const labels = [];
    entries.forEach(([version, share], index) => {
      const segment = el("span", {
        className: "segment s" + (index % 4),
        title: "v" + version + ": " + plain(share) + "% of requests",
      });
      segment.style.width = Math.max(0, Math.min(100, share)) + "%";
      bar.append(segment);
      labels.push("v" + version + " " + plain(share) + "%");
    });
    let text = labels.join(" · ");
    if (routing && routing.shadow !== undefined) text += " · shadow v" + routing.shadow;
    bar.setAttribute("aria-label", text);
    return el("div", { className: "traffic-cell" }, [bar, el("span", { text: text })]);
  }

  function rolloutCell(status) {
    const r = status.rollout;
    if (!r) {
      const last = (status.recent || [])[0];
      if (!last) return [el("span", { className: "muted", text: "none" })];
      return [el("span", {
        className: "muted",
        text: "last: " + last.strategy + " v" + last.candidate_version + " " + last.status,
      })];
    }
    const tone = r.paused ? "amber" : ["failed", "rolled_back", "aborted"].includes(r.status)
      ? "red" : "blue";
    const parts = [
      el("strong", { text: r.strategy }), " v" + r.primary_version + " → v" + r.candidate_version,
      " ", pill(r.paused ? "paused" : r.status, tone),
    ];
    const details = [];
    if (r.step_of) details.push("step " + r.step_of + " (" + plain(r.weight) + "%)");
    if (r.next_step_in_s !== undefined && r.next_step_in_s !== null) {
      details.push("next in " + duration(r.next_step_in_s));
    }
    if (r.standby_version !== undefined) details.push("standby v" + r.standby_version);
    if (details.length) parts.push(el("div", { className: "muted small", text: details.join(" · ") }));
    return parts;
  }

  function gateChips(rollout) {
    const gates = (rollout && rollout.gates) || [];
    if (!gates.length) {
      return [el("span", { className: "muted", text: rollout ? "no analysis yet" : "–" })];
    }
    return gates.map((g) => {
      const tone = g.status === "pass" ? "green" : g.status === "fail" ? "red" : "grey";
      const value = g.value === null || g.value === undefined ? "" : " " + plain(g.value);
      return pill(g.metric + value, tone, g.status + ": " + (g.detail || "") +
                  " (threshold " + plain(g.threshold) + ", " + g.samples + " samples)");
    });
  }

  // ---- alerts -------------------------------------------------------------------------------
  function renderAlerts(alerts, now) {
    const box = $("alerts");
    if (!alerts || alerts.unavailable) {
      box.dataset.state = "unavailable";
      box.replaceChildren(el("p", {
        className: "muted",
        text: "No alert data: this server does not evaluate alert rules (no /v1/alerts).",
      }));
      return;
    }
    if (alerts.error) {
      box.dataset.state = "error";
      box.replaceChildren(el("p", { className: "bad", text: "Alerts unavailable: " + alerts.error }));
      return;
    }
    const active = alerts.active || [];
    const recent = alerts.recent || [];
    if (!active.length) {
      box.dataset.state = "none";
      box.replaceChildren(el("p", { className: "ok-box", text: "No active alerts" }),
                          el("p", { className: "muted small",
                                    text: recent.length + " resolved or past alert(s) recently" }));
      return;
    }
    box.dataset.state = "active";
    const tones = { critical: "red", warning: "amber" };
    const rows = active.map((a) => {
      const where = [a.deployment].concat(
        Object.entries(a.labels || {}).map(([k, v]) => k + "=" + v)).filter(Boolean);
      return el("tr", { "data-rule": a.rule, "data-state": a.state }, [
        el("td", {}, [pill(a.severity || "alert", tones[a.severity] || "blue")]),
        el("td", {}, [
          el("strong", { text: a.rule }),
          a.state === "pending" ? " " : null,
          a.state === "pending" ? pill("pending", "grey", "the condition holds; not firing yet")
                                : null,
          where.length ? el("div", { className: "muted small", text: where.join(" · ") }) : null,
        ]),
        el("td", { text: plain(a.value) + " / " + plain(a.threshold) }),
        el("td", { text: ago(a.fired_at || a.started_at, now) }),
      ]);
    });
    box.replaceChildren(el("table", { className: "table compact" }, [
      el("thead", {}, [el("tr", {}, [el("th", { text: "Severity" }), el("th", { text: "Rule" }),
                                     el("th", { text: "Value / threshold" }),
                                     el("th", { text: "For" })])]),
      el("tbody", {}, rows),
    ]));
  }

  // ---- tiles --------------------------------------------------------------------------------
  function groups(payload, name) {
    if (!payload) return [];
    return payload.series.filter((s) => s.name === name);
  }

  function latest(group) {
    if (!group) return null;
    for (let i = group.points.length - 1; i >= 0; i--) {
      if (group.points[i].value !== null) return group.points[i].value;
    }
    return null;
  }

  function tile(label, value, tone, note) {
    return el("div", { className: "tile " + tone, "data-tile": label }, [
      el("div", { className: "tile-label", text: label }),
      el("div", { className: "tile-value", text: value }),
      el("div", { className: "tile-note", text: note || "", title: note || null }),
    ]);
  }

  function renderTiles(payload, alerts) {
    const slo = state.project.service_objectives;
    const one = (name) => latest(groups(payload, name)[0]);
    const rate = one("request_rate");
    const p99 = one("latency_p99_ms");
    const errors = one("error_rate");
    const rejected = one("client_error_rate");
    const tiles = [
      tile("Requests", rate === null ? "–" : FORMATS.rate(rate), "neutral",
           state.selected || "no deployment"),
      tile("Latency p99", p99 === null ? "–" : FORMATS.ms(p99),
           p99 === null ? "grey" : p99 <= slo.latency_p99_ms ? "good" : "bad",
           "objective ≤ " + FORMATS.ms(slo.latency_p99_ms)),
      tile("Error rate", errors === null ? "–" : FORMATS.percent(errors),
           errors === null ? "grey" : errors <= slo.error_rate ? "good" : "bad",
           "objective ≤ " + FORMATS.percent(slo.error_rate)),
      tile("Rejected inputs", rejected === null ? "–" : FORMATS.percent(rejected),
           rejected === null ? "grey" : rejected > 0.05 ? "warn" : "neutral", "4xx of requests"),
    ];
    const detected = groups(payload, "drift_detected");
    const drifted = detected.filter((g) => latest(g) === 1).map((g) => g.labels.feature);
    tiles.push(tile("Drift", detected.length ? drifted.length + " of " + detected.length : "–",
                    !detected.length ? "grey" : drifted.length ? "bad" : "good",
                    detected.length ? (drifted.length ? drifted.join(", ") : "no feature drifted")
                                    : "no drift check yet"));
    for (const metric of state.project.key_metrics) {
      const group = groups(payload, "key_metric").find((g) => g.labels.metric === metric.name);
      const value = latest(group);
      tiles.push(tile(metric.name, value === null ? "–" : plain(value),
                      value === null ? "grey" : meets(metric, value) ? "good" : "bad",
                      "target " + metric.op + " " + plain(metric.target)));
    }
    const active = alerts && alerts.active ? alerts.active.length : null;
    tiles.push(tile("Alerts", active === null ? "–" : String(active),
                    active === null ? "grey" : active ? "bad" : "good",
                    active === null ? "no alert data" : active ? "active" : "none active"));
    $("tiles").replaceChildren(...tiles);
  }

  function meets(metric, value) {
    switch (metric.op) {
      case "<=": return value <= metric.target;
      case ">=": return value >= metric.target;
      case "<": return value < metric.target;
      default: return value > metric.target;
    }
  }

  // ---- charts -------------------------------------------------------------------------------
  function renderCharts(payload) {
    // No deployment loaded yet: empty charts that say so, not a blank page.
    if (!payload) payload = { now: Date.now() / 1000, since: state.since, series: [] };
    const slo = state.project.service_objectives;
    const domain = timeDomain(payload);
    const line = (name, label, color) => {
      const group = groups(payload, name)[0];
      return { key: name, label: label, color: color, points: group ? group.points : [] };
    };
    drawChart($("chart-latency"), {
      domain: domain, format: FORMATS.ms, zero: true,
      series: [line("latency_p50_ms", "p50", PALETTE[0]),
               line("latency_p95_ms", "p95", PALETTE[1]),
               line("latency_p99_ms", "p99", PALETTE[2])],
      refs: [{ label: "p99 objective", value: slo.latency_p99_ms }],
      empty: "no requests in this window",
    });
    drawChart($("chart-throughput"), {
      domain: domain, format: FORMATS.rate, zero: true,
      series: [line("request_rate", "requests/s", PALETTE[0])],
      refs: [],
      empty: "no measurements yet",
    });
    drawChart($("chart-errors"), {
      domain: domain, format: FORMATS.percent, zero: true,
      series: [line("error_rate", "server errors", "#dc2626"),
               line("client_error_rate", "rejected inputs (4xx)", PALETTE[1])],
      refs: [{ label: "error objective", value: slo.error_rate }],
      empty: "no measurements yet",
    });
    const detected = new Map(groups(payload, "drift_detected").map(
      (g) => [g.labels.feature, latest(g) === 1]));
    drawChart($("chart-drift"), {
      domain: domain, format: FORMATS.plain, zero: true,
      series: groups(payload, "drift_score").map((g, i) => ({
        key: "drift:" + g.labels.feature,
        label: g.labels.feature,
        color: PALETTE[i % PALETTE.length],
        points: g.points,
        badge: detected.get(g.labels.feature) ? "drifted" : null,
      })),
      refs: [],
      empty: "no drift check yet: it needs a version registered with --data and " +
             "monitoring.drift.min_rows predictions",
    });
    for (const metric of state.project.key_metrics) {
      const group = groups(payload, "key_metric").find((g) => g.labels.metric === metric.name);
      const value = latest(group);
      drawChart($("chart-key-" + metric.name), {
        domain: domain, format: FORMATS.plain, zero: false,
        series: [{
          key: "key:" + metric.name, label: metric.name, color: PALETTE[0],
          points: group ? group.points : [],
          badge: value === null ? null : meets(metric, value) ? "meets target" : "misses target",
          good: value !== null && meets(metric, value),
        }],
        refs: [{ label: "target " + metric.op + " " + plain(metric.target),
                 value: metric.target }],
        empty: "no labels yet: send them with POST /v1/feedback",
      });
    }
    const none = $("chart-key-none");
    if (none && !none.querySelector(".note")) {
      none.append(el("p", { className: "note muted",
                            text: "The project file declares no key metrics." }));
    }
  }

  function timeDomain(payload) {
    const now = payload.now;
    let earliest = now;
    for (const group of payload.series) {
      if (group.points.length) earliest = Math.min(earliest, group.points[0].ts);
    }
    // The window, or less while the data is younger: a fresh server's minute of data is
    // drawn across the chart, not squeezed into its right edge.
    const start = Math.max(now - payload.since, Math.min(earliest, now - 60));
    return [start, now];
  }

  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const unit = raw / power;
    return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
  }

  // The time between two points beyond which the line breaks: no measurement (no requests,
  // a stopped server) is a gap, not a straight line. A busy server measures less often than
  // monitoring.interval_s, so the points' own spacing counts too.
  function gapOf(points, interval) {
    const steps = [];
    for (let i = 1; i < points.length; i++) steps.push(points[i].ts - points[i - 1].ts);
    steps.sort((a, b) => a - b);
    const median = steps.length ? steps[Math.floor(steps.length / 2)] : 0;
    return Math.max(3.5 * interval, (2.5 * state.since) / 300, 3 * median);
  }

  function drawChart(figure, spec) {
    if (!figure) return;
    const width = Math.max(240, Math.floor(figure.clientWidth - 2));
    const height = CHART_HEIGHT;
    const plotW = width - MARGIN.left - MARGIN.right;
    const plotH = height - MARGIN.top - MARGIN.bottom;
    const [t0, t1] = spec.domain;
    const interval = state.project.monitoring.interval_s;

    const values = [];
    for (const s of spec.series) {
      for (const p of s.points) if (p.value !== null && p.ts >= t0) values.push(p.value);
    }
    for (const r of spec.refs) values.push(r.value);
    let lo = values.length ? Math.min(...values) : 0;
    let hi = values.length ? Math.max(...values) : 1;
    if (spec.zero) lo = Math.min(0, lo);
    if (hi === lo) hi = lo + (Math.abs(lo) || 1);
    const pad = (hi - lo) * 0.08;
    hi += pad;
    if (!spec.zero) lo -= pad;
    const step = niceStep(hi - lo, 4);
    lo = Math.floor(lo / step) * step;
    hi = Math.ceil(hi / step) * step;

    const x = (t) => MARGIN.left + ((t - t0) / Math.max(1e-9, t1 - t0)) * plotW;
    const y = (v) => MARGIN.top + plotH - ((v - lo) / (hi - lo)) * plotH;

    const root = svg("svg", {
      class: "plot", width: width, height: height, viewBox: "0 0 " + width + " " + height,
      role: "img", "aria-label": (figure.querySelector("figcaption") || {}).textContent || "",
    });
    const grid = svg("g", { class: "grid" });
    for (let v = lo; v <= hi + step / 2; v += step) {
      grid.append(svg("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(v), y2: y(v) }));
      grid.append(svg("text", {
        x: MARGIN.left - 6, y: y(v) + 4, "text-anchor": "end", text: spec.format(v),
      }));
    }
    root.append(grid);
    const axis = svg("g", { class: "axis" });
    axis.append(svg("line", {
      x1: MARGIN.left, x2: width - MARGIN.right, y1: MARGIN.top + plotH, y2: MARGIN.top + plotH,
    }));
    const ticks = Math.max(2, Math.floor(plotW / 90));
    const tStep = niceStep(t1 - t0, ticks);
    const withSeconds = t1 - t0 < 900;
    for (let t = Math.ceil(t0 / tStep) * tStep; t <= t1; t += tStep) {
      axis.append(svg("line", {
        x1: x(t), x2: x(t), y1: MARGIN.top + plotH, y2: MARGIN.top + plotH + 4,
      }));
      axis.append(svg("text", {
        x: x(t), y: height - 6, "text-anchor": "middle", text: clock(t, withSeconds),
      }));
    }
    root.append(axis);

    for (const r of spec.refs) {
      root.append(svg("line", {
        class: "ref", x1: MARGIN.left, x2: width - MARGIN.right, y1: y(r.value), y2: y(r.value),
        "stroke-dasharray": "6 4",
      }));
      // At the left: the newest data, at the right, is what a reader looks at first.
      root.append(svg("text", {
        class: "ref-label", x: MARGIN.left + 6, y: y(r.value) - 4, "text-anchor": "start",
        text: r.label,
      }));
    }

    let drawn = 0;
    for (const s of spec.series) {
      const points = s.points.filter((p) => p.value !== null && p.ts >= t0);
      const gap = gapOf(points, interval);
      let d = "";
      let previous = null;
      for (const p of points) {
        const command = previous === null || p.ts - previous > gap ? "M" : "L";
        d += command + x(p.ts).toFixed(1) + " " + y(p.value).toFixed(1);
        previous = p.ts;
      }
      drawn += points.length;
      root.append(svg("path", {
        class: "line", d: d || "M0 0", stroke: s.color, "data-series": s.key,
        "data-points": points.length,
      }));
      if (points.length) {
        const end = points[points.length - 1];
        root.append(svg("circle", {
          class: "dot", cx: x(end.ts), cy: y(end.value), r: 2.8, fill: s.color,
        }));
      }
    }
    if (!drawn) {
      root.append(svg("text", {
        class: "empty", x: MARGIN.left + plotW / 2, y: MARGIN.top + plotH / 2,
        "text-anchor": "middle", text: spec.empty,
      }));
    }
    figure.dataset.points = String(drawn);

    const legend = el("div", { className: "legend" }, spec.series.map((s) => {
      const last = latest(s);
      const swatch = el("span", { className: "swatch" });
      swatch.style.background = s.color;
      const badge = s.badge ? pill(s.badge, s.badge === "drifted" || s.good === false ? "red"
        : "green") : null;
      return el("span", { className: "entry", "data-series": s.key }, [
        swatch, s.label + " ", el("b", { text: last === null ? "–" : spec.format(last) }),
        badge ? " " : null, badge,
      ]);
    }));
    for (const r of spec.refs) {
      legend.append(el("span", { className: "entry ref-entry" }, [
        el("span", { className: "swatch dashed" }), r.label,
      ]));
    }
    const caption = figure.querySelector("figcaption");
    figure.replaceChildren(caption, legend, root);
  }

  // ---- start --------------------------------------------------------------------------------
  function start() {
    $("login-form").addEventListener("submit", onLogin);
    $("range-select").addEventListener("change", (event) => {
      state.since = Number(event.target.value);
      refresh();
    });
    $("deployment-select").addEventListener("change", (event) => {
      state.selected = event.target.value;
      refresh();
    });
    let resizing = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizing);
      resizing = setTimeout(() => {
        if (state.last && state.project) renderCharts(state.last);
      }, 150);
    });
    state.since = Number($("range-select").value);
    state.token = initialToken();
    if (!state.token && document.body.dataset.auth !== "open") {
      showLogin(null);
      return;
    }
    refresh();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
