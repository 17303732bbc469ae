"""Wallboard and agent desk read models, rebuilt from the events of a small scenario."""

from __future__ import annotations

from pathlib import Path

from domain.contact_center import commands as cc
from infra.read_store import ReadStore, make_engine
from infra.wiring import all_projections
from projections import agent_desk, wallboard
from tests.contact_center.harness import Center


def _read_store(tmp_path: Path, center: Center) -> ReadStore:
    rs = ReadStore(make_engine(f"sqlite:///{tmp_path / 'rm.sqlite'}"), [wallboard.projection, agent_desk.projection])
    rs.create_tables()
    rs.apply(center.envelopes())
    return rs


def test_projections_are_registered() -> None:
    names = {p.name for p in all_projections()}
    assert {"wallboard", "agent_desk"} <= names


def test_wallboard_and_desk(center: Center, tmp_path: Path) -> None:
    center.queue("q", sl_seconds=20, wrap_seconds=30)
    center.queue("g", grab=True, strategy="ring_all")
    center.login("A", ["q"])
    center.login("B", ["q", "g"])
    center.login("C", ["q"], ready=False)
    fast = center.arrive("q")
    center.route()
    who = center.offered_to(fast)
    assert who in ("A", "B")
    center.tick(5)
    center.answer(fast, who)
    other = "B" if who == "A" else "A"
    slow = center.arrive("q")
    center.route()
    center.tick(30)
    center.answer(slow, other)  # waited 30 s: outside the 20 s target
    waiting1 = center.arrive("q", priority=0)
    center.tick(10)
    waiting2 = center.arrive("q", priority=3)
    gone = center.arrive("q")
    center.tick(2)
    center.run(cc.Abandon(contact_id=gone))
    grab_me = center.arrive("g")
    center.tick(60)
    center.end(fast, who)
    center.route()  # the end frees nobody (wrap-up 30 s): the waiting stay waiting

    rs = _read_store(tmp_path, center)
    now = center.clock.now()
    with rs.engine.connect() as conn:
        board = wallboard.wallboard(conn, now)
        q = next(x for x in board["queues"] if x["queue_id"] == "q")
        assert q["answered_today"] == 2 and q["abandoned_today"] == 1
        # The one abandon hung up after 2 s: a short abandon, no failure of service.
        assert q["short_abandoned_today"] == 1 and q["service_level_today"] == 0.5
        assert q["waiting"] == 2
        assert q["longest_wait_seconds"] == 72.0
        assert board["agents_by_state"] == {"on_contact": 1, "wrap_up": 1, "not_ready": 1}
        order = [r["contact_id"] for r in wallboard.waiting_contacts(conn, now, "q")]
        assert order == [waiting2, waiting1]  # priority first
        assert (wallboard.queue_position(conn, now, waiting1) or {}).get("position") == 2
        desk_b = agent_desk.desk(conn, "B", now)
        assert [r["contact_id"] for r in desk_b["grabbable"]] == [grab_me]
        desk_who = agent_desk.desk(conn, who, now)
        assert [r["contact_id"] for r in desk_who["wrapping"]] == [fast]
        desk_other = agent_desk.desk(conn, other, now)
        assert [r["contact_id"] for r in desk_other["contacts"]] == [slow]


def test_desk_shows_the_current_offer(center: Center, tmp_path: Path) -> None:
    center.queue("q")
    center.login("A", ["q"], languages=["it"])
    cid = center.arrive("q", language="it", subject="bin not collected")
    center.route()
    rs = _read_store(tmp_path, center)
    with rs.engine.connect() as conn:
        d = agent_desk.desk(conn, "A", center.clock.now())
    assert d["agent"]["state"] == "reserved"
    assert [(o["contact_id"], o["language"], o["subject"]) for o in d["offers"]] == [(cid, "it", "bin not collected")]


def test_the_service_level_leaves_short_abandons_out(center: Center, tmp_path: Path) -> None:
    """As the reports do (README, KPI definitions): answered within the target ÷ (answered +
    abandoned − those who hung up within SHORT_ABANDON_SECONDS)."""
    center.queue("q", sl_seconds=20, wrap_seconds=0)
    center.login("A", ["q"])
    answered = center.arrive("q")
    center.route()
    center.answer(answered, "A")  # at once: within the target
    patient, hasty = center.arrive("q"), None
    center.tick(10)
    hasty = center.arrive("q")
    center.tick(2)
    center.run(cc.Abandon(contact_id=hasty))  # 2 s: short
    center.run(cc.Abandon(contact_id=patient))  # 12 s: a real abandon
    with _read_store(tmp_path, center).engine.connect() as conn:
        q = next(x for x in wallboard.wallboard(conn, center.clock.now())["queues"] if x["queue_id"] == "q")
    assert (q["answered_today"], q["abandoned_today"], q["short_abandoned_today"]) == (1, 2, 1)
    assert q["service_level_today"] == 0.5
