"""Report charts speak the reader's language: title, headings, weekdays and the names of
coded values (problem codes, departments), set in fonts that have the script's glyphs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.charts import ARABIC, CJK, drawn, figure, font_families
from analytics.reports import Chart, ReportResult
from api.console.reports import chart_text
from domain.base import SystemClock
from infra.runtime import Hotline
from infra.settings import Settings
from tests.conftest import load_catalogue
from tests.console.test_problem_names_and_search import catalogue_names


@pytest.fixture(scope="module")
def hotline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hotline]:
    h = Hotline.start(Settings(data_dir=tmp_path_factory.mktemp("charts")), SystemClock())
    load_catalogue(h)
    yield h
    h.close()


def _problems() -> ReportResult:
    rows = [["pothole", "roads", "transport", 7, 2, 0.7], ["appliance-removal", "residential-collection", "environment", 3, 0, 0.3]]
    cols = ["problem_code", "category_id", "department_id", "requests", "complaints", "share"]
    return ReportResult("problems", "Most common problem codes", cols, rows, chart=Chart("bar", "problem_code", ["requests"]))


def _texts(fig: object) -> list[str]:
    ax = fig.axes[0]  # type: ignore[attr-defined]
    legend = ax.get_legend()
    return [
        ax.get_title(),
        ax.get_xlabel(),
        *[t.get_text() for t in ax.get_xticklabels()],
        *([t.get_text() for t in legend.get_texts()] if legend else []),
    ]


@pytest.mark.parametrize("lang", ["ar", "zh", "it", "en"])
def test_the_problems_chart_names_problems_in_the_readers_language(hotline: Hotline, lang: str) -> None:
    names = catalogue_names()  # read from the catalogue file (the oracle), not the store
    fig = figure(_problems(), chart_text(hotline, lang, "problems"))
    texts = _texts(fig)
    assert names["pothole"][lang] in texts and names["appliance-removal"][lang] in texts
    if lang != "en":
        # No English left on it: the title and the headings are translated too.
        assert "Most common problem codes" not in texts and "requests" not in texts and "problem_code" not in texts
    else:
        assert "Most common problem codes" in texts


def test_the_heatmap_has_the_readers_weekdays(hotline: Hotline) -> None:
    rows = [[1, 9, 4], [7, 20, 2]]
    result = ReportResult(
        "heatmap", "Contacts by weekday and hour", ["weekday", "hour", "offered"], rows, chart=Chart("heatmap", None, ["offered"])
    )
    ax = figure(result, chart_text(hotline, "zh", "heatmap")).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
    assert ax.get_xlabel() == "一天中的小时"


def test_an_empty_report_says_so_in_arabic(hotline: Hotline) -> None:
    empty = ReportResult("daily", "Daily statistics", ["bucket", "offered"], [], chart=Chart("line", "bucket", ["offered"]))
    ax = figure(empty, chart_text(hotline, "ar", "daily")).axes[0]
    assert "لا توجد بيانات" in " ".join(t.get_text() for t in ax.texts)


@pytest.mark.skipif(
    os.environ.get("CI") != "true" and not Path("/usr/share/fonts/opentype/noto").is_dir(), reason="Noto fonts not installed"
)
def test_each_script_is_set_in_a_font_that_has_it(hotline: Hotline) -> None:
    # infra/test.sh and infra/run.sh install Debian's Noto fonts: in CI they must be there.
    assert font_families("ar")[0] == ARABIC and font_families("zh")[0] == CJK
    assert ARABIC in font_families("en") and CJK in font_families("en")
    png = drawn(_problems(), "png", chart_text(hotline, "ar", "problems"))
    assert png.startswith(b"\x89PNG")
