"""Per-citizen encryption of ``personal`` fields (issue 13, item 3): what the database
holds, what the store gives back, and that a changed ciphertext is never read as erased."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import MapperDeserialisationError

from consumers.fast_decode import decoder_for
from domain.base import Actor, FixedClock
from domain.envelope import Envelope
from domain.privacy.aggregate import ERASED
from domain.requests import commands as c
from infra.citizen_keys import KeyMissing
from infra.runtime import Hotline
from infra.settings import Settings
from infra.transcoder import TamperedPersonalData
from tests.conftest import load_catalogue

AGENT = Actor("op1", "agent")
NAME, PHONE, EMAIL = "Ottavia Quercioli", "+39 06 9876 5432", "ottavia.quercioli@example.org"
E164, DIGITS = "+390698765432", "0698765432"
NEEDLES = (NAME, "Quercioli", E164, DIGITS, EMAIL, "ottavia.quercioli")


def register(h: Hotline, **contact: Any) -> dict[str, Any]:
    contact = contact or {"name": NAME, "phone": PHONE, "email": EMAIL}
    cmd = c.RegisterRequest(
        kind="information", channel="web", description="When does the registry office open?", contact=c.Contact(**contact)
    )
    return h.bus.execute(cmd, AGENT).result


def stored_states(h: Hotline) -> list[tuple[str, int, bytes]]:
    """(originator id, version, state) of every stored event, read from the database itself."""
    if h.settings.database_url is None:
        with sqlite3.connect(h.settings.sqlite_events_path) as conn:
            return [(str(o), v, bytes(s)) for o, v, s in conn.execute("SELECT originator_id, originator_version, state FROM stored_events")]
    with psycopg.connect(h.settings.database_url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'state' "
                "AND table_name IN (SELECT table_name FROM information_schema.columns WHERE column_name = 'originator_version')"
            )
        ]
        assert tables, "no event table found"
        return [
            (str(o), v, bytes(s)) for t in tables for o, v, s in conn.execute(f'SELECT originator_id, originator_version, state FROM "{t}"')
        ]


def test_the_database_holds_no_plaintext_and_the_store_gives_it_back(hotline: Hotline) -> None:
    out = register(hotline)
    states = stored_states(hotline)
    assert any(b"hotline_sealed" in s for _, _, s in states)
    for needle in (*NEEDLES, "registry office"):  # the description too: the citizen's own words (Settings.encrypt_citizen_text)
        assert not any(needle.encode().lower() in s.lower() for _, _, s in states), needle
    descriptions = [e.data["description"] for e in hotline.store.envelopes(0, 1000) if e.type == "hotline.request.registered.v1"]
    assert descriptions == ["When does the registry office open?"]
    personal = [e.data["personal"] for e in hotline.store.envelopes(0, 1000) if e.data.get("personal")]
    assert personal and all(p["name"] == NAME and p["phone"] == E164 and p["email"] == EMAIL for p in personal)
    citizen = hotline.store.read_reference(__import__("uuid").UUID(out["citizen_id"]))
    assert citizen.personal["name"] == NAME
    # One key for the citizen, stored (durably) apart from the events.
    assert hotline.store.keys.counts() == {"keys": 1, "live": 1, "erased": 0}


def test_relay_and_replay_decoders_decrypt_and_kafka_stays_masked(sqlite_hotline: Hotline) -> None:
    h = sqlite_hotline
    register(h)
    notifications = h.store.notifications(0, 1000)
    fast = decoder_for(h.store).envelopes(notifications)
    assert fast == [h.store.to_envelope(n) for n in notifications]  # the fast path falls back for sealed fields
    for env in fast:
        document = str(env.to_cloudevent(mask_personal=True))
        assert not any(needle in document for needle in NEEDLES)


def test_the_relays_masked_decoder_publishes_what_the_mapper_path_publishes(sqlite_hotline: Hotline) -> None:
    """The relay decodes sealed fields as masked without the key; what it publishes is what
    decrypting and then masking gives (an erased citizen's fields too)."""
    h = sqlite_hotline
    out = register(h)
    register(h, name="Other Person", phone="+39 06 1111 2222")
    h.store.keys.destroy(h.store.keys.scope(out["citizen_id"]))
    h.store.forget_personal_data()
    notifications = h.store.notifications(0, 1000)
    masked = decoder_for(h.store, masked=True).envelopes(notifications)
    assert any(b"hotline_sealed" in bytes(n.state) for n in notifications)
    for fast, n in zip(masked, notifications, strict=True):
        slow = h.store.to_envelope(n)
        kw = {"mask_personal": True, "mask_citizen_text": True}
        assert fast.to_cloudevent(**kw) == slow.to_cloudevent(**kw)
        assert not any(needle in str(fast) for needle in NEEDLES)


def test_a_destroyed_key_reads_as_erased_with_the_same_shape(sqlite_hotline: Hotline) -> None:
    h = sqlite_hotline
    out = register(h, name=NAME, phone=PHONE)
    h.store.keys.destroy(h.store.keys.scope(out["citizen_id"]))
    h.store.forget_personal_data()
    personal = [e.data["personal"] for e in h.store.envelopes(0, 1000) if e.data.get("personal")]
    assert personal and all(p == {"name": ERASED, "phone": ERASED, "email": None, "address": None} for p in personal)
    # A new contact of the same citizen after the erasure gets a new key, and reads back.
    again = register(h, name="New Name", phone=PHONE)
    assert again["citizen_id"] == out["citizen_id"]  # recognised by the claim on the number
    last = [e for e in h.store.envelopes(0, 1000) if e.stream == "request" and e.data.get("personal")][-1]
    assert last.data["personal"]["name"] == "New Name"


def _rewrite(path: Path, change: Any) -> None:
    with sqlite3.connect(path) as conn:
        rows = [r for r in conn.execute("SELECT rowid, state FROM stored_events").fetchall() if b"hotline_sealed" in bytes(r[1])]
        rowid, state = rows[0]
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (change(bytes(state), rows), rowid))


