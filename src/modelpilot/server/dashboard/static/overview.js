/* The overview: tiles, deployments with their traffic split and rollout, active alerts, and
 * charts over time of latency, throughput, errors, drift and the key metrics. */
import {
  $, AuthNeeded, FORMATS, PALETTE, ago, api, duration, el, groups, latest, meets, pill, plain, state,
} from "./core.js";
import { drawChart, timeDomain } from "./charts.js";
import { alertBadges } from "./alerts.js";

const SERIES_NAMES = ["latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "request_rate",
                      "error_rate", "client_error_rate", "drift_score", "drift_detected",
                      "key_metric"];
// Points per series: a chart is a few hundred pixels wide.
const POINTS = 300;

let last = null; // the newest series payload, redrawn on resize

export async function load() {
  const [statuses, alerts, series, edge] = await Promise.all([
    loadStatuses(), loadAlerts(), loadSeries(), loadEdge(),
  ]);
  return { statuses, alerts, series, edge };
}

export function render(data) {
  last = data.series;
  renderDeployments(data.statuses);
  renderAlerts(data.alerts, data.series ? data.series.now : Date.now() / 1000);
  const drawn = renderCharts(data.series);
  renderTiles(data.series, data.alerts);
  renderEdge(data.edge, data.series ? data.series.now : Date.now() / 1000);
  return drawn;
}

export function redraw() {
  if (last && state.project) renderCharts(last);
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

export async function loadAlerts() {
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
    points: String(POINTS),
  });
  return api("/v1/metrics/series?" + query.toString());
}

// ---- edge devices (docs/edge.md) ------------------------------------------------------------
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
  const select = () => {
    $("deployment-select").value = d.name;
    $("deployment-select").dispatchEvent(new Event("change"));
  };
  const row = el("tr", {
    className: d.name === state.selected ? "selected" : "",
    "data-deployment": d.name,
    title: "show this deployment's charts",
    onclick: select,
  });
  const name = el("td", {}, [
    el("button", { className: "link strong", type: "button", text: d.name,
                   "aria-label": "show the charts of " + d.name }),
    " ", el("span", { className: "muted", text: "@" + d.alias }),
  ]);
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
    const recent = (status.recent || [])[0];
    if (!recent) return [el("span", { className: "muted", text: "none" })];
    return [el("span", {
      className: "muted",
      text: "last: " + recent.strategy + " v" + recent.candidate_version + " " + recent.status,
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

export function gateChips(rolloutOrGates) {
  const gates = Array.isArray(rolloutOrGates) ? rolloutOrGates
    : (rolloutOrGates && rolloutOrGates.gates) || [];
  if (!gates.length) {
    return [el("span", { className: "muted", text: rolloutOrGates ? "no analysis yet" : "–" })];
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
                                  text: recent.length + " past alert(s) recently" }));
    return;
  }
  box.dataset.state = "active";
  const tones = { critical: "red", warning: "amber" };
  const rows = active.map((a) => {
    const where = [a.deployment].concat(
      Object.entries(a.labels || {}).map(([k, v]) => k + "=" + v)).filter(Boolean);
    return el("tr", { "data-rule": a.rule, "data-state": a.state,
                      "data-deployment": a.deployment, "data-stale": a.stale ? "yes" : "no" }, [
      el("td", {}, [pill(a.severity || "alert", tones[a.severity] || "blue")]),
      el("td", {}, [
        el("strong", { text: a.rule }), " ", ...alertBadges(a, now),
        where.length ? el("div", { className: "muted small", text: where.join(" · ") }) : null,
      ]),
      el("td", { text: plain(a.value) + " / " + plain(a.threshold) }),
      el("td", { text: ago(a.fired_at || a.started_at, now) }),
    ]);
  });
  box.replaceChildren(el("div", { className: "scroll" }, [el("table", { className: "table compact" }, [
    el("thead", {}, [el("tr", {}, [el("th", { text: "Severity" }), el("th", { text: "Rule" }),
                                   el("th", { text: "Value / threshold" }),
                                   el("th", { text: "For" })])]),
    el("tbody", {}, rows),
  ])]));
}

// ---- tiles --------------------------------------------------------------------------------
function tile(label, value, tone, noteText) {
  return el("div", { className: "tile " + tone, "data-tile": label }, [
    el("div", { className: "tile-label", text: label }),
    el("div", { className: "tile-value", text: value }),
    el("div", { className: "tile-note", text: noteText || "", title: noteText || null }),
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
  const stale = alerts && alerts.active ? alerts.active.filter((a) => a.stale).length : 0;
  tiles.push(tile("Alerts", active === null ? "–" : String(active),
                  active === null ? "grey" : active ? "bad" : "good",
                  active === null ? "no alert data" : active
                    ? "active" + (stale ? ", " + stale + " stale" : "") : "none active"));
  $("tiles").replaceChildren(...tiles);
}

// ---- charts -------------------------------------------------------------------------------
function renderCharts(payload) {
  // No deployment loaded yet: empty charts that say so, not a blank page.
  if (!payload) payload = { now: Date.now() / 1000, since: state.since, series: [] };
  ensureKeyMetricCharts();
  const slo = state.project.service_objectives;
  const domain = timeDomain(payload);
  const line = (name, label, color) => {
    const group = groups(payload, name)[0];
    return { key: name, label: label, color: color, points: group ? group.points : [] };
  };
  let drawn = 0;
  drawn += drawChart($("chart-latency"), {
    domain: domain, format: FORMATS.ms, zero: true,
    series: [line("latency_p50_ms", "p50", PALETTE[0]),
             line("latency_p95_ms", "p95", PALETTE[1]),
             line("latency_p99_ms", "p99", PALETTE[2])],
    refs: [{ label: "p99 objective", value: slo.latency_p99_ms }],
    empty: "no requests in this window",
  });
  drawn += drawChart($("chart-throughput"), {
    domain: domain, format: FORMATS.rate, zero: true,
    series: [line("request_rate", "requests/s", PALETTE[0])],
    refs: [],
    empty: "no measurements yet",
  });
  drawn += drawChart($("chart-errors"), {
    domain: domain, format: FORMATS.percent, zero: true,
    series: [line("error_rate", "server errors", "#dc2626"),
             line("client_error_rate", "rejected inputs (4xx)", PALETTE[1])],
    refs: [{ label: "error objective", value: slo.error_rate }],
    empty: "no measurements yet",
  });
  const detected = new Map(groups(payload, "drift_detected").map(
    (g) => [g.labels.feature, latest(g) === 1]));
  drawn += drawChart($("chart-drift"), {
    domain: domain, format: FORMATS.plain, zero: true,
    interval: state.project.monitoring.drift_interval_s,
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
    drawn += drawChart($("chart-key-" + metric.name), {
      domain: domain, format: FORMATS.plain, zero: false,
      series: [{
        key: "key:" + metric.name, label: metric.name, color: PALETTE[0],
        points: group ? group.points : [],
        badge: value === null ? null : meets(metric, value) ? "meets target" : "misses target",
        good: value !== null && meets(metric, value),
      }],
      refs: [{ label: "target " + metric.op + " " + plain(metric.target), value: metric.target }],
      empty: "no labels yet: send them with POST /v1/feedback",
    });
  }
  const none = $("chart-key-none");
  if (none && !none.querySelector(".note")) {
    none.append(el("p", { className: "note muted",
                          text: "The project file declares no key metrics." }));
  }
  $("charts").dataset.points = String(drawn);
  return drawn;
}

function ensureKeyMetricCharts() {
  const p = state.project;
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
