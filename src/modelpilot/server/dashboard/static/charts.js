/* Inline SVG charts: lines over time (with dashed reference lines and marked points) and
 * paired bars (a reference distribution beside the current one). Hand-written: a chart
 * library would be the largest file of the page and one more thing fetched or vendored.
 */
import { el, latest, svg, pill, clock, day, state } from "./core.js";

const CHART_HEIGHT = 190;
const MARGIN = { top: 10, right: 14, bottom: 24, left: 58 };

export function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

export function timeDomain(payload) {
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

// The time between two points beyond which the line breaks: no measurement (no requests,
// a stopped server) is a gap, not a straight line. A busy server measures less often than
// monitoring.interval_s, and a long window averages points into buckets, so the points' own
// spacing counts too.
function gapOf(points, interval, span) {
  const steps = [];
  for (let i = 1; i < points.length; i++) steps.push(points[i].ts - points[i - 1].ts);
  steps.sort((a, b) => a - b);
  const median = steps.length ? steps[Math.floor(steps.length / 2)] : 0;
  return Math.max(3.5 * interval, (2.5 * span) / 300, 3 * median);
}

/** The width a chart may use: its card's, less the card's padding (the SVG was drawn as
 * wide as the card with its padding, and stuck out of it on the right). */
function innerWidth(figure, least) {
  const style = getComputedStyle(figure);
  const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
  return Math.max(least, Math.floor(figure.clientWidth - padding));
}

function yScale(values, zero, range) {
  if (range) return [range[0], range[1], niceStep(range[1] - range[0], 4)];
  let lo = values.length ? Math.min(...values) : 0;
  let hi = values.length ? Math.max(...values) : 1;
  if (zero) lo = Math.min(0, lo);
  if (hi === lo) hi = lo + (Math.abs(lo) || 1);
  const pad = (hi - lo) * 0.08;
  hi += pad;
  if (!zero) lo -= pad;
  const step = niceStep(hi - lo, 4);
  return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step, step];
}

/** An empty chart says why in text that wraps inside its card (an SVG text cannot wrap:
 * a long reason ran out of the card on both sides). */
function emptyNote(text) {
  return el("p", { className: "chart-empty", text: text });
}

/**
 * Draw lines over time into ``figure`` (keeping its caption).
 * spec: {domain: [t0, t1], format, zero, range: [lo, hi] (fixed), series: [{key, label,
 * color, points, badge, good, marks}], refs: [{label, value}], empty: text, interval}
 * ``marks`` are points drawn as dots on the line (e.g. the checks that found drift).
 */
