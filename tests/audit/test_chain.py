"""The audit chain on SQLite and PostgreSQL: events written through the bus, then the
database tampered with directly, as someone with access to it would. Every tampering is
caught, with the position named; an untouched store verifies."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from domain.base import Actor
from domain.requests import commands as c
from infra import audit_chain
from infra.audit_chain import verify, write_checkpoint
from infra.runtime import Hotline

AGENT = Actor("op", "agent")


# ---------------------------------------------------------------------------- helpers


class Raw:
    """The events table as an attacker with database access sees it."""

    def __init__(self, hotline: Hotline) -> None:
        self.pg = hotline.store.is_postgres
        self.pos = "notification_id" if self.pg else "rowid"
        self.table = str(hotline.store.recorder.events_table_name)  # type: ignore[attr-defined]
        self.conn: Any
        if self.pg:
            assert hotline.settings.database_url
            self.conn = psycopg.connect(hotline.settings.database_url, autocommit=True)
        else:
            self.conn = sqlite3.connect(hotline.settings.sqlite_events_path, isolation_level=None, timeout=30)

    def q(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        sql = sql.replace("{pos}", self.pos).replace("stored_events", self.table)
        if self.pg:
            cur = self.conn.execute(sql.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []
        return self.conn.execute(sql, params).fetchall()

    def oid(self, text: str) -> Any:
        return uuid.UUID(text) if self.pg else uuid.UUID(text).hex

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for r in self.q(
            "SELECT {pos}, originator_id, originator_version, topic, state, chain_stream, chain_global, chain_prev "
            "FROM stored_events ORDER BY {pos}"
        ):
            out.append(
                {
                    "pos": r[0],
                    "id": str(uuid.UUID(str(r[1]))),
                    "version": r[2],
                    "topic": r[3],
                    "state": bytes(r[4]),
                    "stream": bytes(r[5]) if r[5] is not None else None,
                    "global": bytes(r[6]) if r[6] is not None else None,
                    "prev": r[7],
                }
            )
        return out

    def set_state(self, pos: int, state: bytes) -> None:
        self.q("UPDATE stored_events SET state = ? WHERE {pos} = ?", state, pos)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def raw(hotline: Hotline) -> Iterator[Raw]:
    r = Raw(hotline)
    yield r
    r.close()


def _register(h: Hotline, i: int) -> str:
    cmd = c.RegisterRequest(
        kind="action", channel="phone", description=f"pothole {i}", contact=c.Contact(name=f"N {i}", phone=f"+39 06 {30_000_000 + i}")
    )
    return str(h.bus.execute(cmd, AGENT).result["reference"])


def _traffic(h: Hotline, requests: int = 6, notes: int = 3) -> list[str]:
    refs = [_register(h, i) for i in range(requests)]
    for n in range(notes):
        for ref in refs:
            h.bus.execute(c.AddNote(ref=ref, text=f"note {n} on {ref}"), AGENT)
    return refs


def _request_rows(raw: Raw) -> dict[str, list[dict[str, Any]]]:
    """Stream id → its rows, for the streams with at least 4 events (the requests)."""
    streams: dict[str, list[dict[str, Any]]] = {}
    for row in raw.rows():
        streams.setdefault(row["id"], []).append(row)
    return {k: v for k, v in streams.items() if len(v) >= 4}


def _oracle_stream(previous: bytes | None, row: dict[str, Any]) -> bytes:
    """The stream hash as the chain's documentation defines it, written out independently."""
    topic = row["topic"].encode("utf-8")
    data = (
        (previous or b"\0" * 32)
        + uuid.UUID(row["id"]).bytes
        + row["version"].to_bytes(8, "big")
        + len(topic).to_bytes(4, "big")
        + topic
        + row["state"]
    )
    return hashlib.sha256(data).digest()


def _oracle_global(previous: bytes, pos: int, stream: bytes) -> bytes:
    return hashlib.sha256(previous + pos.to_bytes(8, "big") + stream).digest()


