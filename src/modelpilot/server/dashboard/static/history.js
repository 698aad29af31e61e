/* What happened to the selected deployment, newest first (GET /v1/deployments/{name}/history):
 * rollouts with every step, its weight and gate results; alerts fired and resolved; automation
 * changes and retraining runs; every audit entry with who (or what) did it.
 *
 * A rollout step is shown as its strategy wrote it: the fields this page knows (time, step,
 * weight, gates, event) in words, and every other field generically, so a field added later
 * (say, which evidence decided a gate) shows up without a change here.
 */
import { $, api, dateTime, el, note, pill, plain, state, text } from "./core.js";
import { gateChips } from "./overview.js";

const KINDS = [["all", "Everything"], ["rollout", "Rollouts"], ["alert", "Alerts"],
               ["automation", "Automation"], ["retrain", "Retraining"], ["audit", "Audit log"]];
const KNOWN_STEP_FIELDS = new Set(["at", "step", "weight", "gates", "event"]);
let filter = "all";
let last = null;

/** A flat object as one line ("rollout 1 · version 3 · reason ..."); nested ones as a list. */
function details(value) {
  const flat = Object.values(value).every((v) => v === null || typeof v !== "object" ||
    (!Array.isArray(v) && Object.values(v).every((x) => x === null || typeof x !== "object")));
  if (!flat) return generic(value);
  return el("div", { className: "inline-facts small" }, Object.entries(value).map(([k, v]) =>
    el("span", {}, [el("span", { className: "muted", text: k + " " }),
                    v !== null && typeof v === "object"
                      ? Object.entries(v).map(([a, b]) => a + "=" + text(b)).join(", ")
                      : text(v)])));
}

function generic(value) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    return el("dl", { className: "facts nested" }, Object.entries(value).flatMap(([k, v]) => [
      el("dt", { text: k }), el("dd", {}, [generic(v)]),
    ]));
  }
  if (Array.isArray(value) && value.some((v) => v !== null && typeof v === "object")) {
    return el("ol", { className: "plain-list" }, value.map((v) => el("li", {}, [generic(v)])));
  }
  return el("span", { text: text(value) });
}

/** One entry of a rollout's history. */
export function stepItem(step) {
  const head = [el("span", { className: "when", text: dateTime(step.at) })];
  if (step.event) head.push(" ", pill(step.event, "blue"));
  if (step.step !== undefined) head.push(" step " + (Number(step.step) + 1));
  if (step.weight !== undefined) head.push(" at " + Number(step.weight) + "% of requests");
  const extra = Object.entries(step).filter(([k]) => !KNOWN_STEP_FIELDS.has(k));
  return el("li", { className: "step", "data-step": step.step ?? "" }, [
    el("div", {}, head),
    step.gates ? el("div", { className: "gates" }, gateChips(step.gates)) : null,
    extra.length ? el("dl", { className: "facts extra" }, extra.flatMap(([k, v]) => [
      el("dt", { text: k }), el("dd", { "data-field": k }, [generic(v)]),
    ])) : null,
  ]);
}

function rolloutEntry(e) {
  const tone = e.status === "promoted" ? "green"
    : ["rolled_back", "failed", "aborted"].includes(e.status) ? "red" : "blue";
  const steps = e.steps || [];
  return [
    el("div", {}, [
      el("strong", { text: e.strategy + " rollout v" + (e.primary_version ?? "–") + " → v" +
                           e.candidate_version }), " ", pill(e.status, tone),
      el("span", { className: "muted small", text: " by " + e.created_by +
        (e.finished_at ? " · ended " + dateTime(e.finished_at) : "") }),
    ]),
    e.reason ? el("div", { className: "small", text: e.reason }) : null,
    steps.length ? el("details", { open: steps.length <= 6 }, [
      el("summary", { text: steps.length + " step(s)" }),
      el("ol", { className: "steps", reversed: true }, steps.slice().reverse().map(stepItem)),
    ]) : el("div", { className: "muted small", text: "no step yet" }),
  ];
}

