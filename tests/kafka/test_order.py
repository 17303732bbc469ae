"""Order: per aggregate end to end through Kafka, and what projections may assume.

Kafka keeps order per partition only, and one aggregate's events share a partition
(key = aggregate id). Across aggregates a consumer may see any interleaving that keeps
each aggregate's own order, so every projection must give the same rows for all of them.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.relay import Relay
from domain.base import SystemClock
from domain.envelope import Envelope
from domain.requests import commands as c
from infra.runtime import Hotline
from infra.settings import Settings
from infra.wiring import all_projections
from projections.base import MemoryRows, Projection
from tests.conftest import PG_HOST, PG_PORT, create_pg_database, drop_pg_database, load_catalogue, require_service
from tests.kafka.harness import AGENT, PREFIXES_USED, Workload, distributed_settings, published_events


@pytest.fixture(scope="module")
def order_hotline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hotline]:
    require_service("Kafka", "127.0.0.1", 59092)
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    url = create_pg_database("t_kafka_order")
    h = Hotline.start(distributed_settings(url, tmp_path_factory.mktemp("order")), SystemClock())
    load_catalogue(h)
    yield h
    h.close()
    drop_pg_database(url)


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.slow
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(st.integers(min_value=0, max_value=24), min_size=40, max_size=120), batch=st.sampled_from([1, 7, 500]))
def test_per_aggregate_order_is_kept_end_to_end(order_hotline: Hotline, steps: list[int], batch: int) -> None:
    h = order_hotline
    refs: dict[int, str] = {}
    for n, i in enumerate(steps):  # a random interleaving of commands on 25 requests
        if i not in refs:
            refs[i] = Workload(h, seed=n)._register_reference()
        else:
            h.bus.execute(c.AddNote(ref=refs[i], text=f"step {n}"), AGENT)
    prefix = f"t{uuid.uuid4().hex[:10]}"
    PREFIXES_USED.add(prefix)  # deleted when the session ends
    own = Settings(**{**h.settings.model_dump(), "kafka_topic_prefix": prefix})
    relay = Relay(own, h.store, batch=batch, name=f"order-{prefix}")
    try:
        relay.run(until=lambda r: r.lag() == 0)
    finally:
        relay.close()
    events = published_events(own)
    seen: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[tuple[str, int]]] = defaultdict(set)
    last_in_partition: dict[tuple[str, int], str] = {}
    for e in events:  # in partition order, as a consumer reads them
        where = (e["_kafka"]["topic"], e["_kafka"]["partition"])
        # The sequence extension: a string whose plain string order is the global order.
        assert e["sequence"] > last_in_partition.get(where, ""), "global order within a partition"
        last_in_partition[where] = e["sequence"]
        seen[e["subject"]].append(e["aggregateversion"])
        partitions[e["subject"]].add(where)
    for versions in seen.values():
        assert versions == list(range(1, len(versions) + 1))
    assert all(len(p) == 1 for p in partitions.values()), "one aggregate, one partition"
    requests = {r for r, evs in seen.items() if any(e["subject"] == r and e["type"].startswith("hotline.request.") for e in events)}
    assert len(requests) >= len(refs)


def _interleave(envelopes: list[Envelope], rng: random.Random) -> list[Envelope]:
    """A random order that keeps each aggregate's events in order."""
    queues: dict[str, list[Envelope]] = defaultdict(list)
    for e in envelopes:
        queues[e.aggregate_id].append(e)
    heads = {k: 0 for k in queues}
    out = []
    live = list(queues)
    while live:
        k = rng.choice(live)
        out.append(queues[k][heads[k]])
        heads[k] += 1
        if heads[k] == len(queues[k]):
            live.remove(k)
    return out


@pytest.fixture(scope="module")
def workload_events(tmp_path_factory: pytest.TempPathFactory) -> list[Envelope]:
    h = Hotline.start(Settings(data_dir=tmp_path_factory.mktemp("interleave")), SystemClock())
    try:
        load_catalogue(h)
        work = Workload(h, seed=21)
        for _ in range(250):
            work.step()
        return list(h.store.iter_envelopes(0))
    finally:
        h.close()


def _rows(p: Projection, envelopes: list[Envelope]) -> dict[str, list[str]]:
    rows = MemoryRows(p)
    rows.apply_all(envelopes)
    return {t: sorted(repr(sorted(r.items())) for r in rows.rows(t)) for t in p.tables}


# Projections that join streams and are known to depend on cross-aggregate order
# (see the Kafka section of the README); the strict xfail turns into a failure once fixed.
ORDER_DEPENDENT: set[str] = set()


@pytest.mark.parametrize("name", [p.name for p in all_projections()])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_projection_does_not_depend_on_cross_aggregate_order(
    name: str, workload_events: list[Envelope], seed: int, request: pytest.FixtureRequest
) -> None:
    if name in ORDER_DEPENDENT:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"{name} reads rows written by another aggregate's events"))
    p = next(p for p in all_projections() if p.name == name)
    assert _rows(p, _interleave(workload_events, random.Random(seed))) == _rows(p, workload_events)


def test_interleaving_keeps_per_aggregate_order(workload_events: list[Envelope], tmp_path: Path) -> None:
    shuffled = _interleave(workload_events, random.Random(1))
    assert sorted(e.position for e in shuffled) == [e.position for e in workload_events]
    assert shuffled != workload_events
    last: dict[str, int] = {}
    for e in shuffled:
        assert e.version > last.get(e.aggregate_id, 0)
        last[e.aggregate_id] = e.version