def _rechain_from(raw: Raw, first_pos: int) -> None:
    """An attacker who knows the algorithm recomputes every global link from ``first_pos``
    to the end, and the head: a consistent rewrite of the whole chain's tail."""
    rows = raw.rows()
    previous = b"\0" * 32
    for row in rows:
        if row["pos"] >= first_pos:
            g = _oracle_global(previous, row["pos"], row["stream"])
            raw.q("UPDATE stored_events SET chain_global = ? WHERE {pos} = ?", g, row["pos"])
            row["global"] = g
        previous = row["global"]
    raw.q("UPDATE audit_chain_head SET position = ?, hash = ? WHERE id = 1", rows[-1]["pos"], previous)


# ---------------------------------------------------------------------------- the chain


def test_untouched_store_verifies_and_matches_an_independent_computation(hotline: Hotline, raw: Raw) -> None:
    _traffic(hotline)
    report = verify(hotline.store)
    assert report.ok, report.as_dict()
    rows = raw.rows()
    assert report.events_checked == len(rows) == hotline.store.max_position()
    assert report.head_position == rows[-1]["pos"]
    # Every stored link recomputed from the definition, not by the code under test.
    last: dict[str, bytes] = {}
    previous_global, previous_pos = b"\0" * 32, 0
    for row in rows:
        assert row["stream"] == _oracle_stream(last.get(row["id"]), row)
        assert row["global"] == _oracle_global(previous_global, row["pos"], row["stream"])
        assert row["prev"] == previous_pos
        last[row["id"]] = row["stream"]
        previous_global, previous_pos = row["global"], row["pos"]
    assert report.head_hash == previous_global.hex()


def test_concurrent_commands_keep_one_valid_chain(hotline: Hotline, raw: Raw) -> None:
    start = threading.Barrier(16)

    def client(n: int) -> None:
        start.wait()
        for i in range(8):
            ref = _register(hotline, 1000 + n * 100 + i)
            hotline.bus.execute(c.AddNote(ref=ref, text="x"), AGENT)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert hotline.committer.commands > hotline.committer.batches  # shared transactions happened
    report = verify(hotline.store)
    assert report.ok, report.as_dict()
    # Every stored row (not the highest position: on PostgreSQL a batch that lost a
    # conflict leaves the positions it took unused).
    assert report.events_checked == len(raw.rows())


def test_a_flipped_byte_in_any_event_is_caught_at_its_position(hotline: Hotline, raw: Raw) -> None:
    _traffic(hotline, requests=3, notes=1)
    rows = raw.rows()
    for row in rows:  # every stored event, one at a time
        state = bytearray(row["state"])
        i = len(state) // 2
        state[i] ^= 0x01
        raw.set_state(row["pos"], bytes(state))
        report = verify(hotline.store)
        raw.set_state(row["pos"], row["state"])
        assert not report.ok
        first = report.first_break
        assert first is not None
        assert (first.position, first.what, first.stream, first.version) == (row["pos"], "changed", row["id"], row["version"])
        assert len(report.breaks) == 1
    assert verify(hotline.store).ok


def test_a_deleted_event_is_caught(hotline: Hotline, raw: Raw) -> None:
    _traffic(hotline)
    stream = next(iter(_request_rows(raw).values()))
    middle = stream[1]
    raw.q("DELETE FROM stored_events WHERE {pos} = ?", middle["pos"])
    report = verify(hotline.store)
    assert report.first_break is not None
    assert (report.first_break.position, report.first_break.what) == (middle["pos"], "deleted")
    # Its stream names the missing version too.
    assert any(b.what == "deleted" and b.stream == middle["id"] and b.version == middle["version"] for b in report.breaks)


@pytest.mark.parametrize("which", ["end_of_stream", "end_of_store"])
def test_a_deleted_last_event_is_caught(hotline: Hotline, raw: Raw, which: str) -> None:
    _traffic(hotline)
    rows = raw.rows()
    if which == "end_of_store":
        victim = rows[-1]
    else:  # the last event of a stream that is not the last of the store
        last_of: dict[str, dict[str, Any]] = {}
        for row in rows[:-1]:
            last_of[row["id"]] = row
        victim = next(r for r in last_of.values() if r["pos"] < rows[-1]["pos"] - 3 and r["version"] > 1)
    raw.q("DELETE FROM stored_events WHERE {pos} = ?", victim["pos"])
    report = verify(hotline.store)
    assert report.first_break is not None
    assert (report.first_break.position, report.first_break.what) == (victim["pos"], "deleted")