def _reread(h: Hotline) -> Any:
    h.store.forget_personal_data()
    return [h.store.to_envelope(n) for n in h.store.notifications(0, 1000)]


def test_a_changed_ciphertext_fails_loudly(sqlite_hotline: Hotline) -> None:
    h = sqlite_hotline
    register(h)

    def flip(state: bytes, rows: Any) -> bytes:
        at = state.index(b'"c":"') + 10
        return state[:at] + (b"A" if state[at : at + 1] != b"A" else b"B") + state[at + 1 :]

    _rewrite(h.settings.sqlite_events_path, flip)
    with pytest.raises((TamperedPersonalData, MapperDeserialisationError)):
        _reread(h)


def test_a_ciphertext_moved_to_another_event_fails_loudly(sqlite_hotline: Hotline) -> None:
    h = sqlite_hotline
    register(h)

    def move(state: bytes, rows: Any) -> bytes:
        other = bytes(rows[1][1])  # the request's sealed contact, same key, another stream
        start, end = other.index(b'"personal":'), other.index(b"}}", other.index(b'"personal":')) + 2
        mine_start = state.index(b'"personal":')
        mine_end = state.index(b"}}", mine_start) + 2
        return state[:mine_start] + other[start:end] + state[mine_end:]

    _rewrite(h.settings.sqlite_events_path, move)
    with pytest.raises((TamperedPersonalData, MapperDeserialisationError)):
        _reread(h)


def test_a_key_the_table_never_held_fails_loudly(sqlite_hotline: Hotline) -> None:
    h = sqlite_hotline
    register(h)
    with sqlite3.connect(h.settings.sqlite_events_path) as conn:
        conn.execute("DELETE FROM citizen_keys")
    h.store.keys._keys.clear()
    with pytest.raises((KeyMissing, MapperDeserialisationError)):
        _reread(h)


