"""Charts for reports: a PNG (matplotlib, no display needed) and a self-contained HTML
page (the chart as inline SVG and the table; no scripts, no external files)."""

from __future__ import annotations

import html
import io
from datetime import date, datetime
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from analytics.reports import ReportResult, format_value

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _label(v: Any) -> str:
    if isinstance(v, datetime):
        return v.strftime("%m-%d %H:%M") if (v.hour or v.minute) else v.strftime("%Y-%m-%d")
    if isinstance(v, date):
        return v.isoformat()
    return "–" if v is None else str(v)


def _num(v: Any) -> float:
    try:
        return float(v) if v is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def figure(result: ReportResult) -> Figure:
    chart = result.chart
    fig = plt.figure(figsize=(10, 5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(chart.title if chart and chart.title else result.title)
    if not result.rows or chart is None or chart.kind == "none":
        ax.text(0.5, 0.5, "no data in this window" if not result.rows else "no chart", ha="center", va="center")
        ax.set_axis_off()
        return fig
    cols = result.columns
    if chart.kind == "heatmap" and "weekday" in cols and "hour" in cols:
        value = chart.y[0] if chart.y else cols[-1]
        grid = [[0.0] * 24 for _ in range(7)]
        wi, hi, vi = cols.index("weekday"), cols.index("hour"), cols.index(value)
        for r in result.rows:
            if r[wi] and r[hi] is not None:
                grid[int(r[wi]) - 1][int(r[hi])] = _num(r[vi])
        im = ax.imshow(grid, aspect="auto", cmap="YlOrRd")
        ax.set_yticks(range(7), WEEKDAYS)
        ax.set_xticks(range(0, 24, 2))
        ax.set_xlabel("hour")
        fig.colorbar(im, ax=ax, label=value)
        fig.tight_layout()
        return fig
    x = chart.x if chart.x in cols else cols[0]
    xi = cols.index(x)
    labels = [_label(r[xi]) for r in result.rows]
    ys = [y for y in chart.y if y in cols] or [c for c in cols if c != x][:1]
    pos = list(range(len(labels)))
    width = 0.8 / max(1, len(ys))
    for k, y in enumerate(ys):
        yi = cols.index(y)
        values = [_num(r[yi]) for r in result.rows]
        if result.formats.get(y) == "percent":
            values = [v * 100 for v in values]
            y = f"{y} (%)"
        if chart.kind == "line":
            ax.plot(pos, values, marker="o", label=y)
        else:
            ax.bar([p + k * width - 0.4 + width / 2 for p in pos], values, width=width, label=y)
    step = max(1, len(labels) // 24)
    ax.set_xticks(pos[::step], labels[::step], rotation=45, ha="right")
    ax.set_xlabel(x)
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def png(result: ReportResult) -> bytes:
    fig = figure(result)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def svg(result: ReportResult) -> str:
    fig = figure(result)
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the page is HTML


def _html_table(result: ReportResult) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in result.columns)
    body = "\n".join(
        "<tr>"
        + "".join(f"<td>{html.escape(format_value(v, result.formats.get(c)))}</td>" for c, v in zip(result.columns, r, strict=True))
        + "</tr>"
        for r in result.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def html_page(result: ReportResult) -> str:
    """The chart, the main table and the report's further sections, each with its title."""
    sections = "".join(
        f"\n<h2>{html.escape(s.title)}</h2>\n{_html_table(s) if s.rows else '<p>none in this window</p>'}" for s in result.sections
    )
    params = ", ".join(f"{k}={html.escape(_label(v))}" for k, v in result.params.items() if k in ("from", "to", "by"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(result.title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, th:first-child {{ text-align: left; }}
.chart svg {{ max-width: 100%; height: auto; }}
</style></head>
<body>
<h1>{html.escape(result.title)}</h1>
<p>{params}</p>
<div class="chart">{svg(result)}</div>
{_html_table(result)}{sections}
</body></html>
"""
