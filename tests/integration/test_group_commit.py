"""Group commit: concurrent commands share transactions, and a conflict hurts only the loser."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from domain import commands as c
from domain import services as s
from domain.base import Actor, ConcurrencyConflict
from domain.requests import ServiceRequest, request_id_for
from infra.runtime import Hotline

AGENT = Actor("op", "agent")


def _register(h: Hotline, i: int) -> str:
    cmd = c.RegisterRequest(
        kind="action", channel="phone", description=f"d{i}", contact=c.Contact(name="N", phone=f"+39 06 {20_000_000 + i}")
    )
    return str(h.bus.execute(s.register_request, AGENT, cmd).result["reference"])


def test_concurrent_commands_share_transactions(hotline: Hotline) -> None:
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
    version = hotline.store.repository.get(request_id_for(ref)).version
    outcomes: list[str] = []
    start = threading.Barrier(16)

    def note(n: int) -> None:
        start.wait()
        try:
            hotline.bus.execute(s.add_note, AGENT, ref, c.AddNote(text=f"n{n}", expected_version=version))
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
        hotline.bus.execute(s.add_note, AGENT, ref, c.AddNote(text=f"n{n}"))

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