def test_a_deletion_stays_caught_after_later_commits(hotline: Hotline, raw: Raw) -> None:
    """The writer chains from the head table, never from the last row left."""
    refs = _traffic(hotline, requests=3, notes=1)
    victim = raw.rows()[-1]
    raw.q("DELETE FROM stored_events WHERE {pos} = ?", victim["pos"])
    hotline.bus.execute(c.AddNote(ref=refs[0], text="later"), AGENT)
    report = verify(hotline.store)
    assert report.first_break is not None
    assert (report.first_break.position, report.first_break.what) == (victim["pos"], "deleted")


@pytest.mark.parametrize("scope", ["same_stream", "two_streams"])
def test_two_swapped_events_are_caught(hotline: Hotline, raw: Raw, scope: str) -> None:
    _traffic(hotline)
    streams = list(_request_rows(raw).values())
    a, b = (streams[0][1], streams[0][3]) if scope == "same_stream" else (streams[0][2], streams[1][3])
    raw.set_state(a["pos"], b["state"])
    raw.set_state(b["pos"], a["state"])
    report = verify(hotline.store)
    assert [(x.position, x.what) for x in report.breaks] == [(a["pos"], "swapped"), (b["pos"], "swapped")]


def test_a_forged_event_without_links_is_caught(hotline: Hotline, raw: Raw) -> None:
    _traffic(hotline)
    stream = next(iter(_request_rows(raw).values()))
    last = stream[-1]
    raw.q(
        "INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)",
        raw.oid(last["id"]),
        last["version"] + 1,
        last["topic"],
        last["state"],
    )
    forged = raw.rows()[-1]
    assert forged["version"] == last["version"] + 1
    report = verify(hotline.store)
    assert report.first_break is not None
    assert (report.first_break.position, report.first_break.what, report.first_break.stream) == (forged["pos"], "inserted", last["id"])


def test_a_forged_event_with_computed_links_is_caught(hotline: Hotline, raw: Raw) -> None:
    """The attacker knows the algorithm and chains the forgery onto the last event, but the
    writer's head does not move."""
    _traffic(hotline)
    rows = raw.rows()
    stream = next(iter(_request_rows(raw).values()))
    last = stream[-1]
    forged = dict(last, version=last["version"] + 1, pos=rows[-1]["pos"] + 1)
    s_hash = _oracle_stream(last["stream"], forged)
    raw.q(
        "INSERT INTO stored_events ({pos}, originator_id, originator_version, topic, state, chain_stream, chain_global, chain_prev) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        forged["pos"],
        raw.oid(last["id"]),
        forged["version"],
        last["topic"],
        last["state"],
        s_hash,
        _oracle_global(rows[-1]["global"], forged["pos"], s_hash),
        rows[-1]["pos"],
    )
    report = verify(hotline.store)
    assert report.first_break is not None
    assert (report.first_break.position, report.first_break.what) == (forged["pos"], "inserted")


def test_a_forged_event_in_a_gap_is_caught(hotline: Hotline, raw: Raw) -> None:
    """PostgreSQL's positions have gaps (rolled-back transactions): a forgery placed in one,
    with links computed onto its predecessor, is named by nobody."""
    refs = _traffic(hotline, requests=3, notes=1)
    if raw.pg:
        # What a rolled-back insert leaves: a position taken from the sequence, never used.
        gap = int(raw.q("SELECT nextval(pg_get_serial_sequence('public.stored_events', 'notification_id'))")[0][0])
    else:
        # SQLite has no gaps of its own: the attacker moves the last row up by one.
        top = raw.rows()[-1]["pos"]
        raw.q("UPDATE stored_events SET rowid = rowid + 1 WHERE rowid = ?", top)
        raw.q("UPDATE audit_chain_head SET position = position + 1")
        gap = top
    hotline.bus.execute(c.AddNote(ref=refs[0], text="after the gap"), AGENT)
    rows = raw.rows()
    before = max((r for r in rows if r["pos"] < gap), key=lambda r: r["pos"])
    other = next(r for r in rows if r["version"] == 1)
    forged = dict(other, id=str(uuid.uuid4()), pos=gap)
    s_hash = _oracle_stream(None, forged)
    raw.q(
        "INSERT INTO stored_events ({pos}, originator_id, originator_version, topic, state, chain_stream, chain_global, chain_prev) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        gap,
        raw.oid(forged["id"]),
        1,
        other["topic"],
        other["state"],
        s_hash,
        _oracle_global(before["global"], gap, s_hash),
        before["pos"],
    )
    report = verify(hotline.store)
    assert report.first_break is not None
    assert report.first_break.position == gap
    assert report.first_break.what == "inserted"


