/* The review queue: the predictions waiting for a person, oldest first, decided with the
 * keyboard. A decision goes through POST /v1/reviews/{id}/decision, which makes it the
 * prediction's label exactly as the API always has (and answers 409 to a second decision).
 *
 * Keys (not while typing an answer): A accept the suggestion · E type the answer ·
 * 1-9 pick a class · S skip. In the answer field: Enter decides, Escape goes back.
 */
import { $, FORMATS, api, ago, dateTime, el, note, pill, plain, state } from "./core.js";
import { drawChart } from "./charts.js";

const review = {
  items: [], // pending items, oldest first
  shown: null, // the item on the card: what a key decides, whatever the queue has become
  answer: { kind: "number", classes: [] }, // what a decision is (GET /v1/reviews)
  stats: null,
  skipped: new Set(),
  decided: 0,
  busy: false,
};

/** The decision a reviewer typed, as the value to send; or throws an Error saying what is
 * wrong. The task's checks of a value happen on the server (POST .../decision answers 422
 * with the reason); this only spares a round trip for a value that cannot be right. */
export function decisionOf(raw, answer, suggestion) {
  const typed = String(raw).trim();
  if (!typed) throw new Error("type an answer first, or press A to accept the suggestion");
  if (answer.kind === "number") {
    const value = Number(typed.replace(/[,_ ]/g, ""));
    if (!Number.isFinite(value)) {
      throw new Error("this model's answer is a number (for example 312000); got " +
                      JSON.stringify(typed));
    }
    return value;
  }
  if (answer.classes.length && !answer.classes.includes(typed)) {
    throw new Error("pick one of the classes: " + answer.classes.join(", ") + "; got " +
                    JSON.stringify(typed));
  }
  // The label has the type of the model's answers: a class 1 stays the number 1.
  return typeof suggestion === "number" && typed !== "" && Number.isFinite(Number(typed))
    ? Number(typed) : typed;
}

function current() {
  return review.items.find((item) => !review.skipped.has(item.id)) || null;
}

function say(text, tone) {
  $("review-message").replaceChildren(text ? note(text, tone) : "");
}

async function loadQueue() {
  const body = await api("/v1/reviews?status=pending&limit=500");
  const items = body.reviews || [];
  // The card on screen stays while the person looks at it, even when someone else decided it
  // meanwhile: acting on it then says so (the API's 409) instead of the card changing under
  // their hands and the key deciding the next one.
  const shown = review.shown;
  if (shown && !review.skipped.has(shown.id) && !items.some((i) => i.id === shown.id)) {
    items.unshift(shown);
  }
  review.items = items;
  review.answer = body.answer || review.answer;
  review.stats = body.stats || null;
}

async function loadAgreement() {
  return api("/v1/reviews/agreement?since=604800&bucket=3600");
}

export async function show() {
  const [, agreement] = await Promise.all([loadQueue(), loadAgreement()]);
  renderCard();
  renderSide(agreement);
  $("view-reviews").dataset.loaded = "yes";
}

function formatValue(value) {
  if (typeof value === "number") return plain(value);
  return value === null || value === undefined ? "–" : String(value);
}

function answerField(item) {
  const answer = review.answer;
  if (answer.kind === "class" && answer.classes.length) {
    const options = [el("option", { value: "", text: "choose…" })].concat(
      answer.classes.map((c, i) => el("option", { value: c, text: (i + 1) + ". " + c })));
    return el("select", { id: "review-answer", "aria-describedby": "review-keys" }, options);
  }
  return el("input", {
    id: "review-answer", type: "text", inputmode: answer.kind === "number" ? "decimal" : "text",
    autocomplete: "off", "aria-describedby": "review-keys",
    placeholder: item.suggestion !== null && item.suggestion !== undefined
      ? "e.g. " + formatValue(item.suggestion) : "your answer",
  });
}

function renderProgress() {
  const pending = review.items.length;
  const skipped = review.items.filter((i) => review.skipped.has(i.id)).length;
  const stats = review.stats;
  $("review-progress").textContent = pending
    ? pending + " waiting" + (stats ? " · oldest " + ago(Date.now() / 1000 -
      stats.oldest_age_s) : "") + (skipped ? " · " + skipped + " skipped" : "") +
      (review.decided ? " · " + review.decided + " decided by you" : "")
    : "Nothing waits for a person." + (review.decided ? " You decided " + review.decided + "." : "");
  return skipped;
}

