"""The erasure test of issue 13 (item 3), embedded and on PostgreSQL.

A citizen calls (phone), files on the web and by email, gets a reply by email; every
read model, the DuckDB analytics file (and its snapshot), the outbox and the log take it
in. An administrator erases them. Then their name, phone number and email are searched
for, as bytes and as text, in every SQLite file, every PostgreSQL table (a dump), the
DuckDB files, the outbox and the log: 0 hits. Before the erasure the same search finds
them (the oracle: the search can find what it looks for). Every projection is replayed
from the store after the erasure and equals the live read model; the KPIs are the same
before and after. The Kafka half (topics) is ``tests/kafka/test_erasure_kafka.py``.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
import sqlalchemy as sa

from analytics import kpis
from analytics.ingest import AnalyticsStore
from api.app import create_app
from consumers.notifications import NotificationConsumer
from consumers.replay import rebuild
from domain.base import Actor, FixedClock
from domain.contact_center import commands as cc
from domain.privacy.aggregate import ERASED
from domain.requests import commands as c
from infra.logging import configure_logging
from infra.runtime import Hotline
from infra.settings import Settings
from infra.wiring import all_projections
from projections import citizen_history, request_status
from tests.auth import SignedInClient, actor

AGENT = Actor("op1", "agent")
SUPERVISOR = Actor("sup1", "supervisor")
NAME, PHONE, EMAIL = "Zenobia Marchetti-Valdès", "+39 06 7777 1234", "zenobia.valdes@example.org"
# Every form the data could be stored in: as given, normalised, digits as a search indexes them.
# Words only the citizen wrote: in a description and in an email reply (sealed with their key
# under the default policy, Settings.encrypt_citizen_text).
DESCRIBED, REPLIED = "Quirinalvaglio", "Sgrottavecchia"
NEEDLES = (
    "Zenobia", "Marchetti", "Valdès", "+39 06 7777 1234", "+390677771234", "390677771234", "0677771234", EMAIL, "zenobia.valdes",
    DESCRIBED, REPLIED, DESCRIBED.lower(), REPLIED.lower(),
)  # fmt: skip
OTHER = {"name": "Ugo Fantozzi", "phone": "+39 06 1111 2222", "email": "ugo.fantozzi@example.org"}


class _Everything(logging.Formatter):
    """The message and every field of the record (what structlog's JSON lines would carry)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.name} {record.getMessage()} {vars(record)!r}"


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """Everything every logger says during the test, at DEBUG, as the JSON log lines would carry it."""
    path = tmp_path / "hotline.log"
    # The product's logging (structlog through the standard library), at DEBUG: lines
    # logged with structlog (the personal-data read log, …) reach the file too.
    configure_logging(Settings(log_level="debug"))
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(_Everything())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def _register(
    h: Hotline, channel: str, contact: dict[str, Any], description: str = "When does the registry office open on Saturdays?", **kw: Any
) -> dict[str, Any]:
    cmd = c.RegisterRequest(
        kind="information",
        channel=channel,  # type: ignore[arg-type]
        description=description,
        contact=c.Contact(**contact),
        **kw,
    )
    return h.bus.execute(cmd, AGENT).result


def _life_of_a_citizen(h: Hotline, clock: FixedClock) -> str:
    h.bus.execute(cc.DefineQueue(queue_id="general", names={"en": "General"}), SUPERVISOR)
    # Phone: the call arrives before anybody knows the caller, then a request is registered.
    h.bus.execute(cc.ContactArrives(channel="phone", queue_id="general", phone=PHONE), Actor("pbx", "system"))
    first = _register(h, "phone", {"name": NAME, "phone": PHONE}, f"The fountain in via {DESCRIBED} leaks")
    clock.advance(minutes=10)
    h.bus.execute(c.WaitForCitizen(ref=first["reference"], reason="Which fountain, the number on it?"), AGENT)
    clock.advance(minutes=10)
    # The citizen's answer by email: kept as a message, quoted by the resumed clock's note.
    answer = f"It is the one by the {REPLIED} bakery, number 12."
    h.bus.execute(c.AddCitizenMessage(ref=first["reference"], text=answer, channel="email"), AGENT)
    clock.advance(hours=1)
    _register(h, "web", {"name": NAME, "phone": PHONE, "email": EMAIL}, reply_channel="email")
    clock.advance(hours=1)
    mail = _register(h, "email", {"name": NAME, "phone": PHONE, "email": EMAIL}, reply_channel="email")
    clock.advance(minutes=30)
    h.bus.execute(c.FinalReply(ref=mail["reference"], message="Saturdays 9-12.", channel="email"), AGENT)
    h.bus.execute(c.Close(ref=mail["reference"]), AGENT)
    _register(h, "web", OTHER)  # somebody else, who is not erased
    notifier = NotificationConsumer.from_settings(h)
    while notifier.run_once():
        pass
    return str(first["citizen_id"])


def _analytics(h: Hotline) -> AnalyticsStore:
    store = AnalyticsStore(h.settings.duckdb_path)
    store.ingest_envelopes(list(h.store.iter_envelopes()))
    store.publish_snapshot(force=True)
    return store


def _kpis(store: AnalyticsStore, h: Hotline) -> dict[str, Any]:
    start, end = h.clock.now() - timedelta(days=2), h.clock.now() + timedelta(days=1)
    with h.read_store.engine.connect() as conn:
        counts = {str(r[0]) + "/" + str(r[1]): r[2] for r in conn.execute(sa.select(request_status.COUNTS))}
        citizens = {
            r["id"]: (r["requests"], r["open_requests"], r["channels"])
            for r in conn.execute(sa.select(citizen_history.CITIZENS)).mappings()
        }
    return {
        "requests": kpis.request_kpis(store.conn, start, end),
        "contacts": kpis.contact_kpis(store.conn, start, end, "total"),
        "backlog": kpis.backlog(store.conn, end),
        "counts": store.counts(),
        "read_model_counts": counts,
        "citizens": citizens,
    }


# ------------------------------------------------------------------------ the search
def _hits(blob: bytes, where: str) -> list[str]:
    low = blob.lower()
    return [f"{where}: {n!r}" for n in NEEDLES if n.encode().lower() in low or n.encode("utf-16-le").lower() in low]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _duckdb_text(path: Path, writer: Any = None) -> bytes:
    """Every table and view of a DuckDB file as text (its storage compresses strings, so
    the bytes alone could hide a value). The open writer's connection for its own file."""
    out = []
    conn = writer if writer is not None else duckdb.connect(str(path), read_only=True)
    try:
        for (name,) in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall():
            out += [repr(r) for r in conn.execute(f'SELECT * FROM "{name}"').fetchall()]
    finally:
        if writer is None:
            conn.close()
    return "\n".join(out).encode()


def _pg_dump(url: str) -> bytes:
    found = shutil.which("pg_dump") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))), None)
    if found is not None:
        done = subprocess.run([str(found), "--data-only", url], capture_output=True, check=False)
        if done.returncode == 0:
            return done.stdout
    with psycopg.connect(url) as conn:  # without pg_dump: every table's rows as text
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return "\n".join(str(r) for t in tables for r in conn.execute(f'SELECT t::text FROM "{t}" t')).encode()


