/* Drift in detail: every feature's verdict now (GET /v1/deployments/{name}/drift); pick one
 * to see the reference and current distributions side by side, its statistic over time
 * against its threshold (the drift_score series, the checks that found drift marked), and its
 * importance to the model when the version carries it. */
import { $, FORMATS, api, el, groups, latest, note, pill, plain, state } from "./core.js";
import { drawBars, drawChart, timeDomain } from "./charts.js";

let report = null;
let chosen = null;
let listed = []; // the features in the table: checked now, or as recorded before

function span(seconds) {
  return seconds < 120 ? Math.round(seconds) + " s" : Math.round(seconds / 60) + " min";
}

function importanceBar(value, highest) {
  if (value === null || value === undefined) return el("span", { className: "muted", text: "–" });
  const bar = el("span", { className: "importance" }, [el("span", {})]);
  bar.firstChild.style.width = Math.round((Math.abs(value) / (highest || 1)) * 100) + "%";
  return el("span", { className: "importance-cell" }, [bar, " " + plain(value)]);
}

function verdictOf(f) {
  if (f.recorded) return "recorded check";
  const p = f.p_value === null || f.p_value === undefined ? ""
    : "p = " + plain(f.p_value_adjusted ?? f.p_value) + " (adjusted) vs " + plain(f.threshold);
  return f.threshold_on === "p_value" ? p
    : f.method + " " + plain(f.statistic) + " vs threshold " + plain(f.threshold);
}

function table(features) {
  const highest = Math.max(0, ...features.map((f) => Math.abs(f.importance || 0)));
  return el("table", { className: "table", id: "drift-features" }, [
    el("thead", {}, [el("tr", {}, ["Feature", "Verdict", "Method · statistic", "Threshold",
      // report is the page's module state, set before the table is drawn
      report.importance_metric ? "Importance (share, by " + report.importance_metric + ")"
        : "Importance"].map((h) => el("th", { text: h })))]),
    el("tbody", {}, features.map((f) => el("tr", {
      "data-feature": f.name, className: f.name === chosen ? "selected" : "",
    }, [
      el("td", {}, [el("button", {
        type: "button", className: "link strong", text: f.name, "data-feature": f.name,
        "aria-label": "show the distributions of " + f.name,
        onclick: () => choose(f.name),
      })]),
      el("td", {}, [pill(f.drifted ? "drifted" : "no drift", f.drifted ? "red" : "green")]),
      el("td", { text: f.method + " " + plain(f.statistic) }),
      el("td", { className: "small", text: verdictOf(f) }),
      el("td", {}, [importanceBar(f.importance, highest)]),
    ]))),
  ]);
}