function renderCard() {
  const card = $("review-card");
  const item = current();
  review.shown = item;
  const skipped = renderProgress();
  if (!item) {
    card.dataset.review = "";
    card.replaceChildren(skipped
      ? el("div", {}, [note("You skipped every waiting prediction."),
                       el("button", { type: "button", text: "Start over",
                                      onclick: () => { review.skipped.clear(); renderCard(); } })])
      : note("The queue is empty.", "ok-box"));
    return;
  }
  const visible = item.suggestion !== null && item.suggestion !== undefined;
  const inputs = Object.entries(item.inputs || {});
  card.dataset.review = item.id;
  card.dataset.prediction = item.prediction_id;
  card.replaceChildren(
    el("header", { className: "review-head" }, [
      el("div", {}, [
        el("strong", { text: item.deployment }), " ",
        el("span", { className: "muted", text: "v" + item.version }), " ",
        pill(item.degree, item.degree === "partial" ? "amber" : "blue", "degree of automation"),
      ]),
      el("div", { className: "muted small", text: "waiting " + ago(item.created_at) +
                                                  " · " + dateTime(item.created_at) }),
    ]),
    el("p", { className: "why", id: "review-why" }, [el("b", { text: "Why a person: " }),
                                                     item.why || "–"]),
    el("div", { className: "review-body" }, [
      el("table", { className: "table compact inputs", "aria-label": "inputs" }, [
        el("tbody", {}, inputs.map(([k, v]) => el("tr", {}, [
          el("th", { scope: "row", text: k }), el("td", { text: formatValue(v) }),
        ]))),
      ]),
      el("div", { className: "suggestion" }, visible ? [
        el("div", { className: "tile-label", text: "The model suggests" }),
        el("div", { className: "suggested", id: "review-suggestion",
                    text: formatValue(item.suggestion) }),
        confidenceBar(item.confidence),
      ] : [
        el("div", { className: "tile-label", text: "The model's answer" }),
        el("p", { className: "muted", text: "hidden: at " + item.degree +
                  " automation a person decides unaided" }),
      ]),
    ]),
    el("form", { className: "review-form", id: "review-form", onsubmit: onSubmit }, [
      el("label", { for: "review-answer", text: "Your answer" }),
      answerField(item),
      el("div", { className: "review-buttons" }, [
        el("button", { type: "submit", text: "Decide", "data-key": "Enter" }),
        visible ? el("button", { type: "button", text: "Accept suggestion (A)",
                                 id: "review-accept", onclick: accept }) : null,
        el("button", { type: "button", text: "Skip (S)", className: "secondary",
                       id: "review-skip", onclick: skip }),
      ]),
    ]),
    el("p", { className: "muted small keys", id: "review-keys",
              text: "Keys: A accept · E type an answer · Enter decide · " +
                    (review.answer.kind === "class" ? "1–9 pick a class · " : "") +
                    "S skip · Esc back to the card" }),
  );
}

function confidenceBar(confidence) {
  if (confidence === null || confidence === undefined) return null;
  const bar = el("div", { className: "meter", role: "meter", "aria-valuemin": 0,
                          "aria-valuemax": 1, "aria-valuenow": confidence,
                          "aria-label": "confidence" }, [el("span", {})]);
  bar.firstChild.style.width = Math.round(Math.max(0, Math.min(1, confidence)) * 100) + "%";
  return el("div", { className: "confidence" }, [bar, el("span", {
    className: "small", text: "confidence " + plain(confidence),
  })]);
}

