"""Nearby work orders: every open work order with its place, indexed for "which open orders
of this problem code are within r metres of here?" (nearby duplicates, issue 16).

The place is the work order's first request's: ``WorkOrder.Created`` carries the location
the request was registered with (``domain/work_orders/handlers.py`` copies
``request.location``, which no later event changes), so this read model needs no request
event and is independent of how the streams interleave. A completed or cancelled order
leaves the table: every row is an open order.

Two indexes answer the same question, with the same answers:

* PostgreSQL with PostGIS: a generated ``geography(Point, 4326)`` column with a GiST index;
  ``ST_DWithin`` finds the candidates, ``ST_Distance`` orders them.
* SQLite (and PostgreSQL without PostGIS): a grid of cells 1/512 degree on a side (about
  217 m north-south), numbered row by row (``cell = row * CELLS_PER_ROW + column``), with an
  index on (problem code, cell). A circle's bounding box is one range of cell numbers per
  row of cells it crosses: a 200 m radius reads 3 short index ranges.

Either way the candidates' distances are then computed here, by one haversine formula
on the sphere PostGIS uses (so both stores give the same metres, to the bit), filtered to
the radius and ranked: nearest first, then the older order first. Older first because the
older order is the one the defect was first reported on (the one more citizens are likely
already attached to): linking to it keeps one order per defect, where the newer one is
more likely itself a duplicate that slipped through.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.envelope import Envelope
from domain.work_orders.aggregate import WorkOrder as WO
from projections.base import Projection, Rows, UtcDateTime

projection = Projection("nearby_work_orders")
NEARBY = projection.table(
    "nearby_work_orders",
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("problem_code", sa.String(64), nullable=False),
    sa.Column("department_id", sa.String(64)),
    sa.Column("provider_id", sa.String(64)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("request_id", sa.String(36)),  # its first request, where the place comes from
    sa.Column("lat", sa.Double),
    sa.Column("lon", sa.Double),
    sa.Column("address", sa.Text),
    sa.Column("district", sa.String(100)),
    sa.Column("cell", sa.BigInteger),  # grid cell (None without coordinates)
    sa.Column("created_at", UtcDateTime, nullable=False),
)
sa.Index("ix_rm_nearby_work_orders_cell", NEARBY.c.problem_code, NEARBY.c.cell)
T = NEARBY.name

# The sphere PostGIS's geography uses when asked not to use the spheroid: the WGS 84
# ellipsoid's mean radius (2a + b) / 3.
EARTH_RADIUS_M = 6_371_008.771415059
CELLS_PER_DEGREE = 512
CELLS_PER_ROW = 360 * CELLS_PER_DEGREE
ROWS = 180 * CELLS_PER_DEGREE
# Candidates are checked exactly afterwards: a box a little too large costs nothing, one a
# little too small (rounding) would lose an order on the edge.
_ANGLE_MARGIN = 1e-9  # radians, about 6 mm


# ------------------------------------------------------------------ geometry (pure)
def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres on the sphere of ``EARTH_RADIUS_M``."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def cell_of(lat: float, lon: float) -> int:
    """The grid cell of a point; longitudes 180 and -180 are one meridian (column 0)."""
    row = min(int((lat + 90.0) * CELLS_PER_DEGREE), ROWS - 1)
    column = min(int(((lon + 180.0) % 360.0) * CELLS_PER_DEGREE), CELLS_PER_ROW - 1)
    return row * CELLS_PER_ROW + column


def cell_ranges(lat: float, lon: float, radius_m: float) -> list[tuple[int, int]]:
    """Ranges of cell numbers (inclusive) covering every point within ``radius_m`` of
    (lat, lon): the circle's bounding box on the sphere (J. P. Matuschek, "Finding points
    within a distance of a latitude/longitude using bounding coordinates"), cut into the
    rows of cells it crosses; across the antimeridian a row has two ranges, and a circle
    around a pole takes whole rows."""
    angle = radius_m / EARTH_RADIUS_M + _ANGLE_MARGIN
    phi = math.radians(lat)
    lat_min, lat_max = phi - angle, phi + angle
    spans: list[tuple[float, float]]  # longitude intervals, degrees, within [-180, 180]
    if lat_min > -math.pi / 2 and lat_max < math.pi / 2:
        dlon = math.degrees(math.asin(min(1.0, math.sin(angle) / math.cos(phi)))) + math.degrees(_ANGLE_MARGIN)
        west, east = lon - dlon, lon + dlon
        if west <= -180.0:
            spans = [(west + 360.0, 180.0), (-180.0, east)]
        elif east >= 180.0:
            spans = [(west, 180.0), (-180.0, east - 360.0)]
        else:
            spans = [(west, east)]
    else:  # the circle reaches a pole: every longitude
        lat_min, lat_max = max(lat_min, -math.pi / 2), min(lat_max, math.pi / 2)
        spans = [(-180.0, 180.0)]
    columns = []
    for west, east in spans:
        first = max(0, int((west + 180.0) * CELLS_PER_DEGREE))
        last = min(CELLS_PER_ROW - 1, int((east + 180.0) * CELLS_PER_DEGREE))
        columns.append((first, last))
    row_first = max(0, int((math.degrees(lat_min) + 90.0) * CELLS_PER_DEGREE))
    row_last = min(ROWS - 1, int((math.degrees(lat_max) + 90.0) * CELLS_PER_DEGREE))
    ranges: list[tuple[int, int]] = []
    for row in range(row_first, row_last + 1):
        for first, last in sorted(columns):
            start, end = row * CELLS_PER_ROW + first, row * CELLS_PER_ROW + last
            if ranges and start <= ranges[-1][1] + 1:  # contiguous (whole rows): one range
                ranges[-1] = (ranges[-1][0], max(end, ranges[-1][1]))
            else:
                ranges.append((start, end))
    return ranges


def coordinates(location: dict[str, Any] | None) -> tuple[float, float] | None:
    """(lat, lon) of a location, or None when it has no usable coordinates."""
    if not location:
        return None
    lat, lon = location.get("lat"), location.get("lon")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float) or isinstance(lat, bool) or isinstance(lon, bool):
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    return float(lat), float(lon)


# ------------------------------------------------------------------ handlers
@projection.on(WO.Created)
def created(env: Envelope, rows: Rows) -> None:
    d = env.data
    location = d.get("location") or {}
    point = coordinates(location)
    rows.put(
        T,
        {
            "id": env.aggregate_id,
            "problem_code": d["problem_code"],
            "department_id": d["department_id"],
            "provider_id": d["provider_id"],
            "status": "open",
            "request_id": d["request_id"],
            "lat": point[0] if point else None,
            "lon": point[1] if point else None,
            "address": location.get("address"),
            "district": location.get("district"),
            "cell": cell_of(*point) if point else None,
            "created_at": env.time,
        },
    )


@projection.on(WO.Started)
def started(env: Envelope, rows: Rows) -> None:
    row = rows.get(T, env.aggregate_id)
    if row is not None:
        rows.put(T, {**row, "status": "in_progress"})


@projection.on(WO.Reassigned)
def reassigned(env: Envelope, rows: Rows) -> None:
    row = rows.get(T, env.aggregate_id)
    if row is not None:
        rows.put(T, {**row, "department_id": env.data["department_id"], "provider_id": env.data["provider_id"]})


@projection.on(WO.Completed, WO.Cancelled)
def finished(env: Envelope, rows: Rows) -> None:
    rows.delete(T, env.aggregate_id)  # no longer open: never a duplicate's target


# ------------------------------------------------------------------ PostGIS DDL
GEOG = "geog"


@sa.event.listens_for(sa.Table, "after_create")
def _geographic_index(table: sa.Table, connection: Connection, **kw: Any) -> None:
    """On PostgreSQL with PostGIS: the point as a stored generated geography column (the
    handlers write lat/lon only; COPY and upserts leave the point to the database) and its
    GiST index, on the table and on the replay's copy (renamed into place)."""
    if table.name not in (T, T + "__rebuild") or connection.dialect.name != "postgresql":
        return
    if not _postgis(connection):
        return
    name = table.name
    connection.exec_driver_sql(
        f'ALTER TABLE "{name}" ADD COLUMN IF NOT EXISTS {GEOG} geography(Point, 4326) '
        f"GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography) STORED"
    )
    connection.exec_driver_sql(f'CREATE INDEX IF NOT EXISTS "{name}_{GEOG}" ON "{name}" USING gist ({GEOG})')


