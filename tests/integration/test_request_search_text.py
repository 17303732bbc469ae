"""The free text of ``request_status.find`` over a few thousand requests, on both stores,
through each of its paths: few matches (named one by one), many matches (the page walks
the sort's index; PostgreSQL counts one word from its terms index), several words.

Oracle: the matches are computed here from each request's tokens and the query's terms
(``text_terms``: every group matched by a token equal to one of its terms, or starting
with it for a prefix), sorted and counted in Python.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from infra.read_store import make_engine
from projections import request_status as rs
from tests.conftest import create_pg_database, drop_pg_database

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import bench_search as bench

N = 4_000
Loaded = tuple[sa.Engine, list[dict[str, Any]], list[dict[str, Any]]]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[sa.Engine, list[dict[str, Any]], list[dict[str, Any]]]]:
    rows, search, _ = bench.generate(N, seed=5)
    url = create_pg_database("search_text") if request.param == "postgres" else None
    engine = make_engine(url or f"sqlite:///{tmp_path_factory.mktemp('search')}/read.db")
    try:
        bench.load(engine, rows, search)
        yield engine, rows, search
    finally:
        engine.dispose()
        if url:
            drop_pg_database(url)


def expected(rows: list[dict[str, Any]], search: list[dict[str, Any]], query: str, personal: bool, **only: Any) -> list[str]:
    """Ids of the requests whose tokens (and contact's, for staff) match every word, newest first."""
    by_serial = {s["serial"]: s for s in search}
    groups = rs.text_terms(query)
    found = []
    for r in rows:
        s = by_serial[r["serial"]]
        tokens = s["tokens"].split() + (s["contact"].split() if personal else [])
        if all(any(t == w or (prefix and t.startswith(w)) for t in tokens for w, prefix in g) for g in groups) and all(
            r[k] == v for k, v in only.items()
        ):
            found.append(r)
    found.sort(key=lambda r: (r["registered_at"], r["id"]), reverse=True)
    return [r["id"] for r in found]


def every_page(conn: sa.Connection, filters: rs.Filters, limit: int) -> tuple[list[str], set[int]]:
    ids, totals, cursor = [], set(), None
    while True:
        page = rs.find(conn, filters, now=bench.NOW, limit=limit, cursor=cursor)
        ids += [r["id"] for r in page["items"]]
        totals.add(page["total"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids, totals


CASES = [
    # (query, personal, other filters)
    ("pothole", False, {}),  # ~1/40 of the requests, as a prefix
    ("路灯", False, {}),
    ("Rossi", True, {}),  # a surname (and the longer ones it begins): staff
    ("Rossi", False, {}),  # not in the public text at all
    ("pothole", False, {"status": "closed"}),
    ("buca roma", False, {}),
]


@pytest.mark.parametrize("broad", [False, True], ids=["few", "many"])
@pytest.mark.parametrize(("query", "personal", "only"), CASES)
def test_text_pages_and_totals_match_the_oracle(
    loaded: Loaded,
    monkeypatch: pytest.MonkeyPatch,
    broad: bool,
    query: str,
    personal: bool,
    only: dict[str, Any],
) -> None:
    engine, rows, search = loaded
    # "many": every match set above the threshold takes the path of a common word.
    monkeypatch.setattr(rs, "BROAD_TEXT", 3 if broad else 100_000)
    want = expected(rows, search, query, personal, **only)
    status = (only["status"],) if "status" in only else ()
    with engine.connect() as conn:
        ids, totals = every_page(conn, rs.Filters(text=query, personal=personal, status=status), limit=50)
    assert ids == want and totals == {len(want)}
    assert (query == "Rossi" and not personal) or len(want) > 3  # the case has matches to page through