def search_everything(h: Hotline, log_file: Path, analytics: AnalyticsStore | None = None) -> list[str]:
    hits: list[str] = []
    root = h.settings.data_dir
    for path in _files(root):
        hits += _hits(path.read_bytes(), str(path.relative_to(root)))
        if path.suffix == ".duckdb" and not path.is_symlink():
            own = analytics is not None and path.resolve() == analytics.path.resolve()
            hits += _hits(_duckdb_text(path, analytics.conn if own and analytics else None), f"{path.name} (as text)")
    if h.settings.database_url:
        hits += _hits(_pg_dump(h.settings.database_url), "PostgreSQL dump")
    hits += _hits(log_file.read_bytes(), "log")
    return hits


def _sqlite_settle(h: Hotline) -> None:
    """Old row versions and the WAL: what a byte search of the files would still find."""
    if h.settings.database_url is None:
        for path in (h.settings.sqlite_events_path, h.settings.data_dir / "read_models.sqlite"):
            with sa.create_engine(f"sqlite:///{path}").connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


# ------------------------------------------------------------------------ read models
def _table_rows(h: Hotline) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with h.read_store.engine.connect() as conn:
        for projection in all_projections():
            for name, table in projection.tables.items():
                rows = conn.execute(sa.select(table)).mappings().all()
                out[name] = sorted(
                    json.dumps({k: v for k, v in r.items() if not k.startswith("tsv")}, sort_keys=True, default=str) for r in rows
                )
    return out


