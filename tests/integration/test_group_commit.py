"""Group commit: concurrent commands share transactions, and a conflict hurts only the loser."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import PersistenceError

from domain.base import Actor, ConcurrencyConflict, FixedClock
from domain.requests import commands as c
from domain.requests.aggregate import ServiceRequest, request_id_for
from infra.runtime import Hotline
from infra.settings import Settings

AGENT = Actor("op", "agent")


def _register(h: Hotline, i: int) -> str:
    cmd = c.RegisterRequest(
        kind="action", channel="phone", description=f"d{i}", contact=c.Contact(name="N", phone=f"+39 06 {20_000_000 + i}")
    )
    return str(h.bus.execute(cmd, AGENT).result["reference"])


def test_concurrent_commands_share_transactions(hotline: Hotline) -> None:
    # Distinct reference numbers: a random one may collide (then the bus retries the
    # command, and it would be counted twice below).
    numbers = itertools.count(1)
    hotline.bus.deps.new_reference = lambda now: now.strftime("%y%m%d") + f"{next(numbers):06d}"
    batches0, commands0 = hotline.committer.batches, hotline.committer.commands
    start = threading.Barrier(32)

    def client(n: int) -> list[str]:
        start.wait()
        return [_register(hotline, n * 100 + i) for i in range(10)]

    with ThreadPoolExecutor(32) as pool:
        refs = [r for rs in pool.map(client, range(32)) for r in rs]
    assert len(set(refs)) == 320
    batches = hotline.committer.batches - batches0
    commands = hotline.committer.commands - commands0
    assert commands == 320
    assert batches < commands, "concurrent commands should have been batched"
    # Everything committed is really there and in the read model.
    from projections import request_status

    with hotline.read_store.engine.connect() as conn:
        assert len(request_status.search(conn, limit=500)) == 320


def test_conflict_in_a_batch_fails_only_the_loser(hotline: Hotline) -> None:
    ref = _register(hotline, 1)
    version: int = hotline.store.repository.get(request_id_for(ref)).version
    outcomes: list[str] = []
    start = threading.Barrier(16)

    def note(n: int) -> None:
        start.wait()
        try:
            hotline.bus.execute(c.AddNote(ref=ref, text=f"n{n}", expected_version=version), AGENT)
            outcomes.append("ok")
        except ConcurrencyConflict:
            outcomes.append("conflict")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(note, range(16)))
    assert outcomes.count("ok") == 1 and outcomes.count("conflict") == 15
    req: ServiceRequest = hotline.store.repository.get(request_id_for(ref))
    assert req.notes == 1 and req.version == version + 1


def test_without_expected_version_conflicts_are_retried(hotline: Hotline) -> None:
    ref = _register(hotline, 2)
    start = threading.Barrier(16)

    def note(n: int) -> None:
        start.wait()
        hotline.bus.execute(c.AddNote(ref=ref, text=f"n{n}"), AGENT)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(note, range(16)))
    req: ServiceRequest = hotline.store.repository.get(request_id_for(ref))
    assert req.notes == 16


@pytest.mark.parametrize("n", [1])
def test_committer_reports_store_errors_to_every_waiter(hotline: Hotline, n: int) -> None:
    hotline.committer.close()  # a stopped committer must not leave callers hanging silently
    from infra.group_commit import GroupCommitter

    committer = GroupCommitter(hotline.store)
    bad = [object()]  # not an event: the store refuses it
    with pytest.raises(Exception):  # noqa: B017 - whatever the store raises reaches the caller
        committer.commit(bad)
    committer.close()
    hotline.committer = GroupCommitter(hotline.store)
    hotline.bus.committer = hotline.committer


def test_a_stale_cached_copy_never_decides_a_command(hotline: Hotline) -> None:
    """Two API processes on one store: each caches aggregates as it last saw them."""
    other = Hotline.start(hotline.settings, hotline.clock)
    try:
        ref = _register(hotline, 3)
        version: int = other.store.repository.get(request_id_for(ref)).version  # now cached over there
        other.bus.execute(c.AddNote(ref=ref, text="seen everywhere"), AGENT)
        hotline.bus.execute(c.AddNote(ref=ref, text="here"), AGENT)  # cached copy is stale
        # Written on a stale copy: the insert conflicts and the command runs again on the new state.
        other.bus.execute(c.AddNote(ref=ref, text="there"), AGENT)
        # Refused on a stale copy (the client knows a newer version): checked on the stored state.
        out = other.bus.execute(c.AddNote(ref=ref, text="latest", expected_version=version + 3), AGENT)
        assert out.result["version"] == version + 4
        # A version that really is old stays refused.
        with pytest.raises(ConcurrencyConflict):
            hotline.bus.execute(c.AddNote(ref=ref, text="old", expected_version=version), AGENT)
        req: ServiceRequest = hotline.store.read_reference(request_id_for(ref))  # rebuilt from the store
        assert req.notes == 4 and req.version == version + 4
    finally:
        other.close()


def test_a_batch_with_a_stale_command_commits_the_others_together() -> None:
    from concurrent.futures import Future

    from eventsourcing.persistence import IntegrityError

    from infra.group_commit import GroupCommitter

    class Event:
        def __init__(self, originator_id: object, originator_version: int) -> None:
            self.originator_id, self.originator_version = originator_id, originator_version

    class Store:
        """Refuses the key that is already stored, naming it as PostgreSQL does."""

        def __init__(self) -> None:
            self.stored: set[tuple[object, int]] = set()
            self.transactions = 0

        def save(self, *events: Event) -> list[object]:
            self.transactions += 1
            for e in events:
                if (e.originator_id, e.originator_version) in self.stored:
                    key = f"({e.originator_id}, {e.originator_version})"
                    raise IntegrityError(f"Key (originator_id, originator_version)={key} already exists.")
            self.stored |= {(e.originator_id, e.originator_version) for e in events}
            return list(events)

    import uuid as _u

    ids = {name: _u.uuid5(_u.NAMESPACE_URL, name) for name in "abcd"}

    store = Store()
    store.stored = {(ids["a"], 1)}
    committer = GroupCommitter(store)  # type: ignore[arg-type]
    batch: list[tuple[list[object], Future[object]]] = [
        ([Event(ids["b"], 1)], Future()),
        ([Event(ids["a"], 1)], Future()),  # stale: version 1 of a is stored
        ([Event(ids["c"], 1), Event(ids["d"], 1)], Future()),
        ([Event(ids["c"], 1)], Future()),  # same key as the command before it in this batch
    ]
    committer._commit_batch(batch)  # type: ignore[arg-type]
    committer.close()
    assert [f.exception() is None for _, f in batch] == [True, False, True, False]
    assert all(isinstance(f.exception(), IntegrityError) for _, f in batch[1::2])
    assert store.transactions == 2  # the failed one and the retry of the other two together


@pytest.mark.postgres
def test_connections_lost_by_the_committer_and_reader_are_replaced(pg_url: str, tmp_path: Path, clock: FixedClock) -> None:
    """On PostgreSQL the group committer and group reader keep one connection each; when
    the server drops every connection (a restart, an administrator), at most the commands
    that met a dead one fail, with the library's persistence error, and the next ones run."""
    hotline = Hotline.start(Settings(data_dir=tmp_path / "data", database_url=pg_url), clock)
    try:
        _register(hotline, 1)  # both threads have taken their connection
        with psycopg.connect(pg_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        assert killed and killed[0] >= 2
        failures = 0
        refs = []
        for i in range(2, 8):
            try:
                refs.append(_register(hotline, i))
            except PersistenceError:
                failures += 1
        assert failures <= 2, "only the commands that met a dead connection may fail"
        assert len(refs) >= 4
        for ref in refs:  # what was answered is stored
            assert hotline.store.repository.get(request_id_for(ref)).reference == ref
    finally:
        hotline.close()
