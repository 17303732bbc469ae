"""A problem code's distance for nearby duplicates: its rules on the catalogue aggregate."""

from __future__ import annotations

import pytest

import infra.wiring  # noqa: F401  (defines every aggregate)
from domain.base import SYSTEM, Context, InvalidCommand
from domain.catalogue.aggregate import Catalogue
from tests.conftest import START

NAMES = {"zh": "坑", "ar": "حفرة", "it": "Buca", "en": "Pothole"}


def catalogue() -> tuple[Catalogue, Context]:
    ctx = Context(SYSTEM, START)
    cat = Catalogue.open("test", ctx)
    cat.add_department("roads", NAMES, ctx)
    cat.add_provider("crew", "roads", NAMES, ctx)
    cat.add_category("surface", "crew", NAMES, ctx)
    return cat, ctx


def test_a_codes_own_distance_or_none() -> None:
    cat, ctx = catalogue()
    cat.add_problem_code("pothole", "surface", NAMES, {"title": NAMES}, ctx, duplicate_radius_m=200)
    cat.add_problem_code("other", "surface", NAMES, {"title": NAMES}, ctx)
    assert cat.problem_code("pothole")["duplicate_radius_m"] == 200.0
    assert cat.problem_code("other")["duplicate_radius_m"] is None  # the hotline's default applies
    cat.revise_problem_code("other", ctx, duplicate_radius_m=75)
    assert cat.problem_code("other")["duplicate_radius_m"] == 75.0


@pytest.mark.parametrize("bad", [0, -1, 10_001, True, "100"])
def test_a_distance_must_be_positive_metres(bad: object) -> None:
    cat, ctx = catalogue()
    with pytest.raises(InvalidCommand) as refused:
        cat.add_problem_code("pothole", "surface", NAMES, {"title": NAMES}, ctx, duplicate_radius_m=bad)  # type: ignore[arg-type]
    assert refused.value.details["field"] == "duplicate_radius_m"
    cat.add_problem_code("pothole", "surface", NAMES, {"title": NAMES}, ctx)
    with pytest.raises(InvalidCommand):
        cat.revise_problem_code("pothole", ctx, duplicate_radius_m=bad)


def test_an_event_recorded_before_the_field_reads_as_no_distance() -> None:
    cat, ctx = catalogue()
    cat.add_problem_code("pothole", "surface", NAMES, {"title": NAMES}, ctx, duplicate_radius_m=50)
    event = cat.collect_events()[-1]
    del event.__dict__["duplicate_radius_m"]  # as the store decodes an older event
    fresh, _ = catalogue()
    fresh.collect_events()
    event.apply(fresh)
    assert fresh.problem_code("pothole")["duplicate_radius_m"] is None
