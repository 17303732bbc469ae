"""The wallboard's "today" is the hotline's local day (Europe/Rome), DST included, and its
longest wait reads "1d 16h", not "2d"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from api.app import create_app
from api.console.web import Formats
from domain.base import FixedClock
from domain.contact_center import commands as cc
from infra.read_store import ReadStore, make_engine
from infra.runtime import Hotline
from infra.settings import Settings
from projections import wallboard
from tests.auth import SignedInClient
from tests.contact_center.harness import SUPERVISOR, SYSTEM, Center

ROME = ZoneInfo("Europe/Rome")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def night(tmp_path: Path) -> Iterator[tuple[Center, ReadStore]]:
    center = Center(clock=FixedClock(utc("2025-01-14T20:00:00")))
    rs = ReadStore(make_engine(f"sqlite:///{tmp_path / 'rm.sqlite'}"), [wallboard.projection])
    rs.create_tables()
    yield center, rs
    center.close()


def calls(center: Center, at: list[str], *, answered: bool = False) -> None:
    """A call at each UTC time: answered after 5 s, or abandoned after 1 s."""
    for moment in at:
        center.clock.current = utc(moment)
        cid = center.arrive("q")
        if answered:
            center.route()
            center.tick(5)
            center.answer(cid, "A")
            center.end(cid, "A")
        else:
            center.clock.advance(seconds=1)
            center.run(cc.Abandon(contact_id=cid))


def today(center: Center, rs: ReadStore, now: str, zone: Any = ROME) -> dict[str, Any]:
    rs.apply(center.envelopes())
    with rs.engine.connect() as conn:
        (q,) = wallboard.wallboard(conn, utc(now), zone)["queues"]
    return q


def test_calls_after_local_midnight_count_today(night: tuple[Center, ReadStore]) -> None:
    center, rs = night
    center.queue("q", sl_seconds=20, wrap_seconds=0)
    center.login("A", ["q"])
    calls(center, ["2025-01-14T22:30:00"])  # 23:30 in Rome: yesterday
    calls(center, ["2025-01-14T23:30:00", "2025-01-15T00:05:00"], answered=True)  # 00:30 and 01:05 in Rome: today
    q = today(center, rs, "2025-01-15T00:10:00")
    assert (q["arrived_today"], q["answered_today"], q["abandoned_today"], q["service_level_today"]) == (2, 2, 0, 1.0)
    # Per UTC day (what the board showed): the call of 00:30 in Rome was missing.
    utc_day = today(center, rs, "2025-01-15T00:10:00", zone=None)
    assert (utc_day["arrived_today"], utc_day["answered_today"]) == (1, 1)
    # Just before local midnight the Rome day is the 14th: one abandoned call, nothing answered.
    q = today(center, rs, "2025-01-14T22:59:59")
    assert (q["arrived_today"], q["answered_today"], q["abandoned_today"]) == (1, 0, 1)


def test_the_autumn_day_of_25_hours(night: tuple[Center, ReadStore]) -> None:
    center, rs = night
    center.queue("q")
    # 23:30 CEST on the 25th | 00:30 CEST, 02:30 CET (after the clocks went back), 23:30 CET on the 26th | 00:30 CET on the 27th
    calls(center, ["2025-10-25T21:30:00", "2025-10-25T22:30:00", "2025-10-26T01:30:00", "2025-10-26T22:30:00", "2025-10-26T23:30:00"])
    assert today(center, rs, "2025-10-26T22:45:00")["arrived_today"] == 3
    assert today(center, rs, "2025-10-26T22:45:00", "Europe/Rome")["abandoned_today"] == 3  # the zone by name
    assert today(center, rs, "2025-10-26T23:45:00")["arrived_today"] == 1


def test_the_spring_day_of_23_hours(night: tuple[Center, ReadStore]) -> None:
    center, rs = night
    center.queue("q")
    # 23:45 CET on the 29th | 00:15 CET, 23:45 CEST on the 30th | 00:15 CEST on the 31st
    calls(center, ["2025-03-29T22:45:00", "2025-03-29T23:15:00", "2025-03-30T21:45:00", "2025-03-30T22:15:00"])
    assert today(center, rs, "2025-03-30T12:00:00")["arrived_today"] == 2
    assert today(center, rs, "2025-03-30T22:30:00")["arrived_today"] == 1


def test_local_day_bounds() -> None:
    assert wallboard.local_day(utc("2025-10-26T12:00:00"), ROME) == (utc("2025-10-25T22:00:00"), utc("2025-10-26T23:00:00"))
    assert wallboard.local_day(utc("2025-03-30T12:00:00"), ROME) == (utc("2025-03-29T23:00:00"), utc("2025-03-30T22:00:00"))
    start, end = wallboard.local_day(utc("2025-01-15T19:00:00"), ZoneInfo("Asia/Kolkata"))  # 00:30 on the 16th there
    assert (start, end) == (utc("2025-01-15T18:30:00"), utc("2025-01-16T18:30:00"))
    assert start.timestamp() % wallboard.SLOT_SECONDS == 0  # a half-hour zone's day is whole slots
    # A zone whose clocks skip midnight (Santiago, 7 September 2025): the day starts at the change.
    start, end = wallboard.local_day(utc("2025-09-07T12:00:00"), ZoneInfo("America/Santiago"))
    assert start == utc("2025-09-07T04:00:00") and end - start == timedelta(hours=23)


@pytest.mark.parametrize(
    ("lang", "seconds", "shown"),
    [
        ("en", 40 * 3600, "1d 16h"),
        ("en", 40 * 3600 + 3599, "1d 16h"),  # floored, never rounded up
        ("en", 200, "3m 20s"),
        ("en", 7200 + 30, "2h"),
        ("en", 12.7, "12s"),
        ("it", 40 * 3600, "1g 16h"),
        ("zh", 40 * 3600, "1天16小时"),
        ("ar", 40 * 3600, "1 ي و16 س"),
    ],
)
def test_waits_are_floored_to_two_units(lang: str, seconds: float, shown: str) -> None:
    assert Formats(lang, "Europe/Rome").elapsed(seconds) == shown


def test_the_console_wallboard_in_local_time_with_a_callback_of_40_hours(tmp_path: Path) -> None:
    started = utc("2025-01-13T14:49:00")
    clock = FixedClock(started)
    hotline = Hotline.start(Settings(data_dir=tmp_path, time_zone="Europe/Rome"), clock=clock)
    try:
        from consumers.router import Router

        run = hotline.bus.execute
        run(
            cc.DefineQueue(queue_id="general", sl_seconds=20, wrap_seconds=0, max_wait_seconds=300, overflow=cc.Overflow(to="callback")),
            SUPERVISOR,
        )
        router = Router(hotline.store, hotline.bus)
        caller = run(cc.ContactArrives(channel="phone", queue_id="general", language="zh", phone="+390612345678"), SYSTEM).result["id"]
        clock.advance(seconds=300)
        router.run_until_idle()  # nobody to take it: a callback (virtual hold)
        clock.current = utc("2025-01-14T23:05:00")  # 00:05 in Rome on the 15th
        run(cc.ContactArrives(channel="phone", queue_id="general", language="it", phone="+390612345679"), SYSTEM)
        clock.current = utc("2025-01-15T06:49:00")  # 40 h after the first call; 07:49 in Rome
        with SignedInClient(create_app(hotline=hotline)) as client:
            html = client.get("/console/wallboard", headers={"Accept-Language": "en"}).text
            row = re.search(r'<tr data-queue="general".*?</tr>', html, re.S)
            assert row is not None, html
            cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)]
            # Waiting: the caller of 00:05 (7 h 44 min, not "8h"); the callback of 40 h under
            # callbacks, not as a wait of "2d" in alarm.
            assert cells[0] == "1" and cells[1] == "7h 44m", cells
            assert cells[5] == "1", cells  # callbacks scheduled
            assert "wait over target" in cells[6]  # the caller's 7 h wait, not the callback
            board = client.get("/wallboard").json()
            assert next(q for q in board["queues"] if q["queue_id"] == "general")["callbacks_scheduled"] == 1
        with hotline.read_store.engine.connect() as conn:
            (q,) = wallboard.wallboard(conn, clock.now(), hotline.settings.time_zone)["queues"]
            assert q["arrived_today"] == 1  # the call of 00:05 in Rome: today there, yesterday in UTC
        assert caller
    finally:
        hotline.close()


@pytest.mark.parametrize(("zone", "chosen"), [("Europe/Rome", "A"), (None, "B")])
def test_fewest_contacts_today_counts_the_local_day(zone: str | None, chosen: str) -> None:
    center = Center(clock=FixedClock(utc("2025-01-14T22:00:00")))
    try:
        from consumers.router import Router

        center.router = Router(center.store, center.bus, time_zone=zone)
        center.queue("q", strategy="fewest_contacts", wrap_seconds=0)
        center.login("A", ["q"])
        center.login("B", ["q"], ready=False)

        def handled_by(at: str, agent: str) -> None:
            center.clock.current = utc(at)
            cid = center.arrive("q")
            center.route()
            assert center.offered_to(cid) == agent
            center.answer(cid, agent)
            center.end(cid, agent)
            center.route()

        handled_by("2025-01-14T22:10:00", "A")  # 23:10 in Rome: the 14th
        handled_by("2025-01-14T22:20:00", "A")
        center.clock.current = utc("2025-01-14T23:05:00")
        center.presence("B", "available")
        center.presence("A", "not_ready", "break")
        handled_by("2025-01-14T23:10:00", "B")  # 00:10 in Rome: the 15th
        center.clock.current = utc("2025-01-14T23:20:00")
        center.presence("A", "available")
        center.clock.current = utc("2025-01-14T23:30:00")
        cid = center.arrive("q")
        center.route()
        # In Rome A has taken nothing today and B one; by the UTC day A has taken two.
        assert center.offered_to(cid) == chosen
    finally:
        center.close()
