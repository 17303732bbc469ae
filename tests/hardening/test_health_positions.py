"""Per-projection positions in the distributed mode (``ReadStore.positions``): each equals
the read-your-writes rule evaluated for that projection alone
(``applied_frontier_by_rows``, the reference the PostgreSQL form is tested against), on
random relay routes and per-feed rows; and a quiet or empty partition no longer pins a
caught-up projection at 0."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumers.kafka_contract import applied_frontier_by_rows, projection_frontiers, relay_md, relay_positions, relay_routes
from infra.read_store import WHOLE_LOG, ReadStore, make_engine, positions, tracking_md
from projections.base import Projection

NAMES = ["alpha", "beta", "gamma"]
FEEDS = [1001, 1002, 1003, 1004]


def _store(tmp_path: Path) -> ReadStore:
    rs = ReadStore(make_engine(f"sqlite:///{tmp_path / 'rm.sqlite'}"), [Projection(n) for n in NAMES])
    tracking_md.create_all(rs.engine)
    relay_md.create_all(rs.engine)
    return rs


def _scenario(rs: ReadStore, rng: random.Random) -> int:
    """A relay that published batches 1..head over the feeds, and projections that applied
    each feed up to some route's end (or part of one), some after a replay's floor."""
    now = datetime.now(UTC)
    head = 0
    routes: list[dict[str, int]] = []
    for _ in range(rng.randint(0, 12)):
        first = head + 1
        head += rng.randint(1, 20)
        for feed in rng.sample(FEEDS, rng.randint(1, 3)):  # a batch's events in some feeds
            lo = rng.randint(first, head)
            routes.append({"feed": feed, "first_position": lo, "last_position": rng.randint(lo, head)})
    dedup = {(r["feed"], r["last_position"]): r for r in routes}
    rows = []
    for name in NAMES:
        if rng.random() < 0.2:
            rows.append({"name": name, "partition": WHOLE_LOG, "position": rng.randint(0, head), "updated_at": now})
        for feed in FEEDS:
            ends = sorted(r["last_position"] for r in dedup.values() if r["feed"] == feed)
            if rng.random() < 0.8:  # a row exists (0 for a feed that never had an event)
                applied = rng.choice([0, *ends]) if ends and rng.random() < 0.7 else rng.randint(0, head)
                rows.append({"name": name, "partition": feed, "position": applied, "updated_at": now})
    with rs.engine.begin() as conn:
        conn.execute(relay_routes.delete())
        conn.execute(relay_positions.delete())
        conn.execute(positions.delete())
        if dedup:
            conn.execute(relay_routes.insert(), list(dedup.values()))
        conn.execute(relay_positions.insert(), [{"name": "kafka", "position": head, "published": 0, "updated_at": now}])
        if rows:
            conn.execute(positions.insert(), rows)
    return head


@pytest.mark.parametrize("seed", range(8))
def test_each_projection_position_is_the_rule_for_that_projection(tmp_path: Path, seed: int) -> None:
    rs = _store(tmp_path)
    rng = random.Random(seed)
    for _ in range(40):
        _scenario(rs, rng)
        with rs.engine.connect() as conn:
            expected = {n: applied_frontier_by_rows(conn, [n]) for n in NAMES}
            assert projection_frontiers(conn, NAMES) == expected
            fed_from_kafka = conn.execute(positions.select().where(positions.c.partition != WHOLE_LOG)).first() is not None
        if fed_from_kafka:  # (with only whole-log rows, positions() reads them as the embedded mode does)
            assert rs.positions() == expected


def test_caught_up_projection_is_at_the_head_despite_empty_partitions(tmp_path: Path) -> None:
    rs = _store(tmp_path)
    now = datetime.now(UTC)
    with rs.engine.begin() as conn:
        conn.execute(relay_positions.insert(), [{"name": "kafka", "position": 40, "published": 40, "updated_at": now}])
        # Events only ever went to feed 1001 (up to 37; 38..40 were internal, not published);
        # feed 1002 never had one: its rows stay at 0, as the consumers create them.
        conn.execute(relay_routes.insert(), [{"feed": 1001, "first_position": 30, "last_position": 37}])
        conn.execute(
            positions.insert(),
            [{"name": n, "partition": f, "position": p, "updated_at": now} for n in NAMES for f, p in ((1001, 37), (1002, 0))],
        )
    assert rs.positions() == dict.fromkeys(NAMES, 40)
    with rs.engine.begin() as conn:  # beta is one batch behind in feed 1001
        conn.execute(positions.update().where(positions.c.name == "beta", positions.c.partition == 1001).values(position=29))
    assert rs.positions() == {"alpha": 40, "beta": 29, "gamma": 40}
