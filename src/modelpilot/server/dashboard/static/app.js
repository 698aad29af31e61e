/* modelpilot dashboard: one page, six screens (overview, reviews, registry, history, drift,
 * alerts), chosen by the address's #fragment so every screen has a link and the browser's
 * back button works.
 *
 * Hand-written on purpose: no library, no build step, nothing fetched from the internet, so
 * the page works on a server without outside access. Every request it makes is one the
 * server can answer for this token's role (GET /v1/whoami first; a review token sees only the
 * review queue), so a healthy dashboard leaves the browser console empty.
 */
import {
  $, AuthNeeded, TOKEN_KEY, api, can, clock, el, initialToken, note, setStatus, state,
} from "./core.js";
import * as overview from "./overview.js";
import * as reviews from "./reviews.js";
import * as registry from "./registry.js";
import * as history from "./history.js";
import * as drift from "./drift.js";
import * as alerts from "./alerts.js";

const POLL_MS = 5000;
const WINDOW_KEY = "modelpilot.window";
const SLOW_POLL_MS = 30000; // windows of days: the data moves slowly, the queries cost more

// Each screen: who may see it, how to show it, and whether it follows the server live.
const SCREENS = {
  overview: { role: "predict", live: true },
  reviews: { role: "review", live: false },
  registry: { role: "predict", live: false },
  history: { role: "predict", live: false },
  drift: { role: "predict", live: false },
  alerts: { role: "predict", live: true },
};

let timer = null;
let generation = 0;
let painted = false;

function route() {
  const raw = window.location.hash.replace(/^#\/?/, "");
  const [view, ...parts] = raw.split("/").filter(Boolean).map(decodeURIComponent);
  const fallback = can("predict") ? "overview" : "reviews";
  const chosen = SCREENS[view] && can(SCREENS[view].role) ? view : fallback;
  return { view: chosen, parts: chosen === view ? parts : [] };
}

function showNav() {
  for (const link of document.querySelectorAll("#nav a")) {
    const view = link.dataset.view;
    link.hidden = !can(SCREENS[view].role);
  }
  // The deployment and the window only matter to the screens about deployments.
  $("controls").hidden = !can("predict");
  const who = state.who;
  $("who").textContent = who ? who.name + " (" + who.role + ")" : "";
}

async function boot() {
  state.who = await api("/v1/whoami");
  showNav();
  if (can("predict")) {
    if (!state.project) {
      state.project = await api("/v1/project");
      const p = state.project;
      $("project").textContent = p.project + " · " + p.task + " · target " + p.target;
      document.title = "modelpilot · " + p.project;
    }
    const listing = await api("/v1/deployments");
    state.deployments = listing.deployments || [];
    renderSelect();
  } else {
    $("project").textContent = "review queue";
    document.title = "modelpilot · reviews";
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

async function showScreen(view, parts) {
  if (view === "overview") {
    const data = await overview.load();
    const drawn = overview.render(data);
    if (!painted && drawn >= 0) {
      painted = true;
      // For benchmarks/dashboard_paint.py: when the charts first held data, and how much.
      performance.mark("modelpilot:charts-drawn");
      document.body.dataset.pointsDrawn = String(drawn);
    }
  } else if (view === "reviews") await reviews.show();
  else if (view === "registry") await registry.show(parts);
  else if (view === "history") await history.show(parts);
  else if (view === "drift") await drift.show(parts);
  else if (view === "alerts") await alerts.show();
}

/** Show the screen the address names (again), then poll it while it is a live one. */
async function refresh() {
  clearTimeout(timer);
  const mine = ++generation;
  try {
    if (!state.who) await boot();
    else if (can("predict") && SCREENS[route().view].live) {
      state.deployments = (await api("/v1/deployments")).deployments || [];
      renderSelect();
    }
    const { view, parts } = route();
    for (const section of document.querySelectorAll("main > section[data-view]")) {
      section.hidden = section.dataset.view !== view;
    }
    for (const link of document.querySelectorAll("#nav a")) {
      if (link.dataset.view === view) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    $("login").hidden = true;
    $("dashboard").hidden = false;
    await showScreen(view, parts);
    if (mine !== generation) return; // a newer refresh has started
    setStatus("ok", (SCREENS[view].live ? "live · updated " : "loaded ") +
              clock(Date.now() / 1000, true));
    if (view === "reviews") reviews.enter();
  } catch (err) {
    if (err instanceof AuthNeeded) {
      sessionStorage.removeItem(TOKEN_KEY);
      state.token = null;
      state.who = null;
      showLogin("The server refused the token: " + err.message);
      return;
    }
    if (err.status === 403) {
      setStatus("error", "not allowed for this token");
      const { view } = route();
      const body = document.querySelector('section[data-view="' + view + '"] .view-body');
      if (body) body.replaceChildren(note(err.message, "bad"));
      return;
    }
    setStatus("error", err.message + " · retrying");
  }
  if (mine === generation && SCREENS[route().view].live) {
    timer = setTimeout(refresh, state.since >= 7 * 86400 ? SLOW_POLL_MS : POLL_MS);
  }
}

function showLogin(reason) {
  clearTimeout(timer);
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
  state.who = null;
  $("token-input").value = "";
  $("login").hidden = true;
  refresh();
}

function start() {
  $("login-form").addEventListener("submit", onLogin);
  $("switch-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    state.who = null;
    showLogin("Enter another token: predict, review or admin.");
  });
  $("range-select").addEventListener("change", (event) => {
    state.since = Number(event.target.value);
    sessionStorage.setItem(WINDOW_KEY, event.target.value); // kept across a reload
    refresh();
  });
  $("deployment-select").addEventListener("change", (event) => {
    state.selected = event.target.value;
    refresh();
  });
  for (const button of document.querySelectorAll("[data-refresh]")) {
    button.addEventListener("click", refresh);
  }
  window.addEventListener("hashchange", refresh);
  document.addEventListener("keydown", reviews.onKey);
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      if (route().view === "overview") overview.redraw();
    }, 150);
  });
  const kept = sessionStorage.getItem(WINDOW_KEY);
  if (kept && $("range-select").querySelector('option[value="' + kept + '"]')) {
    $("range-select").value = kept;
  }
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
