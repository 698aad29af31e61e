/* The dashboard's shared parts: the state of the page, the API, the token, DOM helpers and
 * number formatting. Every screen (overview.js, reviews.js, ...) imports from here.
 *
 * ES modules, loaded from the server itself: the Content-Security-Policy allows scripts from
 * 'self' only, and modules need no build step.
 */

export const TOKEN_KEY = "modelpilot.token";
export const SVG_NS = "http://www.w3.org/2000/svg";
export const PALETTE = ["#2563eb", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
                        "#475569", "#ea580c", "#0d9488", "#9333ea"];

export const state = {
  token: null,
  who: null, // {name, role} of the token (GET /v1/whoami)
  project: null,
  deployments: [],
  selected: null, // the deployment the screens show
  since: 900, // the window of the charts, in seconds
};

export class AuthNeeded extends Error {}

export class HttpError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// ---- DOM ----------------------------------------------------------------------------------
export const $ = (id) => document.getElementById(id);

export function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "className") node.className = value;
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children || []) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
  }
  return node;
}

export function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, String(value));
  }
  return node;
}

export function pill(text, tone, title) {
  return el("span", { className: "pill " + tone, text: text, title: title });
}

/** A short message in a box: the empty, loading and error states of every screen. */
export function note(text, tone) {
  return el("p", { className: "note-box " + (tone || "muted"), text: text });
}

// ---- formatting ---------------------------------------------------------------------------
export function plain(value) {
  if (value === null || value === undefined || !isFinite(value)) return "–";
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString("en-US");
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs === 0) return "0";
  return Number(value.toPrecision(3)).toString();
}

export const FORMATS = {
  ms: (v) => plain(v) + " ms",
  rate: (v) => plain(v) + "/s",
  percent: (v) => (v === null || v === undefined || !isFinite(v) ? "–" : plain(v * 100) + "%"),
  plain: plain,
};

const pad = (n) => String(n).padStart(2, "0");

export function clock(ts, seconds) {
  const d = new Date(ts * 1000);
  const hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
  return seconds ? hm + ":" + pad(d.getSeconds()) : hm;
}

export function dateTime(ts) {
  if (ts === null || ts === undefined) return "–";
  const d = new Date(ts * 1000);
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
    clock(ts, true);
}

export function day(ts) {
  const d = new Date(ts * 1000);
  return pad(d.getMonth() + 1) + "-" + pad(d.getDate());
}

export function ago(ts, now) {
  const s = Math.max(0, Math.round((now === undefined ? Date.now() / 1000 : now) - ts));
  if (s < 90) return s + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return m ? m + "m " + pad(s % 60) + "s" : s + "s";
}

export function meets(metric, value) {
  switch (metric.op) {
    case "<=": return value <= metric.target;
    case ">=": return value >= metric.target;
    case "<": return value < metric.target;
    default: return value > metric.target;
  }
}

/** Any JSON value as short text: what a history entry's unknown field shows. */
export function text(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") return plain(value);
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return value ? "yes" : "no";
  return JSON.stringify(value);
}

// ---- the API ------------------------------------------------------------------------------
export async function api(path, options) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const init = { headers: headers, cache: "no-store" };
  if (options && options.body !== undefined) {
    init.method = options.method || "POST";
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new HttpError(0, "the server is unreachable (" + err.message + ")");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    body = null;
  }
  if (response.status === 401) {
    throw new AuthNeeded((body && body.message) || "the server refused the token");
  }
  if (!response.ok) {
    throw new HttpError(response.status, (body && body.message) || response.statusText, body);
  }
  return body;
}

export function can(role) {
  const who = state.who;
  if (!who) return false;
  return who.role === "admin" || who.role === role;
}

// ---- the token ----------------------------------------------------------------------------
export function initialToken() {
  const params = new URLSearchParams(window.location.search);
  const fromUrl = params.get("token");
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    // Out of the address bar and the history: a token in a shared screenshot or a copied
    // link would be a leaked token.
    params.delete("token");
    const rest = params.toString();
    window.history.replaceState(null, "",
      window.location.pathname + (rest ? "?" + rest : "") + window.location.hash);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setStatus(kind, message) {
  const node = $("status");
  node.dataset.state = kind;
  node.textContent = message;
}

// ---- series -------------------------------------------------------------------------------
/** The series of one metric in a /v1/metrics/series payload. */
export function groups(payload, name) {
  if (!payload) return [];
  return payload.series.filter((s) => s.name === name);
}

/** The newest known value of a series. */
export function latest(group) {
  if (!group) return null;
  for (let i = group.points.length - 1; i >= 0; i--) {
    if (group.points[i].value !== null) return group.points[i].value;
  }
  return null;
}