async function decide(value) {
  const item = review.shown;
  if (!item || review.busy) return;
  review.busy = true;
  try {
    const decided = await api("/v1/reviews/" + encodeURIComponent(item.id) + "/decision",
                              { body: { value: value } });
    review.decided += 1;
    const agreed = decided.agreed === true ? " (agrees with the model)"
      : decided.agreed === false ? " (differs from the model)" : "";
    say("Decided " + formatValue(value) + agreed + ": it is now the label of prediction " +
        item.prediction_id + ".", "ok-note");
    review.items = review.items.filter((i) => i.id !== item.id);
  } catch (err) {
    say(err.message, "bad");
    // Not logged yet (written within a second): the item stays for another try. Decided
    // elsewhere, or expired: the first decision stands; move on.
    if (err.status !== 409 || /not in the prediction log yet/.test(err.message)) return;
    review.items = review.items.filter((i) => i.id !== item.id);
  } finally {
    review.busy = false;
  }
  renderCard();
  focusCard();
  refreshSide();
}

function accept() {
  const item = review.shown;
  if (!item) return;
  if (item.suggestion === null || item.suggestion === undefined) {
    say("There is no suggestion to accept at " + item.degree + " automation: type the answer.",
        "bad");
    return;
  }
  decide(item.suggestion);
}

function skip() {
  const item = review.shown;
  if (!item) return;
  review.skipped.add(item.id);
  say("Skipped: it waits for someone else (or for you at the end of the queue).", "muted");
  renderCard();
  focusCard();
}

function onSubmit(event) {
  event.preventDefault();
  const item = review.shown;
  if (!item) return;
  let value;
  try {
    value = decisionOf($("review-answer").value, review.answer, item.suggestion);
  } catch (err) {
    say(err.message, "bad");
    $("review-answer").focus();
    return;
  }
  decide(value);
}

function focusCard() {
  const card = $("review-card");
  if (card && !$("view-reviews").hidden) card.focus({ preventScroll: true });
}

/** Keyboard decisions, while the reviews screen is shown. */
export function onKey(event) {
  if ($("view-reviews").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  const typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" ||
                            target.tagName === "SELECT");
  if (typing) {
    if (event.key === "Escape") {
      event.preventDefault();
      focusCard();
    }
    return; // Enter submits the form by itself
  }
  const key = event.key.toLowerCase();
  if (key === "a") {
    event.preventDefault();
    accept();
  } else if (key === "s") {
    event.preventDefault();
    skip();
  } else if (key === "e") {
    event.preventDefault();
    const field = $("review-answer");
    if (field) field.focus();
  } else if (/^[1-9]$/.test(key) && review.answer.kind === "class") {
    const choice = review.answer.classes[Number(key) - 1];
    if (choice !== undefined) {
      event.preventDefault();
      const item = review.shown;
      decide(decisionOf(choice, review.answer, item ? item.suggestion : null));
    }
  }
}

export function enter() {
  focusCard();
}

// ---- agreement ----------------------------------------------------------------------------
async function refreshSide() {
  try {
    const [, agreement] = await Promise.all([loadQueue(), loadAgreement()]);
    renderSide(agreement);
    // The card on screen stays as it is (the reviewer may be typing): only an empty one
    // shows what arrived meanwhile.
    if ($("review-card").dataset.review) renderProgress();
    else renderCard();
  } catch (err) {
    say(err.message, "bad");
  }
}

function renderSide(agreement) {
  const stats = review.stats || { agreement: {}, pending: 0 };
  const rates = Object.entries(stats.agreement || {});
  $("review-stats").replaceChildren(rates.length
    ? el("table", { className: "table compact" }, [
      el("thead", {}, [el("tr", {}, ["Degree", "Agreement", "Decisions"]
        .map((h) => el("th", { text: h })))]),
      el("tbody", {}, rates.map(([degree, item]) => el("tr", {}, [
        el("td", { text: degree }), el("td", { text: FORMATS.percent(item.rate) }),
        el("td", { text: String(item.cases) }),
      ]))),
    ])
    : note("No decision with a suggestion yet."));
  const buckets = (agreement && agreement.buckets) || [];
  const now = Date.now() / 1000;
  const points = buckets.map((b) => ({ ts: b.start + agreement.bucket_s / 2, value: b.rate }));
  const start = buckets.length ? Math.min(buckets[0].start, now - 3600) : now - 86400;
  drawChart($("chart-agreement"), {
    domain: [start, now], format: FORMATS.percent, zero: true, range: [0, 1], interval: 3600,
    series: [{ key: "agreement", label: "agreed with the model, per hour", color: "#2563eb",
               points: points }],
    refs: [],
    empty: "no decisions in the last 7 days",
  });
}