def _rewrite_tail(raw: Raw) -> tuple[list[dict[str, Any]], int]:
    """Changes the last two events of a request (a note's text) and recomputes their
    stream hashes: the stream chain is consistent again. Returns the stream and the
    first rewritten position."""
    stream = next(iter(_request_rows(raw).values()))
    tail = stream[-2:]
    previous = stream[-3]["stream"]
    for row in tail:
        state = json.loads(row["state"]) if row["state"].startswith(b"{") else None
        new_state = json.dumps(state).replace("note", "NOTE").encode() if state is not None else row["state"][:-1] + b" "
        assert new_state != row["state"]
        row["state"] = new_state
        row["stream"] = _oracle_stream(previous, row)
        raw.q("UPDATE stored_events SET state = ?, chain_stream = ? WHERE {pos} = ?", new_state, row["stream"], row["pos"])
        previous = row["stream"]
    return stream, tail[0]["pos"]


def test_a_consistently_rewritten_stream_tail_is_caught_by_the_global_chain(hotline: Hotline, raw: Raw) -> None:
    _traffic(hotline)
    _, first = _rewrite_tail(raw)
    report = verify(hotline.store)
    assert report.first_break is not None
    assert (report.first_break.position, report.first_break.what) == (first, "rewritten")
    assert not any(b.what == "changed" for b in report.breaks)  # the stream chain itself is consistent


def test_a_rewrite_of_the_whole_chain_is_caught_by_a_copied_out_checkpoint(hotline: Hotline, raw: Raw, tmp_path: Path) -> None:
    _traffic(hotline)
    copied = tmp_path / "copied-out.jsonl"
    mark = write_checkpoint(hotline.store, copied)
    assert mark is not None and mark.position == raw.rows()[-1]["pos"]
    _, first = _rewrite_tail(raw)
    _rechain_from(raw, first)
    assert verify(hotline.store, checkpoints=[]).ok  # consistent: the chain alone cannot tell
    report = verify(hotline.store, checkpoints=copied)
    assert report.first_break is not None
    assert (report.first_break.position, report.first_break.what) == (mark.position, "checkpoint")
    # The store's own checkpoint file is read by default (the same mark was not written there).
    assert verify(hotline.store).ok
    write_checkpoint(hotline.store)
    assert verify(hotline.store).ok


def test_periodic_checkpoints_are_logged_and_written(hotline: Hotline, caplog: pytest.LogCaptureFixture) -> None:
    hotline.store.checkpointer.every = 10
    before = hotline.store.max_position()
    with caplog.at_level(logging.INFO, logger="hotline.audit"):
        _traffic(hotline, requests=6, notes=2)
    path = hotline.store.audit_checkpoint_file
    marks = audit_chain.read_checkpoints(path)
    top = hotline.store.max_position()
    assert len(marks) == top // 10 - before // 10 > 0  # one per multiple of 10 crossed
    assert all(m.reason == "periodic" for m in marks)
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("audit chain checkpoint")]
    assert logged == [f"audit chain checkpoint: position {m.position}, global hash {m.global_hash} (periodic)" for m in marks]
    report = verify(hotline.store)
    assert report.ok and report.checkpoints_checked == len(marks)


