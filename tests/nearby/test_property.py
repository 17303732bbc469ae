"""Nearby work orders against brute force: on random places anywhere on Earth (the
antimeridian and the poles included), with duplicates of one point and closed orders, the
read model answers what a haversine over every open order answers, in the same order
(nearest, then oldest, then id), on SQLite's grid and on PostgreSQL's PostGIS index."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection

from infra.read_store import ReadStore, make_engine
from projections import nearby
from tests.conftest import IN_CI, create_pg_database, drop_pg_database
from tests.nearby.helpers import Order, at, envelopes, oracle

CODES = ("pothole", "streetlight-out")
DEPARTMENTS = ("transport", "environment")


@pytest.fixture(scope="module", params=["sqlite", "postgres", "postgres-without-postgis"])
def store(request: pytest.FixtureRequest) -> Iterator[ReadStore]:
    """The read model on SQLite (grid), PostgreSQL (PostGIS) and PostgreSQL where PostGIS
    cannot be had (the grid, as on SQLite)."""
    if request.param == "sqlite":
        folder = tempfile.mkdtemp(prefix="nearby-")
        url = f"sqlite:///{Path(folder) / 'read.db'}"
    else:
        from tests.conftest import PG_HOST, PG_PORT, require_service

        require_service("PostgreSQL", PG_HOST, PG_PORT)
        url = create_pg_database("t_nearby")
    rs = ReadStore(make_engine(url), [nearby.projection])
    with mock.patch.object(nearby, "_postgis", return_value=request.param != "postgres-without-postgis"):
        rs.create_tables()
    with rs.engine.connect() as conn:
        assert nearby.uses_postgis(conn) == (request.param == "postgres")
    yield rs
    rs.engine.dispose()
    if request.param != "sqlite":
        drop_pg_database(url)


def _offset(center: tuple[float, float], north_m: float, east_m: float) -> tuple[float, float]:
    """A point about (north, east) metres from the center, folded back onto the globe."""
    lat = center[0] + math.degrees(north_m / 6_371_000)
    if lat > 90:
        lat = 180 - lat
    elif lat < -90:
        lat = -180 - lat
    lat = max(-90.0, min(90.0, lat))
    lon = center[1] + math.degrees(east_m / (6_371_000 * max(math.cos(math.radians(lat)), 1e-6)))
    lon = (lon + 180.0) % 360.0 - 180.0
    return lat, lon


centers = st.one_of(
    st.tuples(st.floats(-85, 85), st.floats(-180, 180)),
    st.tuples(st.floats(-60, 60), st.sampled_from([-180.0, -179.9995, 179.9995, 180.0])),  # the antimeridian
    st.tuples(st.sampled_from([-90.0, -89.999, 89.999, 90.0]), st.floats(-180, 180)),  # the poles
)
order_specs = st.lists(
    st.tuples(
        st.floats(-3.0, 3.0),  # north, in radii
        st.floats(-3.0, 3.0),  # east, in radii
        st.sampled_from(CODES),
        st.sampled_from(DEPARTMENTS),
        st.integers(0, 5),  # created, minutes after the start (ties on purpose)
        st.booleans() | st.just(True),  # open (more often)
        st.integers(-1, 3),  # >= 0: at the same point as that earlier order
        st.booleans() | st.just(True),  # has coordinates (more often)
    ),
    max_size=40,
)


def _answers(conn: Connection, code: str, here: tuple[float, float], radius: float, department: str | None) -> list[tuple[str, float]]:
    found = nearby.nearby(conn, problem_code=code, lat=here[0], lon=here[1], radius_m=radius, limit=1000, department_id=department)
    return [(o["id"], o["distance_m"]) for o in found]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    center=centers,
    radius=st.sampled_from([1.0, 50.0, 200.0]) | st.floats(0.5, 10_000),
    specs=order_specs,
    code=st.sampled_from(CODES),
    department=st.none() | st.sampled_from(DEPARTMENTS),
)
def test_same_orders_in_the_same_order_as_brute_force(
    store: ReadStore, center: tuple[float, float], radius: float, specs: list[tuple], code: str, department: str | None
) -> None:
    orders: list[Order] = []
    for n, (north, east, pcode, dep, minute, is_open, same_as, located) in enumerate(specs):
        if 0 <= same_as < len(orders) and orders[same_as].lat is not None:
            lat, lon = orders[same_as].lat, orders[same_as].lon
        else:
            lat, lon = _offset(center, north * radius, east * radius)
        # Ids in another order than creation's: the ranking's age and id tie-breaks differ.
        orders.append(
            Order(f"wo-{(n * 7919) % 1000:03d}", pcode, dep, lat if located else None, lon if located else None, at(minute), is_open)
        )
    store.reset(nearby.projection)
    store.apply(envelopes(orders))
    with store.engine.connect() as conn:
        got = _answers(conn, code, center, radius, department)
    expected = oracle(orders, code, center, radius, department)
    assert [i for i, _ in got] == [i for i, _ in expected]
    # The same metres as the oracle's formula: so SQLite and PostgreSQL answer alike.
    assert [d for _, d in got] == pytest.approx([d for _, d in expected], rel=1e-12, abs=1e-9)


def test_postgres_answers_with_postgis() -> None:
    """On PostgreSQL the read model uses PostGIS's index (postgres.sh installs PostGIS):
    a geography column with a GiST index."""
    from tests.conftest import PG_HOST, PG_PORT, require_service

    require_service("PostgreSQL", PG_HOST, PG_PORT)
    url = create_pg_database("t_nearby_gis")
    rs = ReadStore(make_engine(url), [nearby.projection])
    try:
        rs.create_tables()
        with rs.engine.connect() as conn:
            if not nearby.uses_postgis(conn):
                if IN_CI:
                    pytest.fail("PostGIS is not installed on the test server (infra/postgres.sh installs it)")
                pytest.skip("PostGIS is not installed")
            kinds: dict[str, str] = dict(
                conn.exec_driver_sql(  # type: ignore[arg-type]
                    "SELECT c.relname, am.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = 'rm_nearby_work_orders'::regclass"
                ).all()
            )
        assert kinds.get("rm_nearby_work_orders_geog") == "gist"
    finally:
        rs.engine.dispose()
        drop_pg_database(url)
