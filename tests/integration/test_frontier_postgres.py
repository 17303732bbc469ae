"""Read-your-writes on PostgreSQL: the one-statement frontier agrees with the rule as
written in Python (``is_applied`` per position, on SQLite) for random bookkeeping rows:
relay position, routes, per-feed applied positions and replay floors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.kafka_contract import (
    RELAY_NAME,
    applied_frontier,
    applied_frontier_by_rows,
    create_relay_tables,
    is_applied,
    relay_positions,
    relay_routes,
)
from infra.read_store import WHOLE_LOG, make_engine, positions, tracking_md
from tests.conftest import create_pg_database, drop_pg_database

pytestmark = pytest.mark.postgres

NAMES = ["p_one", "p_two", "p_three"]
FEEDS = [1000, 1001, 2000]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    url = create_pg_database("t_frontier")
    pg = make_engine(url, 2)
    lite = make_engine(f"sqlite:///{Path(tmp_path_factory.mktemp('frontier')) / 'rm.db'}", 2)
    for engine in (pg, lite):
        create_relay_tables(engine)
        tracking_md.create_all(engine)
    yield pg, lite
    pg.dispose()
    lite.dispose()
    drop_pg_database(url)


@st.composite
def bookkeeping(draw: st.DrawFn) -> dict[str, list[dict[str, object]]]:
    relay = draw(st.integers(0, 60))
    routes: dict[tuple[int, int], int] = {}
    for feed, first, length in draw(st.lists(st.tuples(st.sampled_from(FEEDS), st.integers(1, 60), st.integers(0, 8)), max_size=8)):
        routes[(feed, first + length)] = first
    # Positions near the routes' ends and the relay's (where the rule has its edges).
    edges = sorted({v + d for (_, last), first in routes.items() for v in (first, last) for d in (-1, 0, 1)} | {relay, relay - 1})
    position = st.one_of(st.sampled_from([e for e in edges if e >= 0] or [0]), st.integers(0, 70))
    rows = []
    # Most (projection, feed) rows exist; some are missing (a projection that never saw a
    # feed) and replay floors are rare.
    for name in NAMES:
        for feed in FEEDS:
            if draw(st.integers(0, 5)):
                rows.append({"name": name, "partition": feed, "position": draw(position)})
        if draw(st.integers(0, 3)) == 0:
            rows.append({"name": name, "partition": WHOLE_LOG, "position": draw(position)})
    return {
        "relay": [{"name": RELAY_NAME, "position": relay, "published": 0}] if draw(st.booleans()) or relay else [],
        "routes": [{"feed": f, "last_position": last, "first_position": first} for (f, last), first in routes.items()],
        "positions": rows,
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=bookkeeping())
def test_sql_frontier_matches_the_rule(engines: tuple[sa.Engine, sa.Engine], data: dict[str, list[dict[str, object]]]) -> None:
    from datetime import UTC, datetime

    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    for engine in engines:
        with engine.begin() as conn:
            for table in (relay_positions, relay_routes, positions):
                conn.execute(sa.delete(table))
            if data["relay"]:
                conn.execute(sa.insert(relay_positions), [{**r, "updated_at": stamp} for r in data["relay"]])
            if data["routes"]:
                conn.execute(sa.insert(relay_routes), data["routes"])
            if data["positions"]:
                conn.execute(sa.insert(positions), [{**r, "updated_at": stamp} for r in data["positions"]])
    pg, lite = engines
    with pg.connect() as conn:
        frontier = applied_frontier(conn, NAMES)
        assert frontier == applied_frontier_by_rows(conn, NAMES)
        # The PostgreSQL form of is_applied is the frontier: check both agree at every position.
        assert all(is_applied(conn, p, NAMES) == (p <= frontier) for p in range(0, 72))
    with lite.connect() as conn:
        assert applied_frontier(conn, NAMES) == frontier
        # The rule itself, position by position: the frontier is the highest visible one.
        visible = [p for p in range(0, 72) if is_applied(conn, p, NAMES)]
        assert visible == list(range(0, frontier + 1))