def _postgis(connection: Connection) -> bool:
    """PostGIS is in this database, created here if the server has it (and we may)."""
    if connection.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").first():
        return True
    log = logging.getLogger(__name__)
    if not connection.exec_driver_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'").first():
        log.warning("PostGIS is not installed on the server: nearby work orders use the grid index")
        return False
    try:
        with connection.begin_nested():
            connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
    except sa.exc.DBAPIError as error:  # not allowed to: a superuser must create it once
        log.warning("CREATE EXTENSION postgis failed (%s): nearby work orders use the grid index", error.orig)
        return False
    return True


class _Geography(sa.types.UserDefinedType[Any]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "geography"


_USES_POSTGIS: dict[str, bool] = {}


def uses_postgis(conn: Connection) -> bool:
    """Whether this store answers with PostGIS (its table has the geography column)."""
    if conn.dialect.name != "postgresql":
        return False
    key = conn.engine.url.render_as_string(hide_password=True)
    known = _USES_POSTGIS.get(key)
    if known is None:
        known = _USES_POSTGIS[key] = bool(
            conn.execute(
                sa.text("SELECT 1 FROM information_schema.columns WHERE table_name = :t AND column_name = :c"),
                {"t": T, "c": GEOG},
            ).first()
        )
    return known


# ------------------------------------------------------------------ queries
_COLUMNS = [c for c in NEARBY.c if c.name != "cell"]
# Rows the database ranks beyond the limit, read so that the final ranking (here, by the
# haversine distance) chooses among near-equal distances itself.
_SLACK = 16
# Statements by shape (store, ranges, filters), built once: building one cost more than
# running it (SQLAlchemy compiles each shape once too).
_STATEMENTS: dict[tuple[bool, int, bool, bool], Any] = {}


def _statement(postgis: bool, ranges: int, department: bool, exclude: bool) -> Any:
    shape = (postgis, ranges, department, exclude)
    stmt = _STATEMENTS.get(shape)
    if stmt is not None:
        return stmt
    where: list[Any] = [NEARBY.c.problem_code == sa.bindparam("code")]
    if department:
        where.append(NEARBY.c.department_id == sa.bindparam("department"))
    if exclude:
        where.append(NEARBY.c.id.not_in(sa.bindparam("exclude", expanding=True)))
    if postgis:
        point = sa.func.ST_SetSRID(sa.func.ST_MakePoint(sa.bindparam("lon", type_=sa.Double), sa.bindparam("lat", type_=sa.Double)), 4326)
        target = sa.cast(point, _Geography())
        geog = sa.literal_column(GEOG, _Geography())
        stmt = (
            sa.select(*_COLUMNS)
            .where(*where, sa.func.ST_DWithin(geog, target, sa.bindparam("reach", type_=sa.Double), sa.false()))
            .order_by(sa.func.ST_Distance(geog, target, sa.false()), NEARBY.c.created_at, NEARBY.c.id)
            .limit(sa.bindparam("rows", type_=sa.Integer))
        )
    else:
        cells = [
            NEARBY.c.cell.between(sa.bindparam(f"lo{i}", type_=sa.BigInteger), sa.bindparam(f"hi{i}", type_=sa.BigInteger))
            for i in range(ranges)
        ]
        stmt = sa.select(*_COLUMNS).where(*where, sa.or_(*cells))
    _STATEMENTS[shape] = stmt
    return stmt


def nearby(
    conn: Connection,
    *,
    problem_code: str,
    lat: float,
    lon: float,
    radius_m: float,
    limit: int = 20,
    department_id: str | None = None,
    exclude: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Open work orders of ``problem_code`` within ``radius_m`` metres of (lat, lon),
    nearest first, then oldest first (then by id), each with ``distance_m``."""
    excluded = [str(x) for x in exclude]
    params: dict[str, Any] = {"code": problem_code, "department": department_id, "exclude": excluded}
    postgis = uses_postgis(conn)
    if postgis:
        # A little beyond the radius: PostGIS's sphere distance and the haversine here may
        # differ in the last digits; the exact cut is made below.
        params.update(lon=lon, lat=lat, reach=radius_m * (1 + 1e-6) + 0.01, rows=limit + _SLACK)
        stmt = _statement(True, 0, department_id is not None, bool(excluded))
    else:
        ranges = cell_ranges(lat, lon, radius_m)
        for i, (low, high) in enumerate(ranges):
            params[f"lo{i}"], params[f"hi{i}"] = low, high
        stmt = _statement(False, len(ranges), department_id is not None, bool(excluded))
    found = conn.execute(stmt, params).mappings().all()
    return rank(found, lat, lon, radius_m, limit)


def rank(rows: Sequence[Any], lat: float, lon: float, radius_m: float, limit: int) -> list[dict[str, Any]]:
    """The rows within the radius (haversine), nearest first, then oldest, then by id."""
    kept = []
    for r in rows:
        distance = haversine_m(lat, lon, r["lat"], r["lon"])
        if distance <= radius_m:
            kept.append(_shown(r, distance))
    kept.sort(key=lambda o: (o["distance_m"], o["created_at"], o["id"]))
    return kept[:limit]


def _shown(r: Any, distance: float) -> dict[str, Any]:
    return {
        "id": r["id"],
        "problem_code": r["problem_code"],
        "department_id": r["department_id"],
        "provider_id": r["provider_id"],
        "status": r["status"],
        "request_id": r["request_id"],
        "location": {"lat": r["lat"], "lon": r["lon"], "address": r["address"], "district": r["district"]},
        "created_at": r["created_at"],
        "distance_m": distance,
    }


def open_order(conn: Connection, order_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(NEARBY).where(NEARBY.c.id == order_id)).mappings().first()
    return dict(row) if row else None
