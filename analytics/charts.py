"""Charts for reports: a PNG (matplotlib, no display needed) and a self-contained HTML
page (the chart as inline SVG and the table; no scripts, no external files)."""

from __future__ import annotations

import functools
import html
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers
import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.figure import Figure

from analytics.reports import ReportResult, format_value

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# Fonts for the hotline's scripts, from the system (Debian: fonts-noto-core, fonts-noto-cjk),
# each tried glyph by glyph after the reader's own script's font. Matplotlib lays out
# Arabic itself (shaping and right-to-left runs); it needs a font that has the glyphs.
LATIN, CJK, ARABIC = "DejaVu Sans", "Noto Sans CJK SC", "Noto Sans Arabic"
RIGHT_TO_LEFT = ("ar",)
_SYSTEM_FONTS = {"NotoSansCJK-Regular.ttc": CJK, "NotoSansArabic-Regular.ttf": ARABIC}


@functools.cache
def _installed_families() -> frozenset[str]:
    """The families charts can use: the system's Noto fonts registered with matplotlib
    once (its font cache may predate their installation), and what it already knew."""
    known = {f.name for f in font_manager.fontManager.ttflist}
    for path in font_manager.findSystemFonts():
        family = _SYSTEM_FONTS.get(path.rsplit("/", 1)[-1])
        if family is not None and family not in known:
            font_manager.fontManager.addfont(path)
            known.add(family)
    return frozenset(known)


def font_families(language: str | None) -> list[str]:
    """The fonts a chart in ``language`` is drawn with: its script's first (so shared
    characters, punctuation and digits, take that script's shapes), then the others'."""
    first = {"zh": CJK, "ar": ARABIC}.get(language or "", LATIN)
    ordered = [first, *(f for f in (LATIN, CJK, ARABIC) if f != first)]
    installed = _installed_families()
    return [f for f in ordered if f in installed] or [LATIN]


def _same(value: str) -> str:
    return value


def _no_name(column: str, value: Any) -> str | None:
    return None


@dataclass(frozen=True)
class ChartText:
    """A chart's words in its reader's language; by default the report's own (English
    titles, the data's column names and values)."""

    language: str | None = None
    title: str | None = None
    column: Callable[[str], str] = _same  # a column's heading
    value: Callable[[str, Any], str | None] = _no_name  # a coded value's name (a problem code, a department), None: as is
    no_data: str = "no data in this window"
    no_chart: str = "no chart"
    weekdays: tuple[str, ...] = WEEKDAYS
    hour: str = "hour"


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


def figure(result: ReportResult, text: ChartText | None = None) -> Figure:
    """The chart, its texts set in the fonts of ``text``'s language (drawn with them too
    when saved inside :func:`drawn`)."""
    with plt.rc_context({"font.family": font_families(text.language if text else None)}):
        return _figure(result, text or ChartText())


def drawn(result: ReportResult, fmt: str, text: ChartText | None = None) -> bytes:
    """The chart saved as ``fmt`` (png, svg)."""
    with plt.rc_context({"font.family": font_families(text.language if text else None)}):
        fig = _figure(result, text or ChartText())
        buf = io.BytesIO()
        try:
            fig.savefig(buf, format=fmt)
        finally:
            plt.close(fig)
    return buf.getvalue()


def _figure(result: ReportResult, text: ChartText) -> Figure:
    chart = result.chart
    fig = plt.figure(figsize=(10, 5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(text.title or (chart.title if chart and chart.title else result.title))
    if not result.rows or chart is None or chart.kind == "none":
        ax.text(0.5, 0.5, text.no_data if not result.rows else text.no_chart, ha="center", va="center")
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
        ax.set_yticks(range(7), text.weekdays)
        ax.set_xticks(range(0, 24, 2))
        ax.set_xlabel(text.hour)
        fig.colorbar(im, ax=ax, label=text.column(value))
        fig.tight_layout()
        return fig
    x = chart.x if chart.x in cols else cols[0]
    xi = cols.index(x)
    labels = [text.value(x, r[xi]) or _label(r[xi]) for r in result.rows]
    ys = [y for y in chart.y if y in cols] or [c for c in cols if c != x][:1]
    pos = list(range(len(labels)))
    width = 0.8 / max(1, len(ys))
    for k, y in enumerate(ys):
        yi = cols.index(y)
        values = [_num(r[yi]) for r in result.rows]
        label = text.column(y)
        if result.formats.get(y) == "percent":
            values = [v * 100 for v in values]
            label = f"{label} (%)"
        if chart.kind == "line":
            ax.plot(pos, values, marker="o", label=label)
        else:
            ax.bar([p + k * width - 0.4 + width / 2 for p in pos], values, width=width, label=label)
    step = max(1, len(labels) // 24)
    if text.language in RIGHT_TO_LEFT:
        # Read from the right: the first bar on the right, the scale on the right.
        ax.invert_xaxis()
        ax.yaxis.tick_right()
        ax.set_xticks(pos[::step], labels[::step], rotation=-45, ha="left")
    else:
        ax.set_xticks(pos[::step], labels[::step], rotation=45, ha="right")
    ax.set_xlabel(text.column(x))
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def png(result: ReportResult, text: ChartText | None = None) -> bytes:
    return drawn(result, "png", text)


def svg(result: ReportResult, text: ChartText | None = None) -> str:
    drawing = drawn(result, "svg", text).decode()
    return drawing[drawing.index("<svg") :]  # drop the XML prolog: the page is HTML


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
