"""A generated day of hotline traffic as envelopes: contacts, agents, requests, searches.

Events follow the published contract (``hotline.contact.*``, ``hotline.agent.*``,
``hotline.request.*``, ``hotline.knowledge.search_performed.v1``); each aggregate's events
are in time order and the global positions follow time, as in the event store.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from domain.envelope import Envelope

QUEUES = ("q-general", "q-tax", "q-waste")
CHANNELS = ("phone", "phone", "phone", "chat", "web")
PROBLEMS = [(f"PC-{i:02d}", f"cat-{i % 4}", f"dept-{i % 3}") for i in range(8)]


@dataclass
class Traffic:
    envelopes: list[Envelope] = field(default_factory=list)
    _pending: list[tuple[datetime, str, str, str, int, dict[str, Any]]] = field(default_factory=list)
    _versions: dict[str, int] = field(default_factory=dict)

    def emit(self, at: datetime, stream: str, name: str, aggregate_id: str, **data: Any) -> None:
        v = self._versions.get(aggregate_id, 0) + 1
        self._versions[aggregate_id] = v
        self._pending.append((at, stream, name, aggregate_id, v, data))

    def finish(self) -> list[Envelope]:
        self._pending.sort(key=lambda e: (e[0], e[3], e[4]))
        self.envelopes = [
            Envelope(
                type=f"hotline.{stream}.{name}.v1",
                stream=stream,
                aggregate_id=agg,
                version=v,
                position=i + 1,
                time=at,
                data=data,
                meta={"actor_id": "sim", "actor_role": "system", "correlation_id": agg, "causation_id": None},
            )
            for i, (at, stream, name, agg, v, data) in enumerate(self._pending)
        ]
        return self.envelopes


def generate(day: datetime, seed: int = 7, contacts: int = 400, requests: int = 150, agents: int = 10, days: int = 1) -> list[Envelope]:
    """``days`` days of traffic starting at ``day`` (UTC midnight)."""
    rng = random.Random(seed)
    t = Traffic()
    citizens = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(40)]
    phones = [f"+3906{rng.randrange(10**7):07d}" for _ in range(60)]
    for d in range(days):
        base = day + timedelta(days=d)
        agent_ids = [f"agent-{i}" for i in range(agents)]
        for a in agent_ids:
            start = base + timedelta(hours=8, minutes=rng.randrange(0, 30))
            t.emit(start, "agent", "logged_in", a, state="available")
            # Not a state change: must not cut the agent's state interval.
            t.emit(start + timedelta(hours=2), "agent", "queues_changed", a, queues=list(QUEUES), changed_by=None)
            brk = base + timedelta(hours=12, minutes=rng.randrange(0, 60))
            t.emit(brk, "agent", "state_changed", a, state="break", reason="lunch")
            t.emit(brk + timedelta(minutes=30), "agent", "state_changed", a, state="available", reason=None)
            t.emit(base + timedelta(hours=17, minutes=rng.randrange(0, 30)), "agent", "logged_out", a, reason=None)
        for _ in range(contacts):
            cid = str(uuid.UUID(int=rng.getrandbits(128)))
            # Some arrive a few minutes before midnight of the next day, to test windows.
            at = (
                base + timedelta(seconds=rng.randrange(8 * 3600, 17 * 3600))
                if rng.random() > 0.02
                else base + timedelta(hours=23, minutes=58)
            )
            queue = rng.choice(QUEUES)
            channel = rng.choice(CHANNELS)
            outbound = rng.random() < 0.05
            t.emit(
                at,
                "contact",
                "arrived",
                cid,
                channel=channel,
                queue_id=queue,
                language=rng.choice(["it", "en", "zh"]),
                priority=rng.randrange(0, 3),
                personal={"phone": rng.choice(phones), "name": "X"},
                direction="outbound" if outbound else "inbound",
            )
            if rng.random() < 0.03:
                continue  # handled by the IVR: never queued, not offered
            q_at = at + timedelta(seconds=rng.randrange(5, 40))
            t.emit(q_at, "contact", "queued", cid, queue_id=queue, priority=1)
            wait = rng.choice([rng.uniform(0, 15), rng.uniform(0, 60), rng.uniform(0, 240)])
            if rng.random() < 0.15:
                t.emit(q_at + timedelta(seconds=wait), "contact", "abandoned", cid, queue_id=queue, wait_seconds=round(wait, 3))
                continue
            agent = rng.choice(agent_ids)
            offer_at = q_at + timedelta(seconds=max(0.0, wait - 3))
            if rng.random() < 0.1:
                other = rng.choice(agent_ids)
                t.emit(offer_at - timedelta(seconds=1), "contact", "offered", cid, agent_id=other, queue_id=queue)
                t.emit(offer_at - timedelta(seconds=0.5), "contact", "offer_timed_out", cid, agent_id=other, queue_id=queue)
            t.emit(offer_at, "contact", "offered", cid, agent_id=agent, queue_id=queue)
            ans = q_at + timedelta(seconds=wait)
            t.emit(ans, "contact", "answered", cid, agent_id=agent, queue_id=queue, wait_seconds=round(wait, 3))
            talk = rng.uniform(30, 400)
            hold = 0.0
            if rng.random() < 0.2:
                hold = rng.uniform(5, 60)
                t.emit(ans + timedelta(seconds=10), "contact", "held", cid, agent_id=agent)
                t.emit(ans + timedelta(seconds=10 + hold), "contact", "resumed", cid, agent_id=agent)
            if rng.random() < 0.1:
                cold = rng.random() < 0.5  # a cold transfer reports the first agent's leg
                t.emit(
                    ans + timedelta(seconds=talk / 2 + hold),
                    "contact",
                    "transferred",
                    cid,
                    from_agent_id=agent,
                    to_queue_id="q-experts",
                    to_agent_id=None,
                    mode="cold" if cold else "warm",
                    expert=True,
                    talk_seconds=round(talk / 2, 3) if cold else 0.0,
                )
            end = ans + timedelta(seconds=talk + hold)
            t.emit(end, "contact", "ended", cid, agent_id=agent, talk_seconds=round(talk, 3), hold_seconds=round(hold, 3))
            if rng.random() < 0.9:
                wrap = rng.uniform(5, 90)
                t.emit(
                    end + timedelta(seconds=wrap),
                    "contact",
                    "wrapped_up",
                    cid,
                    agent_id=agent,
                    wrap_seconds=round(wrap, 3),
                    disposition=rng.choice(["answered", "request_created", "transferred"]),
                )
            if rng.random() < 0.3:
                t.emit(end + timedelta(seconds=1), "contact", "request_linked", cid, request_id=str(uuid.uuid4()))
        for i in range(requests):
            rid = str(uuid.UUID(int=rng.getrandbits(128)))
            at = base + timedelta(seconds=rng.randrange(8 * 3600, 18 * 3600))
            code, cat, dept = rng.choice(PROBLEMS[:5]) if rng.random() < 0.7 else rng.choice(PROBLEMS)
            subtype = rng.choice(["complaint", "complaint", "application", None])
            kind = "action" if subtype in ("complaint", "application") else "information"
            citizen = rng.choice(citizens) if rng.random() > 0.1 else None
            due = at + timedelta(hours=rng.choice([24, 48]))
            t.emit(
                at,
                "request",
                "registered",
                rid,
                reference=f"{d}{i:06d}",
                kind=kind,
                subtype=subtype,
                channel="phone",
                description="...",
                location=None,
                urgency=rng.choice(["urgent", "control", "normal"]),
                citizen_id=citizen,
                personal={"name": "Y", "phone": "+39"},
                contact_hidden=False,
                language="it",
                reply_channel="phone",
                due_at=due.isoformat(),
                contact_id=None,
            )
            if rng.random() < 0.1:
                continue  # never classified
            step = at + timedelta(minutes=rng.randrange(1, 30))
            t.emit(
                step,
                "request",
                "classified",
                rid,
                problem_code=code,
                category_id=cat,
                provider_id="prov",
                department_id=dept,
                collected={},
                due_at=due.isoformat(),
            )
            r = rng.random()
            if r < 0.2:
                continue  # backlog: registered and classified only
            step += timedelta(minutes=rng.randrange(1, 60))
            t.emit(
                step,
                "request",
                "dispatched",
                rid,
                department_id=dept,
                provider_id="prov",
                instructions=None,
                due_at=due.isoformat(),
                ruled=False,
            )
            if r < 0.35:
                continue
            step += timedelta(minutes=rng.randrange(1, 120))
            t.emit(step, "request", "accepted", rid, department_id=dept)
            if r < 0.45:
                continue
            step += timedelta(hours=rng.uniform(0.5, 60))
            t.emit(step, "request", "final_replied", rid, message="done", channel="phone")
            step += timedelta(minutes=5)
            t.emit(step, "request", "closed", rid, on_time=step <= due)
            if rng.random() < 0.7:
                step += timedelta(minutes=rng.randrange(1, 300))
                t.emit(step, "request", "rated", rid, score=rng.randrange(1, 6), comment=None)
            if rng.random() < 0.05:
                step += timedelta(hours=1)
                t.emit(
                    step,
                    "request",
                    "reopened",
                    rid,
                    reason="not fixed",
                    status="in_progress",
                    due_at=(step + timedelta(hours=24)).isoformat(),
                )
        for i in range(60):
            at = base + timedelta(seconds=rng.randrange(8 * 3600, 20 * 3600))
            n = rng.randrange(0, 5)
            language = rng.choice(["it", "zh"])
            resolves = n > 0 and rng.random() < 0.7
            _search(t, random.Random(f"{seed}-{d}-{i}"), at, f"search-{d}-{i}", language, n, resolves)
    return t.finish()


QUERIES = {"it": ["tari", "Raccolta  rifiuti", "TARI", "passaporto"], "zh": ["停水", "路灯", "暖气 ", "路灯"]}
SEARCH_CHANNELS = ("agent", "self_service", "ivr")


def _search(t: Traffic, rng: random.Random, at: datetime, sid: str, language: str, n: int, resolves: bool) -> None:
    """A search as KnowledgeSearch publishes it, and what came of it: articles opened,
    used to answer (agent), deflected (self-service), or no good answer."""
    channel = rng.choice(SEARCH_CHANNELS)
    shown = [{"article_id": f"art-{rng.randrange(6)}", "revision": 1, "rank": r + 1, "score": 1.0 / (r + 1)} for r in range(n)]
    t.emit(at, "knowledge", "search_performed", sid, query=rng.choice(QUERIES[language]), language=language,
           channel=channel, trigger=rng.choice(["search", "search", "suggestion"]), results=n, answered=n > 0,
           shown=shown, contact_id=None, request_id=None)  # fmt: skip
    step = at
    opened = [s for s in shown if rng.random() < 0.5]
    for s in opened:
        step += timedelta(seconds=rng.randrange(5, 60))
        t.emit(step, "knowledge", "article_opened", sid, article_id=s["article_id"], revision=s["revision"], rank=s["rank"])
    step += timedelta(seconds=30)
    if resolves:
        chosen = rng.choice(opened or shown)
        if channel == "self_service":
            named = rng.random() < 0.8
            t.emit(step, "knowledge", "deflected", sid, article_id=chosen["article_id"] if named else None,
                   revision=chosen["revision"] if named else None)  # fmt: skip
        else:
            t.emit(step, "knowledge", "used_to_answer", sid, article_id=chosen["article_id"], revision=chosen["revision"],
                   rank=chosen["rank"], request_id=f"req-{sid}")  # fmt: skip
    elif rng.random() < 0.4:
        t.emit(step, "knowledge", "no_good_answer", sid, note=None)


def utc(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


def published(path: Path, envelopes: list[Envelope], batch: int = 0) -> Path:
    """An analytics database at ``path`` holding ``envelopes`` (ingested ``batch`` at a
    time, 0: at once), its snapshot published, the writer closed: what reports read."""
    from analytics.ingest import AnalyticsStore

    store = AnalyticsStore(path)
    step = batch or max(1, len(envelopes))
    for i in range(0, len(envelopes), step):
        store.ingest_envelopes(envelopes[i : i + step])
    store.publish_snapshot(force=True)
    store.close()
    return path
