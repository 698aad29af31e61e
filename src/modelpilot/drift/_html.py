"""A drift report as one self-contained HTML page: inline CSS and SVG, no scripts, no raw data.

Every plot is drawn from the feature's binned summary (at most a few dozen bars), so the page is
a few kilobytes per feature and opens instantly whatever the size of the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any, Protocol

from modelpilot.drift._feature_drift import FeatureDrift

__all__ = ["ReportView", "render_html"]


class ReportView(Protocol):
    """What the page shows of a report (``modelpilot.drift.DriftReport``, which renders itself
    with :func:`render_html`)."""

    @property
    def features(self) -> Sequence[FeatureDrift]: ...
    @property
    def dataset_drifted(self) -> bool: ...
    @property
    def n_drifted(self) -> int: ...
    @property
    def n_features(self) -> int: ...
    @property
    def share_drifted(self) -> float: ...
    @property
    def dataset_threshold(self) -> float: ...
    @property
    def correction(self) -> str: ...
    @property
    def effect_size_floor(self) -> float | None: ...
    @property
    def reference_source(self) -> str | None: ...
    @property
    def domain_classifier(self) -> Any: ...


_WIDTH, _HEIGHT = 560, 170
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 8, 10, 40
_REFERENCE_COLOR = "#9aa5b1"
_CURRENT_COLOR = "#2f6fdf"
_DRIFT_COLOR = "#d64545"

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2933}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:0 0 6px}
.verdict{padding:10px 14px;border-radius:6px;margin:12px 0 18px;font-weight:600}
.ok{background:#e3f9e5;color:#05400a}.bad{background:#ffe3e3;color:#610404}
table{border-collapse:collapse;margin-bottom:24px}
th,td{padding:4px 10px;border-bottom:1px solid #e4e7eb;text-align:right}
th:first-child,td:first-child,td.l{text-align:left}
tr.drift td{color:#a61b1b;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:16px}
.card{box-sizing:border-box;width:584px;border:1px solid #e4e7eb;border-radius:6px;
  padding:10px 12px}
.meta{color:#52606d;font-size:12px;margin-bottom:4px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;border-radius:2px}
svg text{font:10px system-ui,sans-serif;fill:#52606d}
"""


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if value != value:  # NaN
        return "nan"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def _plot(feature: FeatureDrift) -> str:
    summary = feature.summary
    n = len(summary.reference)
    inner_w = _WIDTH - _LEFT - _RIGHT
    inner_h = _HEIGHT - _TOP - _BOTTOM
    top = max([*summary.reference, *summary.current, 1e-12])
    slot = inner_w / max(n, 1)
    bar = slot * 0.42
    current_color = _DRIFT_COLOR if feature.drifted else _CURRENT_COLOR
    parts = [
        f'<svg width="{_WIDTH}" height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'role="img" aria-label="{escape(feature.name)}: reference vs current">'
    ]
    base = _TOP + inner_h
    parts.append(
        f'<line x1="{_LEFT}" y1="{base}" x2="{_WIDTH - _RIGHT}" y2="{base}" stroke="#cbd2d9"/>'
    )
    for frac in (0.5, 1.0):
        y = base - inner_h * frac
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}" '
            f'stroke="#f0f2f4"/><text x="{_LEFT - 4}" y="{y + 3:.1f}" '
            f'text-anchor="end">{top * frac:.0%}</text>'
        )
    for i in range(n):
        x = _LEFT + i * slot + slot * 0.08
        label = escape(summary.labels[i])
        for offset, share, color, side in (
            (0.0, summary.reference[i], _REFERENCE_COLOR, "reference"),
            (bar, summary.current[i], current_color, "current"),
        ):
            h = inner_h * share / top
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{base - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{color}"><title>{label}: {side} '
                f"{share:.2%}</title></rect>"
            )
    if summary.kind == "categories":
        step = max(1, n // 12)
        for i in range(0, n, step):
            text = summary.labels[i]
            short = escape(text if len(text) <= 10 else text[:9] + "…")
            x = _LEFT + (i + 0.5) * slot
            parts.append(f'<text x="{x:.1f}" y="{base + 14}" text-anchor="middle">{short}</text>')
    elif summary.edges:
        for i in (0, len(summary.edges) // 2, len(summary.edges) - 1):
            x = _LEFT + i * slot
            anchor = "start" if i == 0 else "end" if i == len(summary.edges) - 1 else "middle"
            parts.append(
                f'<text x="{x:.1f}" y="{base + 14}" text-anchor="{anchor}">'
                f"{escape(_fmt(summary.edges[i]))}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _card(feature: FeatureDrift) -> str:
    verdict = "drifted" if feature.drifted else "no drift"
    p_value = ""
    if feature.p_value is not None:
        p_value = f", p = {_fmt(feature.p_value)} (adjusted {_fmt(feature.p_value_adjusted)})"
    note = f"<div class='meta'>{escape(feature.note)}</div>" if feature.note else ""
    return (
        f"<div class='card'><h2>{escape(feature.name)} — {verdict}</h2>"
        f"<div class='meta'>{feature.kind}, {escape(feature.method)} = "
        f"{_fmt(feature.statistic)}{p_value}, threshold {_fmt(feature.threshold)}; "
        f"{feature.n_reference:,} reference and {feature.n_current:,} current values</div>{note}"
        f"<div class='meta legend'><span style='background:{_REFERENCE_COLOR}'></span>reference"
        f"<span style='background:{_DRIFT_COLOR if feature.drifted else _CURRENT_COLOR}'></span>"
        f"current</div>{_plot(feature)}</div>"
    )


def render_html(report: ReportView, *, title: str = "Data drift report") -> str:
    """The whole page as a string."""
    verdict_class = "bad" if report.dataset_drifted else "ok"
    verdict = (
        f"{'Dataset drift' if report.dataset_drifted else 'No dataset drift'}: "
        f"{report.n_drifted} of {report.n_features} features drifted "
        f"({report.share_drifted:.0%}; the threshold is {report.dataset_threshold:.0%})"
    )
    rows = []
    for f in report.features:
        rows.append(
            f"<tr class='{'drift' if f.drifted else ''}'><td>{escape(f.name)}</td>"
            f"<td class='l'>{f.kind}</td><td class='l'>{escape(f.method)}</td>"
            f"<td>{_fmt(f.statistic)}</td><td>{_fmt(f.p_value)}</td>"
            f"<td>{_fmt(f.p_value_adjusted)}</td><td>{_fmt(f.threshold)}</td>"
            f"<td>{_fmt(f.effect_size)}</td><td>{'yes' if f.drifted else 'no'}</td></tr>"
        )
    domain = ""
    if report.domain_classifier is not None:
        d = report.domain_classifier
        domain = (
            f"<p>Domain classifier: ROC AUC {d.roc_auc:.3f} ± {d.roc_auc_std:.3f} "
            f"({'drift' if d.drifted else 'no drift'} at {d.threshold}).</p>"
        )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<div class='meta'>reference from {report.reference_source}; multiple-testing correction "
        f"{escape(report.correction)}; effect-size floor {report.effect_size_floor:g}</div>"
        f"<div class='verdict {verdict_class}'>{verdict}</div>{domain}"
        "<table><thead><tr><th>feature</th><th>kind</th><th>method</th><th>statistic</th>"
        "<th>p-value</th><th>adjusted</th><th>threshold</th><th>effect size</th><th>drifted</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<div class='grid'>{''.join(_card(f) for f in report.features)}</div></body></html>\n"
    )