def test_an_existing_store_without_the_chain_is_upgraded(hotline: Hotline, raw: Raw) -> None:
    """A store written before the chain: the columns are added on start, its old rows stay
    unchained, and the chain starts at the first event written after."""
    refs = _traffic(hotline, requests=2, notes=1)
    settings, clock = hotline.settings, hotline.clock
    old = hotline.store.max_position()
    hotline.close()
    for column in ("chain_stream", "chain_global", "chain_prev"):
        raw.q(f"ALTER TABLE stored_events DROP COLUMN {column}")
    raw.q("DROP TABLE audit_chain_head")
    if raw.pg:
        raw.q("DROP FUNCTION stored_events_append_chained")
    h = Hotline.start(settings, clock)
    try:
        h.bus.execute(c.AddNote(ref=refs[0], text="after the upgrade"), AGENT)
        report = verify(h.store)
        assert report.ok, report.as_dict()
        assert report.unchained_before_start == old
        assert report.events_checked == h.store.max_position() - old > 0
        # An old row changed now is not covered (it was not chained); a new one is.
        rows = raw.rows()
        assert rows[old]["prev"] == 0 and rows[old - 1]["stream"] is None
        raw.set_state(rows[old]["pos"], rows[old]["state"] + b" ")
        assert verify(h.store).first_break.position == rows[old]["pos"]  # type: ignore[union-attr]
    finally:
        h.close()
        hotline.close = lambda: None  # type: ignore[method-assign]


def test_an_unchained_write_after_the_chain_began_is_reported(hotline: Hotline, raw: Raw) -> None:
    """``audit_chain=false`` is for measuring only: what it writes is not covered, and says so."""
    refs = _traffic(hotline, requests=2, notes=1)
    settings, clock = hotline.settings, hotline.clock
    hotline.close()
    hotline.close = lambda: None  # type: ignore[method-assign]
    h = Hotline.start(settings.model_copy(update={"audit_chain": False}), clock)
    try:
        h.bus.execute(c.AddNote(ref=refs[0], text="unchained"), AGENT)
        report = verify(h.store)
        assert report.first_break is not None
        assert (report.first_break.position, report.first_break.what) == (h.store.max_position(), "inserted")
    finally:
        h.close()


def test_an_erasure_never_breaks_the_chain(hotline: Hotline, raw: Raw) -> None:
    """The chain covers the stored bytes (personal fields as ciphertext): destroying a
    citizen's key changes none of them, so the store still verifies."""
    from domain.base import Actor as _Actor
    from infra.privacy import erase_citizen

    _traffic(hotline, requests=2, notes=1)
    first = hotline.bus.execute(
        c.RegisterRequest(
            kind="action", channel="phone", description="to erase", contact=c.Contact(name="Erin Erased", phone="+39 06 99999999")
        ),
        AGENT,
    ).result
    before = {r["pos"]: r["state"] for r in raw.rows()}
    erase_citizen(hotline, str(first["citizen_id"]), "the citizen asked", _Actor("admin", "administrator"))
    after = raw.rows()
    assert all(before[r["pos"]] == r["state"] for r in after if r["pos"] in before)  # history untouched
    report = verify(hotline.store)
    assert report.ok, report.as_dict()
    assert report.events_checked == len(after) > len(before)  # the erasure itself is chained


def test_the_parallel_walk_reports_what_the_single_one_does(hotline: Hotline, raw: Raw) -> None:
    """Large stores split the stream chains over worker processes: same verdicts."""
    _traffic(hotline)
    rows = raw.rows()
    flipped, deleted = rows[len(rows) // 3], rows[2 * len(rows) // 3]
    raw.set_state(flipped["pos"], flipped["state"][:-1] + bytes([flipped["state"][-1] ^ 0x20]))
    raw.q("DELETE FROM stored_events WHERE {pos} = ?", deleted["pos"])
    one = verify(hotline.store, workers=1)
    three = verify(hotline.store, workers=3)
    assert [b.as_dict() for b in three.breaks] == [b.as_dict() for b in one.breaks]
    assert (one.breaks[0].position, one.breaks[0].what) == (flipped["pos"], "changed")
    assert any(b.position == deleted["pos"] and b.what == "deleted" for b in one.breaks)
    assert three.events_checked == one.events_checked == len(rows) - 1