def test_erasure_leaves_no_trace_and_changes_no_count(hotline: Hotline, clock: FixedClock, log_file: Path) -> None:
    h = hotline
    citizen_id = _life_of_a_citizen(h, clock)
    analytics = _analytics(h)
    before = _kpis(analytics, h)
    _sqlite_settle(h)
    found = search_everything(h, log_file, analytics)
    # The oracle: before the erasure the search finds the citizen in the read models and the outbox.
    assert any("citizens" in f or "read_models" in f or "dump" in f for f in found), found
    assert any("outbox" in f for f in found), found
    # … and the citizen's own words, in the read models that copy them (never in the event store: sealed).
    assert any(repr(DESCRIBED) in f for f in found) and any(repr(REPLIED) in f for f in found), found
    assert not any("events" in f and (DESCRIBED in f or REPLIED in f) for f in found), found

    with SignedInClient(create_app(hotline=h)) as client:
        url = f"/citizens/{citizen_id}/erasure"
        assert client.post(url, json={"reason": "the citizen asked (GDPR art. 17)"}, headers=actor("sup1", "supervisor")).status_code == 403
        assert client.post(url, json={"reason": ""}, headers=actor("admin", "administrator")).status_code == 422
        assert (
            client.post(
                f"/citizens/{uuid.uuid4()}/erasure", json={"reason": "no such citizen"}, headers=actor("admin", "administrator")
            ).status_code
            == 404
        )
        answer = client.post(
            url, json={"reason": "the citizen asked (GDPR art. 17)", "subjects": []}, headers=actor("admin", "administrator")
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["keys_destroyed"] >= 1
        shown = client.get(f"/citizens/{citizen_id}", headers=actor("sup1", "supervisor")).json()
        assert shown["name"] == ERASED and shown["phone"] == ERASED and shown["email"] == ERASED
        assert shown["requests"] == 3

    erasure = [e for e in h.store.envelopes(0, 100_000) if e.type == "hotline.erasure.erased.v1"]
    assert len(erasure) == 1 and erasure[0].data["citizen_id"] == citizen_id and erasure[0].meta["actor_role"] == "administrator"
    assert erasure[0].data["reason"] == "the citizen asked (GDPR art. 17)"
    analytics.ingest_envelopes(list(h.store.iter_envelopes()))
    analytics.publish_snapshot(force=True)
    after = _kpis(analytics, h)
    analytics.close()
    # The erasure's own events (its record opened, the erasure, its carrying out) and the
    # release of the citizen's phone and email claims are the only new facts.
    assert after["counts"].pop("events") == before["counts"].pop("events") + 3 + 2
    assert after == before

    live = _table_rows(h)
    for projection in all_projections():
        rebuild(h.store, h.read_store, projection)
    replayed = _table_rows(h)
    assert replayed == live

    _sqlite_settle(h)
    assert search_everything(h, log_file) == []
    # The other citizen is untouched.
    assert [
        e.data["personal"]["name"] for e in h.store.envelopes(0, 100_000) if (e.data.get("personal") or {}).get("name") == OTHER["name"]
    ]


def test_retention_erases_only_citizens_whose_requests_all_closed_long_ago(sqlite_hotline: Hotline, clock: FixedClock) -> None:
    from domain.base import SYSTEM
    from domain.privacy.commands import ApplyRetention, RetentionCandidate
    from infra.privacy import apply_retention

    h = sqlite_hotline
    old = _register(h, "web", {"name": "Anna Antica", "phone": "+39 06 2000 0001"})
    h.bus.execute(c.FinalReply(ref=old["reference"], message="Done."), AGENT)
    h.bus.execute(c.Close(ref=old["reference"]), AGENT)
    still_open = _register(h, "web", {"name": "Bruno Aperto", "phone": "+39 06 2000 0002"})
    clock.advance(days=365 * 6)
    recent = _register(h, "web", {"name": "Carla Recente", "phone": "+39 06 2000 0003"})
    h.bus.execute(c.FinalReply(ref=recent["reference"], message="Done."), AGENT)
    h.bus.execute(c.Close(ref=recent["reference"]), AGENT)

    # The rule is the command's, on the requests themselves: a candidate that does not
    # qualify is kept whatever the caller says.
    keys = h.store.keys
    checked = h.bus.execute(
        ApplyRetention(
            cutoff=clock.now() - timedelta(days=365 * 5),
            candidates=[RetentionCandidate(citizen_id=str(recent["citizen_id"]), subjects=keys.scope(str(recent["citizen_id"])))],
        ),
        SYSTEM,
    ).result
    assert checked["erased"] == [] and checked["kept"] == [recent["citizen_id"]]

    outcome = apply_retention(h, years=5)
    assert outcome["erased"] == [old["citizen_id"]] and outcome["kept"] == []
    assert apply_retention(h, years=5)["erased"] == []  # nothing left to erase: not erased twice
    names = {
        e.aggregate_id: e.data["personal"]["name"] for e in h.store.envelopes(0, 10_000) if e.stream == "citizen" and e.data.get("personal")
    }
    assert names == {old["citizen_id"]: ERASED, still_open["citizen_id"]: "Bruno Aperto", recent["citizen_id"]: "Carla Recente"}
    erasures = [e for e in h.store.envelopes(0, 10_000) if e.type == "hotline.erasure.erased.v1"]
    assert [(e.data["basis"], e.meta["actor_role"]) for e in erasures] == [("retention", "system")]
