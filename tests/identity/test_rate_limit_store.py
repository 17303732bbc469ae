"""The PostgreSQL rate-limit storage against the real server: the strategies' semantics,
one limit shared by several storages (as by several API processes), and no more hits
let through than the limit when threads race for the last ones."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)

from infra.rate_limit_store import PostgresStorage
from tests.conftest import PG_HOST, PG_PORT, create_pg_database, drop_pg_database

pytestmark = pytest.mark.postgres

STRATEGIES: dict[str, type[RateLimiter]] = {
    "fixed": FixedWindowRateLimiter,
    "moving": MovingWindowRateLimiter,
    "sliding": SlidingWindowCounterRateLimiter,
}
DEAD_URL = "postgresql+psycopg://postgres@127.0.0.1:1/none"  # nothing listens on port 1


def _engine(url: str, pool_size: int = 5) -> sa.Engine:
    return sa.create_engine("postgresql+psycopg://" + url.removeprefix("postgresql://"), pool_size=pool_size)


def _sleep_until(at: float) -> None:
    time.sleep(max(0.0, at - time.time()))


@pytest.fixture(scope="module")
def db_url() -> Iterator[str]:
    url = create_pg_database("t_ratelimit")
    yield url
    drop_pg_database(url)


@pytest.fixture
def engines(db_url: str) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    """Two engines: two pools, as two API processes would have."""
    pair = (_engine(db_url, 10), _engine(db_url, 10))
    yield pair
    for engine in pair:
        engine.dispose()


@pytest.fixture
def storage(engines: tuple[sa.Engine, sa.Engine]) -> PostgresStorage:
    return PostgresStorage(engines[0])


@pytest.fixture
def who() -> str:
    """A fresh identifier per test: the tests share one database, never a key."""
    return uuid.uuid4().hex


def test_check_answers_whether_the_database_does(storage: PostgresStorage) -> None:
    assert storage.check()
    dead = sa.create_engine(DEAD_URL, connect_args={"connect_timeout": 2})
    try:
        assert not PostgresStorage(dead).check()
        with pytest.raises(StorageError):
            PostgresStorage(dead, wrap_exceptions=True).incr("k", 1)
    finally:
        dead.dispose()


def test_tables_are_made_on_first_use_by_racing_processes() -> None:
    url = create_pg_database("t_ratelimit_ddl")
    engine = _engine(url, 10)
    try:
        storages = [PostgresStorage(engine) for _ in range(8)]
        assert all(s.check() for s in storages)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT to_regclass('rate_limit_counters')")).scalar() is None
        barrier = threading.Barrier(len(storages))
        errors: list[BaseException] = []

        def first_use(s: PostgresStorage) -> None:
            barrier.wait()
            try:
                s.incr("first", 60)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=first_use, args=(s,)) for s in storages]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert storages[0].get("first") == len(storages)
    finally:
        engine.dispose()
        drop_pg_database(url)


def test_fixed_window_allows_n_refuses_then_recovers(storage: PostgresStorage, who: str) -> None:
    item = RateLimitItemPerSecond(3, 2)
    limiter = FixedWindowRateLimiter(storage)
    fresh = limiter.get_window_stats(item, who)
    assert fresh.remaining == 3
    assert fresh.reset_time == pytest.approx(time.time(), abs=0.5)

    before = time.time()
    assert [limiter.hit(item, who) for _ in range(3)] == [True, True, True]
    after = time.time()
    assert not limiter.hit(item, who)
    assert not limiter.test(item, who)
    stats = limiter.get_window_stats(item, who)
    assert stats.remaining == 0
    assert before + 2 <= stats.reset_time <= after + 2

    _sleep_until(stats.reset_time + 0.05)
    assert limiter.test(item, who)
    assert limiter.get_window_stats(item, who).remaining == 3
    assert limiter.hit(item, who)
    again = limiter.get_window_stats(item, who)
    assert again.remaining == 2
    assert again.reset_time >= stats.reset_time + 2


def test_moving_window_frees_each_slot_as_its_hit_ages_out(storage: PostgresStorage, who: str) -> None:
    item = RateLimitItemPerSecond(3, 2)
    limiter = MovingWindowRateLimiter(storage)
    start, used = storage.get_moving_window(item.key_for(who), 3, 2)
    assert used == 0
    assert start == pytest.approx(time.time(), abs=0.5)

    first = time.time()
    assert limiter.hit(item, who)
    time.sleep(0.8)
    later = time.time()
    assert limiter.hit(item, who)
    assert limiter.hit(item, who)
    assert not limiter.hit(item, who)
    assert not limiter.test(item, who)
    stats = limiter.get_window_stats(item, who)
    assert stats.remaining == 0
    assert first + 2 <= stats.reset_time <= first + 2.5  # when the first hit leaves the window

    # The first hit has aged out; the two later ones (0.8 s younger) still count.
    _sleep_until(stats.reset_time + 0.05)
    assert limiter.get_window_stats(item, who).remaining == 1
    assert limiter.hit(item, who)
    assert not limiter.hit(item, who)
    assert limiter.get_window_stats(item, who).reset_time == pytest.approx(later + 2, abs=0.3)


def test_sliding_window_counter_allows_n_then_refuses(storage: PostgresStorage, who: str) -> None:
    item = RateLimitItemPerDay(3)
    limiter = SlidingWindowCounterRateLimiter(storage)
    assert [limiter.hit(item, who) for _ in range(4)] == [True, True, True, False]
    assert not limiter.test(item, who)
    assert limiter.get_window_stats(item, who).remaining == 0
    limiter.clear(item, who)
    assert limiter.get_window_stats(item, who).remaining == 3
    assert limiter.hit(item, who)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_two_storages_on_separate_engines_share_the_limit(engines: tuple[sa.Engine, sa.Engine], who: str, strategy: str) -> None:
    item = RateLimitItemPerSecond(3, 60)
    a, b = (STRATEGIES[strategy](PostgresStorage(engine)) for engine in engines)
    assert a.hit(item, who)
    assert b.hit(item, who)
    assert a.hit(item, who)
    assert not b.hit(item, who)
    assert not a.test(item, who)
    assert a.get_window_stats(item, who).remaining == b.get_window_stats(item, who).remaining == 0
    b.clear(item, who)
    assert a.hit(item, who)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_racing_threads_never_get_past_the_limit(engines: tuple[sa.Engine, sa.Engine], who: str, strategy: str) -> None:
    # A day's window: the sliding counter's windows turn over at midnight only.
    item: RateLimitItem = RateLimitItemPerDay(20)
    limiters = [STRATEGIES[strategy](PostgresStorage(engine)) for engine in engines]
    threads_n, tries = 8, 10
    barrier = threading.Barrier(threads_n)
    allowed: list[bool] = []
    errors: list[BaseException] = []
    guard = threading.Lock()

    def hammer(limiter: RateLimiter) -> None:
        barrier.wait()
        try:
            results = [limiter.hit(item, who) for _ in range(tries)]
        except BaseException as exc:
            errors.append(exc)
            return
        with guard:
            allowed.extend(results)

    threads = [threading.Thread(target=hammer, args=(limiters[i % 2],)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(allowed) == threads_n * tries
    assert sum(allowed) == 20


def test_clear_and_reset(storage: PostgresStorage, who: str) -> None:
    item = RateLimitItemPerSecond(1, 60)
    fixed, moving = FixedWindowRateLimiter(storage), MovingWindowRateLimiter(storage)
    fixed_who, moving_who = f"{who}-f", f"{who}-m"
    for limiter, key in ((fixed, fixed_who), (moving, moving_who)):
        assert limiter.hit(item, key)
        assert not limiter.hit(item, key)
        limiter.clear(item, key)
        assert limiter.get_window_stats(item, key).remaining == 1
        assert limiter.hit(item, key)
        assert not limiter.hit(item, key)

    assert (storage.reset() or 0) >= 2
    assert fixed.hit(item, fixed_who)
    assert moving.hit(item, moving_who)


def test_expired_rows_are_pruned(engines: tuple[sa.Engine, sa.Engine], who: str) -> None:
    storage = PostgresStorage(engines[0], prune_interval=0)
    storage.incr(f"{who}-counter", 1)
    assert storage.acquire_entry(f"{who}-entry", 5, 1)
    time.sleep(1.1)
    storage.incr(f"{who}-trigger", 60)  # any later write prunes what has expired
    with engines[0].connect() as conn:
        counters = conn.execute(sa.text("SELECT count(*) FROM rate_limit_counters WHERE key = :k"), {"k": f"{who}-counter"}).scalar()
        entries = conn.execute(sa.text("SELECT count(*) FROM rate_limit_entries WHERE key = :k"), {"k": f"{who}-entry"}).scalar()
    assert (counters, entries) == (0, 0)
    assert storage.get(f"{who}-trigger") == 1


def test_registered_under_its_own_scheme(db_url: str, who: str) -> None:
    storage = storage_from_string(f"hotline+postgresql://postgres@{PG_HOST}:{PG_PORT}/{db_url.rsplit('/', 1)[1]}")
    assert isinstance(storage, PostgresStorage)
    try:
        assert storage.check()
        assert storage.incr(who, 60) == 1
    finally:
        storage.engine.dispose()