def test_switched_off_stores_clear_text_and_reads_both(tmp_path: Path, clock: FixedClock) -> None:
    h = Hotline.start(Settings(data_dir=tmp_path, encrypt_personal=False), clock)
    load_catalogue(h)
    register(h, name="Plain Person", phone="+39 06 5555 0101")
    h.close()
    h = Hotline.start(Settings(data_dir=tmp_path), clock)
    try:
        register(h)
        states = stored_states(h)
        assert any(b"Plain Person" in s for _, _, s in states)
        assert not any(NAME.encode() in s for _, _, s in states)
        names = {e.data["personal"]["name"] for e in h.store.envelopes(0, 1000) if e.data.get("personal")}
        assert {"Plain Person", NAME} <= names
    finally:
        h.close()


def test_a_failed_batch_leaves_no_key_behind_and_the_next_one_stores_its_own(hotline: Hotline, clock: FixedClock) -> None:
    """The keys of a batch are written with its events (PostgreSQL: inside the append) or
    just before them (SQLite): when the batch's transaction fails, no cache may keep a key
    the table never got, or the next events would be sealed under it and unreadable."""
    from eventsourcing.persistence import IntegrityError

    from domain.base import Context
    from domain.citizens.aggregate import Citizen, ContactDetails

    ctx = Context(AGENT, clock.now())
    first = Citizen.register(ContactDetails(name=NAME, phone=E164), "it", ctx)
    hotline.store.save(first)
    stale = hotline.store._rebuild(first.id)
    stale.prefer_language("en", ctx)
    hotline.store.save(stale)
    conflicting = hotline.store._rebuild(first.id)
    conflicting._pending_events.clear()
    conflicting.version = 1  # a stale copy: its next event takes version 2 again
    conflicting.prefer_language("ar", ctx)
    newcomer = Citizen.register(ContactDetails(name="Zeno Cosini", phone="+39 040 123 4567"), "it", ctx)
    pending = list(newcomer._pending_events)
    with pytest.raises(IntegrityError):
        hotline.store.save(newcomer, conflicting)
    newcomer._pending_events[:] = pending  # the bus retries a failed command the same way: anew
    # PostgreSQL: the key went with the failed transaction. SQLite: it was committed just
    # before the events (a key nothing uses, harmless) and the retry uses it.
    assert hotline.store.keys.counts()["keys"] == (1 if hotline.store.is_postgres else 2)
    hotline.store.save(newcomer)  # alone now: stores (or reuses) its key with its events
    assert hotline.store.keys.counts()["keys"] == 2
    cold = Hotline.start(hotline.settings, clock)  # another process: nothing cached
    try:
        assert cold.store._rebuild(newcomer.id).personal["name"] == "Zeno Cosini"
        assert cold.store._rebuild(first.id).personal["name"] == NAME
    finally:
        cold.close()


def test_a_consumer_completes_a_batch_of_masked_events_from_the_store(hotline: Hotline) -> None:
    """What the Kafka projection consumers do with a batch (consumers/kafka_projections.py
    ``PersonalData``): the masked personal fields and citizen text come back from the store,
    read as stretches of the log with the keys fetched together, for a cold process too."""
    from consumers.kafka_projections import PersonalData, key_ids_in

    for i in range(12):
        register(hotline, name=f"{NAME} {i}", phone=f"+39 06 9876 {5400 + i}")
    originals = hotline.store.envelopes(0, 10_000)
    masked = [Envelope.from_cloudevent(e.to_cloudevent(mask_personal=True, mask_citizen_text=True)) for e in originals]
    assert any(m.data.get("personal") and m.data["personal"].get("name") == "***" for m in masked)
    cold = Hotline.start(hotline.settings, hotline.clock)  # another process: no key cached
    try:
        restored = PersonalData(cold.store).restore(masked[::-1])[::-1]  # partitions interleave: any order
        assert key_ids_in(n.state for n in cold.store.notifications(0, 10_000)), "the sealed fields name their keys"
    finally:
        cold.close()
    for original, back in zip(originals, restored, strict=True):
        if back.stream in ("citizen", "request") and original.data.get("personal") is not None:
            assert back.data["personal"] == original.data["personal"]
        for field in back.citizen_text_fields:
            if back.stream in ("citizen", "request") and original.data.get(field) is not None:
                assert back.data[field] == original.data[field]