export function drawChart(figure, spec) {
  if (!figure) return 0;
  const width = innerWidth(figure, 200);
  const height = spec.height || CHART_HEIGHT;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const [t0, t1] = spec.domain;
  const interval = spec.interval || (state.project ? state.project.monitoring.interval_s : 10);

  const values = [];
  for (const s of spec.series) {
    for (const p of s.points) if (p.value !== null && p.ts >= t0) values.push(p.value);
  }
  for (const r of spec.refs) values.push(r.value);
  const [lo, hi, step] = yScale(values, spec.zero, spec.range);

  const x = (t) => MARGIN.left + ((t - t0) / Math.max(1e-9, t1 - t0)) * plotW;
  const y = (v) => MARGIN.top + plotH - ((v - lo) / (hi - lo)) * plotH;

  const caption = figure.querySelector("figcaption");
  const root = svg("svg", {
    class: "plot", width: width, height: height, viewBox: "0 0 " + width + " " + height,
    role: "img", "aria-label": caption ? caption.textContent : "",
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
  const label = t1 - t0 > 2 * 86400 ? (t) => day(t) : (t) => clock(t, t1 - t0 < 900);
  for (let t = Math.ceil(t0 / tStep) * tStep; t <= t1; t += tStep) {
    axis.append(svg("line", {
      x1: x(t), x2: x(t), y1: MARGIN.top + plotH, y2: MARGIN.top + plotH + 4,
    }));
    axis.append(svg("text", { x: x(t), y: height - 6, "text-anchor": "middle", text: label(t) }));
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
    const gap = gapOf(points, interval, t1 - t0);
    // One string per path, built once: thousands of points cost one DOM node, not thousands.
    const parts = [];
    let previous = null;
    for (const p of points) {
      const command = previous === null || p.ts - previous > gap ? "M" : "L";
      parts.push(command + x(p.ts).toFixed(1) + " " + y(p.value).toFixed(1));
      previous = p.ts;
    }
    drawn += points.length;
    root.append(svg("path", {
      class: "line", d: parts.join("") || "M0 0", stroke: s.color, "data-series": s.key,
      "data-points": points.length,
    }));
    for (const m of s.marks || []) {
      if (m.ts < t0 || m.value === null) continue;
      root.append(svg("circle", {
        class: "mark", cx: x(m.ts), cy: y(m.value), r: 3.2, "data-mark": s.key,
      }));
    }
    if (points.length) {
      const end = points[points.length - 1];
      root.append(svg("circle", {
        class: "dot", cx: x(end.ts), cy: y(end.value), r: 2.8, fill: s.color,
      }));
    }
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
  const body = el("div", { className: "plot-box" }, [root, drawn ? null : emptyNote(spec.empty)]);
  figure.replaceChildren(...[caption, legend, body].filter(Boolean));
  return drawn;
}

/**
 * Reference and current shares side by side, one pair of bars per bin or category.
 * summary: {kind, labels, reference, current, edges}
 */
export function drawBars(figure, summary, options) {
  const caption = figure.querySelector("figcaption");
  const width = innerWidth(figure, 220);
  const height = 200;
  const left = 44;
  const right = 8;
  const top = 10;
  const bottom = 40;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const n = summary.labels.length;
  const highest = Math.max(1e-12, ...summary.reference, ...summary.current);
  const slot = plotW / Math.max(1, n);
  const bar = slot * 0.42;
  const base = top + plotH;
  const root = svg("svg", {
    class: "plot bars", width: width, height: height, viewBox: "0 0 " + width + " " + height,
    role: "img", "aria-label": (caption ? caption.textContent : "") +
      ": reference and current share per " + (summary.kind === "histogram" ? "bin" : "category"),
  });
  for (const share of [0.5, 1]) {
    const yy = base - plotH * share;
    root.append(svg("line", { class: "gridline", x1: left, x2: width - right, y1: yy, y2: yy }));
    root.append(svg("text", {
      x: left - 4, y: yy + 3, "text-anchor": "end", text: Math.round(highest * share * 100) + "%",
    }));
  }
  root.append(svg("line", { class: "baseline", x1: left, x2: width - right, y1: base, y2: base }));
  for (let i = 0; i < n; i++) {
    const x0 = left + i * slot + slot * 0.08;
    for (const [offset, share, cls, side] of [
      [0, summary.reference[i], "ref-bar", "reference"],
      [bar, summary.current[i], options && options.drifted ? "cur-bar drifted" : "cur-bar",
       "current"],
    ]) {
      const h = (plotH * share) / highest;
      const rect = svg("rect", {
        class: cls, x: (x0 + offset).toFixed(1), y: (base - h).toFixed(1),
        width: bar.toFixed(1), height: h.toFixed(1),
      });
      rect.append(svg("title", {
        text: summary.labels[i] + ": " + side + " " + (share * 100).toFixed(1) + "%",
      }));
      root.append(rect);
    }
  }
  if (summary.kind === "categories") {
    const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(plotW / 56))));
    for (let i = 0; i < n; i += every) {
      const name = summary.labels[i];
      root.append(svg("text", {
        x: left + (i + 0.5) * slot, y: base + 14, "text-anchor": "middle",
        text: name.length > 10 ? name.slice(0, 9) + "…" : name,
      }));
    }
  } else if (summary.edges && summary.edges.length) {
    const edges = summary.edges;
    for (const i of [0, Math.floor(edges.length / 2), edges.length - 1]) {
      const anchor = i === 0 ? "start" : i === edges.length - 1 ? "end" : "middle";
      root.append(svg("text", {
        x: left + i * slot, y: base + 14, "text-anchor": anchor,
        text: Number(edges[i].toPrecision(4)).toLocaleString("en-US"),
      }));
    }
  }
  const legend = el("div", { className: "legend" }, [
    el("span", { className: "entry" }, [el("span", { className: "swatch ref-swatch" }),
                                        "reference (training)"]),
    el("span", { className: "entry" }, [
      el("span", { className: "swatch " + (options && options.drifted ? "drift-swatch"
                                                                        : "cur-swatch") }),
      "current (last " + ((options && options.window) || "window") + ")"]),
  ]);
  figure.replaceChildren(...[caption, legend, root].filter(Boolean));
}
