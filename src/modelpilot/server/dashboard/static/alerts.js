/* Alerts you can handle: the active ones with who acknowledged them, silences and a stale
 * mark when their data stopped arriving; an admin acknowledges, silences or lifts a silence
 * (POST /v1/alerts/{id}/acknowledge, /silence). Recent resolved alerts below. */
import { $, ago, api, can, clock, dateTime, el, note, pill, plain } from "./core.js";

const SILENCES = [["15 min", 900], ["1 hour", 3600], ["4 hours", 14400], ["24 hours", 86400]];
const chosen = new Map(); // alert id: the silence duration picked, kept across redraws
const TONES = { critical: "red", warning: "amber", info: "blue" };

/** The small marks an active alert carries wherever it is listed. */
export function alertBadges(a, now) {
  const out = [];
  if (a.state === "pending") out.push(pill("pending", "grey", "the condition holds; not firing yet"));
  if (a.stale) {
    out.push(pill("stale: no data for " + ago(a.stale.since, now), "grey stale", a.stale.reason));
  }
  if (a.acknowledged_by) {
    out.push(pill("ack " + a.acknowledged_by, "blue",
                  "acknowledged by " + a.acknowledged_by + " at " + dateTime(a.acknowledged_at)));
  }
  if (a.silenced_until) {
    out.push(pill("silenced until " + clock(a.silenced_until), "grey",
                  "notifications muted by " + a.silenced_by + " until " +
                  dateTime(a.silenced_until)));
  }
  return out.flatMap((p) => [p, " "]);
}

function where(a) {
  return [a.deployment].concat(Object.entries(a.labels || {}).map(([k, v]) => k + "=" + v))
    .filter(Boolean).join(" · ");
}

async function act(path, body, message) {
  const box = $("alerts-message");
  try {
    await api(path, { body: body });
    box.replaceChildren(note(message, "ok-note"));
  } catch (err) {
    box.replaceChildren(note(err.message, "bad"));
  }
  await show({ force: true });
}

function actions(a) {
  if (!can("admin")) return el("span", { className: "muted small", text: "admin token needed" });
  const id = a.id;
  const select = el("select", { "aria-label": "silence " + a.rule + " for",
                                "data-action": "silence-for" },
                    SILENCES.map(([label, seconds]) => el("option", { value: seconds,
                                                                      text: label })));
  select.value = String(chosen.get(id) || 3600);
  select.addEventListener("change", () => chosen.set(id, Number(select.value)));
  return el("div", { className: "alert-actions" }, [
    el("button", {
      type: "button", text: a.acknowledged_by ? "Acknowledged" : "Acknowledge",
      disabled: Boolean(a.acknowledged_by), "data-action": "acknowledge",
      onclick: () => act("/v1/alerts/" + id + "/acknowledge", {},
                         "Alert " + a.rule + " acknowledged."),
    }),
    el("span", { className: "silence" }, [
      select,
      el("button", {
        type: "button", text: "Silence", "data-action": "silence",
        onclick: () => act("/v1/alerts/" + id + "/silence",
                           { duration_s: Number(select.value), reason: "from the dashboard" },
                           "Notifications of " + a.rule + " muted."),
      }),
    ]),
    a.silenced_until ? el("button", {
      type: "button", text: "Lift silence", className: "secondary", "data-action": "unsilence",
      onclick: () => act("/v1/alerts/" + id + "/silence", { duration_s: 0 },
                         "Silence of " + a.rule + " lifted."),
    }) : null,
  ]);
}

function activeTable(active, now) {
  if (!active.length) return note("No active alerts.", "ok-box");
  return el("table", { className: "table", id: "alerts-active" }, [
    el("thead", {}, [el("tr", {}, ["Severity", "Alert", "Value / threshold", "For", "Actions"]
      .map((h) => el("th", { text: h })))]),
    el("tbody", {}, active.map((a) => el("tr", {
      "data-alert": String(a.id), "data-rule": a.rule, "data-deployment": a.deployment,
      "data-stale": a.stale ? "yes" : "no",
    }, [
      el("td", {}, [pill(a.severity, TONES[a.severity] || "blue")]),
      el("td", {}, [
        el("strong", { text: a.rule }), " ", ...alertBadges(a, now),
        el("div", { className: "muted small", text: where(a) }),
        a.annotations && a.annotations.summary
          ? el("div", { className: "small", text: a.annotations.summary }) : null,
        a.stale ? el("div", { className: "small stale-text", text: a.stale.reason }) : null,
      ]),
      el("td", { text: plain(a.value) + " " + (a.comparison || "") + " " + plain(a.threshold) }),
      el("td", { text: ago(a.fired_at || a.started_at, now) }),
      el("td", {}, [actions(a)]),
    ]))),
  ]);
}

function recentTable(recent) {
  if (!recent.length) return note("No resolved alerts yet.");
  return el("table", { className: "table compact" }, [
    el("thead", {}, [el("tr", {}, ["Alert", "Fired", "Resolved", "Last value / threshold"]
      .map((h) => el("th", { text: h })))]),
    el("tbody", {}, recent.slice(0, 20).map((a) => el("tr", {}, [
      el("td", {}, [pill(a.severity, TONES[a.severity] || "blue"), " ",
                    el("strong", { text: a.rule }),
                    el("div", { className: "muted small", text: where(a) })]),
      el("td", { text: dateTime(a.fired_at || a.started_at) }),
      el("td", { text: dateTime(a.resolved_at) }),
      el("td", { text: plain(a.value) + " " + (a.comparison || "") + " " + plain(a.threshold) }),
    ]))),
  ]);
}

/** Show the alerts; a poll while someone works a control here waits (a redraw would take
 * their focus and their choice away), an action redraws at once and gives the focus back. */
export async function show(options) {
  const view = $("view-alerts");
  const focused = document.activeElement;
  const working = focused && $("alerts-body").contains(focused) && focused !== $("alerts-body");
  if (working && !(options && options.force)) return;
  let body;
  try {
    body = await api("/v1/alerts");
  } catch (err) {
    if (err.status === 404 || err.status === 503) {
      $("alerts-body").replaceChildren(note("No alert data: " + err.message));
      return;
    }
    throw err;
  }
  const now = Date.now() / 1000;
  view.dataset.loaded = "yes";
  $("alerts-body").replaceChildren(
    el("h3", { text: "Active" }), el("div", { className: "scroll" }, [
      activeTable(body.active || [], now)]),
    el("h3", { text: "Recently resolved" }), el("div", { className: "scroll" }, [
      recentTable(body.recent || [])]),
  );
  if (working) {
    const row = focused.closest("tr[data-alert]");
    const again = row && $("alerts-body").querySelector(
      'tr[data-alert="' + row.dataset.alert + '"] [data-action="' +
      (focused.dataset.action || "") + '"]');
    if (again) again.focus();
  }
}
