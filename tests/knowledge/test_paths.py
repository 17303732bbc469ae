"""The knowledge read model on every path: in-process, ``hotline replay knowledge`` (both
stores) and the Kafka projection consumers (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from consumers.kafka_projections import ProjectionConsumer, position_visible
from consumers.relay import Relay
from consumers.replay import replay_projection
from domain.base import SystemClock
from domain.knowledge import commands as c
from infra.runtime import Hotline
from infra.settings import Settings
from infra.wiring import projection_named as by_name
from projections import knowledge as kb
from tests.conftest import PG_HOST, PG_PORT, create_pg_database, drop_pg_database, require_service
from tests.kafka.harness import distributed_settings, wait_until
from tests.knowledge.evaluation import EDITOR, load_articles, metrics, run_queries


@pytest.fixture(params=["sqlite", "postgres"])
def embedded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Hotline]:
    url = None
    if request.param == "postgres":
        require_service("PostgreSQL", PG_HOST, PG_PORT)
        url = create_pg_database("t_kb")
    h = Hotline.start(Settings(data_dir=tmp_path / "data", database_url=url, pg_pool_size=4), SystemClock())
    try:
        yield h
    finally:
        h.close()
        if url:
            drop_pg_database(url)


def _index_rows(h: Hotline) -> list[tuple]:
    with h.read_store.engine.connect() as conn:
        return sorted(
            tuple(r) for r in conn.execute(sa.select(kb.INDEX, kb.STATS.c.docs).join(kb.STATS, kb.STATS.c.language == kb.INDEX.c.language))
        )


def _frequencies(h: Hotline) -> list[tuple]:
    """The document frequencies the projection keeps (rm_knowledge_terms)."""
    with h.read_store.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.select(kb.TERMS)))


def test_replay_rebuilds_the_index_and_search_still_agrees(embedded: Hotline) -> None:
    h = embedded
    ids = load_articles(h)
    some = ids["water_outage"]
    h.bus.execute(c.ReviseArticle(article_id=some, tags=["acquedotto", "自来水"], note="more keywords"), EDITOR)
    h.bus.execute(c.RetireArticle(article_id=ids["library"], reason="moved to the libraries' site"), EDITOR)
    before, rows, frequencies = run_queries(h, ids), _index_rows(h), _frequencies(h)
    assert len(rows) == 29 * 4
    with h.read_store.engine.begin() as conn:  # damage the read model
        conn.execute(sa.delete(kb.INDEX).where(kb.INDEX.c.language == "zh"))
    assert run_queries(h, ids) != before
    for _ in range(2):  # a second replay works on the swapped tables too
        stats = replay_projection(h.settings, by_name("knowledge"))
        assert stats["position"] == h.store.max_position()
        assert _index_rows(h) == rows
        assert _frequencies(h) == frequencies
        assert run_queries(h, ids) == before
    with h.read_store.engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
    assert not [n for n in names if n.endswith("__rebuild") or n.endswith("__old")]
    # After the replay the index is still kept in step (FTS triggers / GIN index in place).
    h.bus.execute(c.RetireArticle(article_id=some, reason="merged"), EDITOR)
    with h.read_store.engine.connect() as conn:
        assert all(r["id"] != some for r in kb.search(conn, "停水", "zh")[0])
        assert kb.search(conn, "暖气", "zh")[0][0]["id"] == ids["heating"]


@pytest.mark.kafka
def test_kafka_consumers_build_the_same_index(tmp_path: Path) -> None:
    require_service("Kafka", "127.0.0.1", 59092)
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    url = create_pg_database("t_kb_kafka")
    h = Hotline.start(distributed_settings(url, tmp_path / "data"), SystemClock())
    try:
        assert h.projector is None
        ids = load_articles(h)
        h.bus.execute(c.RetireArticle(article_id=ids["library"], reason="moved"), EDITOR)
        relay = Relay(h.settings)
        try:
            relay.run(until=lambda r: r.lag() == 0)
        finally:
            relay.close()
        consumer = ProjectionConsumer(h.settings)
        try:
            wait_until(lambda: consumer.poll_once() >= 0 and position_visible(h.read_store, h.store.max_position()), 60, "projections")
        finally:
            consumer.close()
        runs = run_queries(h, ids)
        report = metrics({lang: [r for r in rows if r["expected"] != "library"] for lang, rows in runs.items()})
        for lang, m in report.items():
            assert m["recall@5"] >= 0.95 and m["hit@1"] >= 0.85 and m["empty"] == 0, (lang, m)
        kafka_rows, kafka_frequencies = _index_rows(h), _frequencies(h)
        assert len(kafka_rows) == 29 * 4
        # The same rows as a rebuild from the event store.
        replay_projection(h.settings, by_name("knowledge"))
        assert _index_rows(h) == kafka_rows
        assert _frequencies(h) == kafka_frequencies
    finally:
        h.close()
        drop_pg_database(url)