async function detail(feature) {
  const f = listed.find((x) => x.name === feature);
  const box = $("drift-detail");
  if (!f) {
    box.replaceChildren(note("No drift result for " + feature + " in this window."));
    return;
  }
  box.dataset.feature = f.name;
  const windowText = span(report.window_s);
  const since = Math.max(state.since, 3600);
  const query = new URLSearchParams({
    name: "drift_score,drift_detected", deployment: report.deployment,
    labels: "feature=" + f.name, since: String(since), points: "300",
  });
  box.replaceChildren(...[
    el("h3", {}, [f.name + " ", pill(f.drifted ? "drifted" : "no drift",
                                     f.drifted ? "red" : "green")]),
    f.recorded ? el("p", { className: "small", text: "The newest recorded check: statistic " +
      plain(f.statistic) + (f.drifted ? ", drift detected" : ", no drift") + "." }) :
    el("p", { className: "small" }, [
      f.kind + " feature · " + f.method + " = " + plain(f.statistic) +
        (f.p_value !== null && f.p_value !== undefined
          ? " · p = " + plain(f.p_value) + ", adjusted " + plain(f.p_value_adjusted) : "") +
        " · threshold " + plain(f.threshold) + " on the " +
        (f.threshold_on === "p_value" ? "adjusted p-value" : "statistic") +
        " · " + plain(f.n_reference) + " reference and " + plain(f.n_current) + " current values",
      f.importance !== null && f.importance !== undefined
        ? el("span", {}, [" · importance to the model ", el("b", { text: plain(f.importance) }),
                          report.importance_metric
                            ? " (share, by " + report.importance_metric + ")" : ""])
        : el("span", { className: "muted", text: report.importance_known
          ? " · importance: not measured for this feature"
          : " · importance: not recorded for this version" }),
    ]),
    f.note ? el("p", { className: "muted small", text: f.note }) : null,
    el("div", { className: "two" }, [
      el("figure", { className: "chart", id: "chart-distribution" }, [
        el("figcaption", { text: "Reference vs current distribution" })]),
      el("figure", { className: "chart", id: "chart-statistic" }, [
        el("figcaption", { text: f.method + " over time" })]),
    ]),
  ].filter(Boolean));
  if (f.summary) {
    drawBars($("chart-distribution"), f.summary, { drifted: f.drifted, window: windowText });
  } else {
    $("chart-distribution").append(note("The distributions need a current window: " +
                                        report.message + "."));
  }
  const series = await api("/v1/metrics/series?" + query.toString());
  const score = groups(series, "drift_score")[0];
  const detected = groups(series, "drift_detected")[0];
  const flagged = new Set((detected ? detected.points : []).filter((p) => p.value === 1)
    .map((p) => p.ts));
  const points = score ? score.points : [];
  const refs = f.recorded ? [] : f.threshold_on === "statistic"
    ? [{ label: "threshold " + plain(f.threshold), value: f.threshold }]
    : report.effect_size_floor ? [{ label: "effect-size floor " + plain(report.effect_size_floor),
                                    value: report.effect_size_floor }] : [];
  drawChart($("chart-statistic"), {
    domain: timeDomain(series), format: FORMATS.plain, zero: true,
    interval: state.project ? state.project.monitoring.drift_interval_s : 60,
    series: [{ key: "statistic", label: f.method, color: "#2563eb", points: points,
               marks: points.filter((p) => flagged.has(p.ts)) }],
    refs: refs,
    empty: "no drift check recorded in this window yet",
  });
  const chart = $("chart-statistic");
  if (f.recorded) return;
  chart.append(el("p", { className: "muted small", text: f.threshold_on === "p_value"
    ? "A test: it calls drift when the adjusted p-value is below " + plain(f.threshold) +
      " and the effect reaches the floor; red dots mark the checks that found drift."
    : "A distance: drift when the statistic reaches the threshold; red dots mark the checks " +
      "that found drift." }));
}

/** The features of the newest recorded drift checks (their score, whether they drifted). */
async function recorded(name) {
  const query = new URLSearchParams({
    name: "drift_score,drift_detected", deployment: name,
    since: String(Math.max(state.since, 86400)), points: "300",
  });
  const series = await api("/v1/metrics/series?" + query.toString());
  const detected = new Map(groups(series, "drift_detected").map(
    (g) => [g.labels.feature, latest(g) === 1]));
  return groups(series, "drift_score").map((g) => ({
    name: g.labels.feature, method: "statistic", statistic: latest(g),
    drifted: Boolean(detected.get(g.labels.feature)), threshold: null, threshold_on: null,
    importance: null, summary: null, recorded: true,
  }));
}

function choose(name) {
  window.location.hash = "#/drift/" + encodeURIComponent(name);
}

export async function show(parts) {
  const name = state.selected;
  const box = $("drift-body");
  if (!name) {
    box.replaceChildren(note("No deployment is loaded yet."));
    return;
  }
  report = await api("/v1/deployments/" + encodeURIComponent(name) + "/drift");
  chosen = parts[0] ? decodeURIComponent(parts[0]) : null;
  // The predictions' series are labelled "(prediction)", as in the overview's drift chart.
  const prediction = report.prediction ? [{ ...report.prediction, name: "(prediction)" }] : [];
  let features = report.features.concat(prediction);
  $("drift-title").textContent = "Drift of " + name + " · v" + report.version + " · last " +
    span(report.window_s) + ", " + plain(report.rows) + " predictions";
  const intro = [];
  if (!features.length) {
    // No current window to compare: the recorded checks still tell the story so far.
    features = await recorded(name);
    intro.push(note("No drift check now: " + report.message + "." + (features.length
      ? " Below: the checks recorded before." : ""), "muted"));
  }
  listed = features;
  if (!features.length) {
    box.replaceChildren(...intro);
    $("drift-detail").replaceChildren();
    $("view-drift").dataset.loaded = "yes";
    return;
  }
  box.replaceChildren(...intro, el("div", { className: "scroll" }, [table(features)]));
  $("view-drift").dataset.loaded = "yes";
  if (chosen) await detail(chosen);
  else $("drift-detail").replaceChildren(note("Pick a feature to see its distributions."));
}