function alertEntry(e) {
  const tone = e.severity === "critical" ? "red" : e.severity === "warning" ? "amber" : "blue";
  const labels = Object.entries(e.labels || {}).map(([k, v]) => k + "=" + v).join(", ");
  return [
    el("div", {}, [
      pill(e.severity, tone), " ", el("strong", { text: "alert " + e.rule }), " ",
      pill(e.state, e.state === "resolved" ? "green" : tone),
      labels ? el("span", { className: "muted small", text: " " + labels }) : null,
    ]),
    el("div", { className: "small", text: (e.metric || "") + " " + plain(e.value) + " " +
      (e.comparison || "") + " " + plain(e.threshold) +
      (e.resolved_at ? " · resolved " + dateTime(e.resolved_at) : " · still open") +
      (e.acknowledged_by ? " · acknowledged by " + e.acknowledged_by : "") }),
    Object.keys(e.actions || {}).length ? generic(e.actions) : null,
  ];
}

function retrainEntry(e) {
  const tone = e.status === "succeeded" || e.status === "registered" ? "green"
    : e.status === "failed" ? "red" : "blue";
  return [
    el("div", {}, [el("strong", { text: "retraining run " + e.id }), " ", pill(e.status, tone),
                   el("span", { className: "muted small", text: " started by " + e.started_by +
                                                              " (" + e.trigger + ")" })]),
    e.version ? el("div", { className: "small", text: "registered v" + e.version }) : null,
    Object.keys(e.details || {}).length ? el("details", {}, [
      el("summary", { text: "details" }), generic(e.details)]) : null,
  ];
}

function auditEntry(e) {
  return [
    el("div", {}, [el("strong", { text: e.action }), " ",
                   el("span", { className: "muted", text: e.target })]),
    Object.keys(e.details || {}).length ? details(e.details) : null,
  ];
}

function kindOf(e) {
  if (e.kind === "audit" && /^(automation|review)\./.test(e.action)) return "automation";
  return e.kind;
}

function render() {
  const list = $("history-list");
  if (!last) return;
  const shown = last.entries.filter((e) => filter === "all" || kindOf(e) === filter);
  if (!shown.length) {
    list.replaceChildren(note("Nothing in the last 7 days" +
                              (filter === "all" ? "." : " of this kind.")));
    return;
  }
  list.replaceChildren(...shown.map((e) => {
    const body = e.kind === "rollout" ? rolloutEntry(e) : e.kind === "alert" ? alertEntry(e)
      : e.kind === "retrain" ? retrainEntry(e) : auditEntry(e);
    const id = e.kind === "rollout" ? "rollout-" + e.id : null;
    return el("li", { className: "entry kind-" + kindOf(e), id: id, "data-kind": e.kind,
                      tabindex: id ? -1 : null }, [
      el("div", { className: "when" }, [dateTime(e.at),
        e.by ? el("div", { className: "muted small", text: e.by }) : null]),
      el("div", { className: "what" }, body),
    ]);
  }));
}

export async function show(parts) {
  const [deployment, anchor] = parts;
  const name = deployment || state.selected;
  if (!name) {
    $("history-list").replaceChildren(note("No deployment is loaded yet."));
    return;
  }
  last = await api("/v1/deployments/" + encodeURIComponent(name) + "/history?since=604800");
  $("history-title").textContent = "History of " + name;
  const filters = $("history-filters");
  if (!filters.childElementCount) {
    filters.append(...KINDS.map(([kind, label]) => el("button", {
      type: "button", text: label, "data-kind": kind, "aria-pressed": String(kind === filter),
      onclick: (event) => {
        filter = kind;
        for (const b of filters.children) b.setAttribute("aria-pressed", String(b === event.target));
        render();
      },
    })));
  }
  render();
  $("view-history").dataset.loaded = "yes";
  if (anchor) {
    const target = $(anchor);
    if (target) {
      target.classList.add("highlight");
      for (const details of target.querySelectorAll("details")) details.open = true;
      target.scrollIntoView({ block: "nearest" });
      target.focus({ preventScroll: true });
    }
  }
}
