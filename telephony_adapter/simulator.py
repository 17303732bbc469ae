"""Traffic simulator (``hotline simulate``): a realistic contact-center day through the real
command path.

Arrivals per queue follow a Poisson process whose rate changes by hour of day; handle
times are lognormal (or exponential, for checking against Erlang C); callers give up
after an exponential patience; agents ring for a moment before answering, take breaks,
and wrap up. The simulator is a discrete-event loop over an injected
:class:`~domain.base.FixedClock`: it jumps from one event (its own, or the router's next
timer) to the next, so a day runs in seconds, or at ``speed`` × real time for a live demo.

It drives the system the way the PBX and the agents' consoles would: it issues
commands on the :class:`~infra.bus.CommandBus` and reacts to the events it reads back
(an offer rings the agent, an answer starts the talk), and the real
:class:`~consumers.router.Router` makes every routing decision.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

from consumers.router import Router
from domain.base import Actor, DomainError, FixedClock
from domain.contact_center import commands as cc
from domain.contact_center.contacts import Contact
from domain.envelope import Envelope
from domain.handling import Command
from infra.bus import CommandBus
from infra.eventstore import EventStore

PBX = Actor("pbx", "system", "Simulated PBX")
SUPERVISOR = Actor("sim-supervisor", "supervisor", "Simulation")

# A city hotline's weekday: calls per hour relative to the peak hour (08:00-20:00).
DAY_SHAPE = {8: 0.55, 9: 0.9, 10: 1.0, 11: 0.95, 12: 0.7, 13: 0.6, 14: 0.8, 15: 0.9, 16: 0.8, 17: 0.65, 18: 0.45, 19: 0.3}


@dataclass
class QueueSpec:
    queue_id: str
    peak_per_hour: float  # arrivals in the peak hour; other hours follow ``shape``
    aht_seconds: float = 240.0
    handle_sigma: float = 0.6  # lognormal shape; ignored for exponential handle times
    patience_seconds: float | None = 120.0  # mean; None: nobody abandons
    channel: str = "phone"
    skills: dict[str, int] = field(default_factory=dict)
    # The voice menu's options that ask for a skill, by the share of callers who choose
    # each (the rest choose none): such a call waits for an agent with that skill.
    menu_skills: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # DefineQueue settings
    languages: dict[str, float] = field(default_factory=lambda: {"it": 0.85, "en": 0.1, "zh": 0.05})
    shape: dict[int, float] | None = None  # hour -> share of the peak; None: DAY_SHAPE
    flat: bool = False  # the same rate every hour (theory checks)

    def rate(self, hour: int) -> float:
        if self.flat:
            return self.peak_per_hour
        return self.peak_per_hour * (self.shape or DAY_SHAPE).get(hour, 0.0)


@dataclass
class Shift:
    """Agents who log in at ``start`` and out at ``end`` (local wall-clock times) every day
    of the run; the shift on duty when the run ends stays logged in if ``stays_on``."""

    name: str
    start: clock_time
    end: clock_time
    agent_ids: list[str]
    names: dict[str, str] = field(default_factory=dict)  # agent id -> display name


@dataclass
class SimConfig:
    start: datetime = field(default_factory=lambda: datetime(2025, 3, 3, 8, 0, tzinfo=UTC))
    hours: float = 12.0
    agents: int = 20
    seed: int = 12345
    queues: list[QueueSpec] = field(default_factory=list)
    handle: str = "lognormal"  # or "exponential"
    ring_seconds: float = 3.0  # mean time an agent takes to answer an offer
    miss_rate: float = 0.02  # offers an agent lets ring out
    acw_seconds: float | None = 20.0  # mean time to finish wrap-up (None: wait for the timeout)
    breaks: bool = True  # 15 minutes every 2 hours, staggered
    callback_answer_rate: float = 0.75
    speed: float | None = None  # None: as fast as possible; 60: one simulated minute per second
    agent_languages: list[list[str]] = field(default_factory=lambda: [["it"], ["it", "en"], ["it", "zh"], ["it", "en", "ar"]])
    # A caller's priority, drawn from this list (a fifth of callers are priority 1 by default).
    priorities: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 1])
    # Numbers of citizens the hotline already knows, and the share of callers who are one of
    # them (their calls arrive with the citizen recognised: the agent's screen pop).
    known_callers: list[str] = field(default_factory=list)
    known_share: float = 0.0
    # Hours of the day (``QueueSpec.shape``) are read in this time zone.
    time_zone: str = "UTC"
    # Share of a weekday's traffic on each day (None: every day alike).
    day_factor: Callable[[date], float] | None = None
    # Agents by shift (empty: ``agents`` agents logged in for the whole run).
    shifts: list[Shift] = field(default_factory=list)
    # At the end: callers still waiting hang up, calls in progress end, and every agent
    # logs out except the shift on duty (else the run goes on until the last contact ends).
    close_at_end: bool = False

    @classmethod
    def default_day(cls, hours: float = 12.0, agents: int = 24, seed: int = 12345, speed: float | None = None) -> SimConfig:
        """Several queues and skills: general information, taxes (skilled, relaxing),
        environment complaints with overflow to the general queue, an expert seat pool,
        web chat, and an outbound queue for callbacks."""
        return cls(
            hours=hours,
            agents=agents,
            seed=seed,
            speed=speed,
            queues=[
                QueueSpec(
                    "general",
                    90,
                    210,
                    skills={"general": 1},
                    menu_skills={"roads": 0.15, "waste": 0.1},
                    config={
                        "names": {"zh": "综合咨询", "ar": "الاستفسارات العامة", "it": "Informazioni generali", "en": "General enquiries"},
                        "required_skills": {"general": 1},
                        # A caller who chose "roads" or "waste" in the menu waits two minutes for
                        # an agent with that skill, then for any agent of the queue: agents' skills
                        # are drawn at random, and a shift may have nobody with the skill in the
                        # caller's language (its callback then waited for ever).
                        "relaxation": [[120, 1]],
                        "wrap_seconds": 30,
                        "max_wait_seconds": 300,
                        "overflow": {"to": "callback"},
                    },
                ),
                QueueSpec(
                    "tax",
                    35,
                    330,
                    skills={"tax": 3},
                    config={
                        "names": {"zh": "税务", "ar": "الضرائب", "it": "Tributi", "en": "Taxes"},
                        "required_skills": {"tax": 4},
                        "relaxation": [[30, 1], [90, 2]],
                        "strategy": "best_proficiency",
                        "wrap_seconds": 45,
                        "priority": 1,
                    },
                ),
                QueueSpec(
                    "environment",
                    30,
                    260,
                    skills={"environment": 2},
                    config={
                        "names": {"zh": "环境", "ar": "البيئة", "it": "Ambiente", "en": "Environment"},
                        "required_skills": {"environment": 2},
                        "wrap_seconds": 40,
                        "max_wait_seconds": 90,
                        "overflow": {"to": "queue", "queue_id": "general"},
                    },
                ),
                QueueSpec(
                    "chat",
                    40,
                    420,
                    channel="chat",
                    patience_seconds=300,
                    skills={"chat": 1},
                    config={
                        "names": {"zh": "在线交谈", "ar": "الدردشة", "it": "Chat", "en": "Chat"},
                        "media": "chat",
                        "required_skills": {"chat": 1},
                        "wrap_seconds": 15,
                        "sl_seconds": 60,
                    },
                ),
                QueueSpec(
                    "urgent",
                    6,
                    300,
                    patience_seconds=60,
                    skills={"general": 3},
                    config={
                        "names": {"zh": "紧急", "ar": "الحالات العاجلة", "it": "Urgenze", "en": "Urgent"},
                        "required_skills": {"general": 3},
                        "grab": True,
                        "strategy": "ring_all",
                        "wrap_seconds": 30,
                        "priority": 5,
                    },
                ),
            ],
        )


def single_queue(
    calls_per_hour: float, aht_seconds: float, agents: int, hours: float, sl_seconds: int = 20, seed: int = 12345
) -> SimConfig:
    """The model Erlang C describes (M/M/N): one queue, Poisson arrivals at a constant
    rate, exponential handling, first come first served, nobody abandons, agents answer
    at once and never pause."""
    return SimConfig(
        hours=hours,
        agents=agents,
        seed=seed,
        handle="exponential",
        ring_seconds=0.0,
        miss_rate=0.0,
        acw_seconds=None,
        breaks=False,
        priorities=[0],
        queues=[
            QueueSpec(
                "single",
                calls_per_hour,
                aht_seconds,
                patience_seconds=None,
                flat=True,
                languages={"it": 1.0},
                config={"wrap_seconds": 0, "sl_seconds": sl_seconds},
            )
        ],
        agent_languages=[["it"]],
    )


@dataclass
class SimReport:
    simulated_seconds: float
    wall_seconds: float
    commands: int
    events: int
    queues: dict[str, dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "simulated_hours": round(self.simulated_seconds / 3600, 2),
            "wall_seconds": round(self.wall_seconds, 2),
            "speed_up": round(self.simulated_seconds / self.wall_seconds, 1) if self.wall_seconds else None,
            "commands": self.commands,
            "events": self.events,
            "queues": self.queues,
        }


class Simulator:
    def __init__(
        self,
        store: EventStore,
        bus: CommandBus,
        clock: FixedClock,
        config: SimConfig,
        router: Router | None = None,
        on_progress: Callable[[datetime], None] | None = None,
    ) -> None:
        self.store, self.bus, self.clock, self.config = store, bus, clock, config
        self.router = router or Router(store, bus, time_zone=config.time_zone)
        self.rng = random.Random(config.seed)
        self.agenda: list[tuple[float, int, str, tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self.position = store.max_position()
        self.commands = 0
        self.events = 0
        self.specs = {q.queue_id: q for q in config.queues}
        self.agent_ids: list[str] = []
        self.on_break: set[str] = set()
        self.on_progress = on_progress
        self.stats: dict[str, dict[str, Any]] = {}
        self.refused: dict[str, int] = {}  # commands the domain refused, by class
        # Contacts are counted as the reports count them (analytics/kpis.py): under the
        # queue they arrived in, whatever queue answered them after an overflow, once.
        self.first_queue: dict[str, str] = {}
        self.answered: set[str] = set()

    # ------------------------------------------------------------------ commands
    def _run(self, cmd: Command, actor: Actor = PBX) -> dict[str, Any] | None:
        self.commands += 1
        try:
            return self.bus.execute(cmd, actor).result
        except DomainError:
            # The world moved on (answered just as the caller hung up …).
            self.refused[type(cmd).__name__] = self.refused.get(type(cmd).__name__, 0) + 1
            return None

    def _at(self, when: float, kind: str, *payload: Any) -> None:
        heapq.heappush(self.agenda, (when, next(self._seq), kind, payload))

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        cfg = self.config
        self.clock.current = max(self.clock.current, cfg.start)
        for spec in sorted(cfg.queues, key=lambda q: "overflow" in q.config and q.config["overflow"].get("to") == "queue"):
            self._run(cc.DefineQueue(queue_id=spec.queue_id, **spec.config), actor=SUPERVISOR)
        if cfg.shifts:
            self._schedule_shifts()
        else:
            for i in range(cfg.agents):
                self._login(i, f"sim-{i + 1:03d}", f"Simulated agent {i + 1}")
                if cfg.breaks:
                    first = 90 * 60 + (i * 7 * 60) % (60 * 60)
                    for k in range(int(cfg.hours * 3600 // (2 * 3600)) + 1):
                        self._at(self._t0 + first + k * 2 * 3600, "break", f"sim-{i + 1:03d}")
        for spec in cfg.queues:
            self._schedule_arrivals(spec)

    def _login(self, i: int, agent_id: str, name: str) -> None:
        """Log an agent in with skills for the queues (agent ``i`` of the day)."""
        cfg = self.config
        queue_ids = [q.queue_id for q in cfg.queues]
        all_skills = sorted({s for q in cfg.queues for s in (*q.skills, *q.menu_skills)})
        skills = {s: self.rng.randint(1, 5) for s in all_skills if s == "general" or self.rng.random() < 0.55}
        for spec in cfg.queues:  # every queue needs some agents who can serve it
            if i % max(1, len(cfg.queues)) == queue_ids.index(spec.queue_id):
                for s, lvl in spec.skills.items():
                    skills[s] = max(skills.get(s, 0), lvl, spec.config.get("required_skills", {}).get(s, 0))
        skills = {s: min(5, max(1, v)) for s, v in skills.items()}
        languages = cfg.agent_languages[i % len(cfg.agent_languages)]
        capacity = {"chat": 3}
        self._run(
            cc.LoginAgent(
                agent_id=agent_id,
                name=name,
                skills=skills,
                languages=languages,
                queues=queue_ids,
                capacity=capacity,
            ),
            actor=Actor(agent_id, "agent"),
        )
        if agent_id not in self.agent_ids:
            self.agent_ids.append(agent_id)

    def _schedule_shifts(self) -> None:
        """Each shift logs in at its start and out at its end, every day of the run."""
        cfg = self.config
        zone = ZoneInfo(cfg.time_zone)
        t0, end = self._t0, self._t0 + cfg.hours * 3600
        day = datetime.fromtimestamp(t0, zone).date() - timedelta(days=1)
        while datetime.combine(day, clock_time(), zone).timestamp() < end:
            for shift in cfg.shifts:
                begins = datetime.combine(day, shift.start, zone).timestamp()
                ends = datetime.combine(day + timedelta(days=shift.end <= shift.start), shift.end, zone).timestamp()
                if ends <= t0 or begins >= end:
                    continue
                for i, agent_id in enumerate(shift.agent_ids):
                    self._at(max(begins, t0), "shift_login", shift.name, i, agent_id)
                    if ends < end:
                        self._at(ends, "shift_logout", agent_id)
                    if cfg.breaks:  # a 15-minute break every two hours, staggered
                        k = begins + 90 * 60 + (i * 7 * 60) % 3600
                        while k < min(ends, end) - 30 * 60:
                            if k > t0:
                                self._at(k, "break", agent_id)
                            k += 2 * 3600
            day += timedelta(days=1)

    def call_at(self, when: datetime, action: Callable[[], None]) -> None:
        """Do ``action`` when the simulated clock reaches ``when`` (the demo's other work:
        requests, timers), interleaved in time with the calls."""
        self._at(when.timestamp(), "call", action)

    @property
    def _t0(self) -> float:
        return self.config.start.timestamp()

    def _schedule_arrivals(self, spec: QueueSpec) -> None:
        end = self._t0 + self.config.hours * 3600
        t = self._t0
        while t < end:
            hour_start = t - (t - self._t0) % 3600
            local = datetime.fromtimestamp(hour_start, ZoneInfo(self.config.time_zone))
            rate = spec.rate(local.hour) / 3600.0
            if self.config.day_factor is not None:
                rate *= self.config.day_factor(local.date())
            hour_end = min(hour_start + 3600, end)
            if rate <= 0:
                t = hour_end
                continue
            t += self.rng.expovariate(rate)
            if t < hour_end:
                self._at(t, "arrival", spec.queue_id)
            else:
                t = hour_end  # memoryless: restart at the hour with the next hour's rate

    # ------------------------------------------------------------------ the loop
    def run(self) -> SimReport:
        started = time.perf_counter()
        self.setup()
        end = self._t0 + self.config.hours * 3600
        last_wall, last_sim = time.perf_counter(), self.clock.current.timestamp()
        while True:
            self.router.run_until_idle()
            self._observe()
            nxt = self.agenda[0][0] if self.agenda else None
            timer = self.router.view.next_timer()
            candidates = [x for x in (nxt, timer) if x is not None]
            if not candidates:
                break
            t = min(candidates)
            if t > end and self.config.close_at_end:
                self.clock.current = datetime.fromtimestamp(max(end, self.clock.current.timestamp()), UTC)
                self._close()
                break
            if t > end and not self.router.view.contacts:
                break  # the day is over and every contact has ended
            if t > end + 4 * 3600:
                break  # nothing but far-off callbacks left
            now = self.clock.current.timestamp()
            t = max(t, now)
            if self.config.speed:
                # Never ahead of the pace asked for (in real time, never ahead of now).
                while (ahead := (t - last_sim) / self.config.speed - (time.perf_counter() - last_wall)) > 0:
                    time.sleep(min(ahead, 5.0))
            self.clock.current = datetime.fromtimestamp(t, UTC)
            if self.on_progress:
                self.on_progress(self.clock.current)
            while self.agenda and self.agenda[0][0] <= t:
                _, _, kind, payload = heapq.heappop(self.agenda)
                getattr(self, f"_do_{kind}")(*payload)
        self._observe()
        return SimReport(
            self.clock.current.timestamp() - self._t0, time.perf_counter() - started, self.commands, self.events, self.report()
        )

    def _now(self) -> float:
        return self.clock.current.timestamp()

    def _close(self) -> None:
        """Close of the run: waiting callers hang up, calls in progress end and are wrapped
        up, and the agents log out except the shift on duty."""
        self.router.run_until_idle()
        self._observe()
        for cid, c in list(self.router.view.contacts.items()):
            if c.status in ("queued", "offered", "arrived") and not c.virtual:
                self._run(cc.Abandon(contact_id=cid))
            elif c.status == "connected" and c.agent_id:
                self._run(cc.End(contact_id=cid, agent_id=c.agent_id, ended_by="citizen"), actor=Actor(c.agent_id, "agent"))
        self.router.run_until_idle()
        self._observe()
        for cid, c in list(self.router.view.contacts.items()):
            if c.status == "wrap_up" and c.agent_id:
                self._run(cc.WrapUp(contact_id=cid, agent_id=c.agent_id, disposition="information_given"), actor=Actor(c.agent_id, "agent"))
        on_duty = set(self._on_duty())
        for agent_id in self.agent_ids:
            a = self.router.view.agents.get(agent_id)
            if a is None or a.presence == "logged_out":
                continue
            if agent_id in on_duty:
                if agent_id in self.on_break:
                    self._do_back(agent_id)
            else:
                self._run(cc.LogoutAgent(agent_id=agent_id), actor=Actor(agent_id, "agent"))
        self.router.run_until_idle()
        self._observe()

    def _on_duty(self) -> list[str]:
        """The agents whose shift covers the end of the run."""
        cfg = self.config
        if not cfg.shifts:
            return []
        zone = ZoneInfo(cfg.time_zone)
        at = datetime.fromtimestamp(self._now(), zone)
        duty: list[str] = []
        for shift in cfg.shifts:
            for day in (at.date() - timedelta(days=1), at.date()):
                begins = datetime.combine(day, shift.start, zone)
                ends = datetime.combine(day + timedelta(days=shift.end <= shift.start), shift.end, zone)
                if begins <= at < ends:
                    duty.extend(shift.agent_ids)
        return duty

    # ------------------------------------------------------------------ what happens
    def _do_arrival(self, queue_id: str) -> None:
        spec = self.specs[queue_id]
        langs = list(spec.languages)
        lang = self.rng.choices(langs, weights=[spec.languages[x] for x in langs])[0]
        phone = f"+39 06 {self.rng.randint(1000000, 9999999)}"
        if self.config.known_callers and self.rng.random() < self.config.known_share:
            phone = self.rng.choice(self.config.known_callers)  # a citizen the hotline knows
        arrival: dict[str, Any] = {
            "channel": spec.channel,
            "queue_id": queue_id,
            "language": lang,
            "phone": phone,
            "priority": self.rng.choice(self.config.priorities),
        }
        if spec.menu_skills:  # (no draw otherwise: the runs of queues without a menu stay as they were)
            pick = self.rng.random()
            for skill, share in spec.menu_skills.items():
                if pick < share:
                    arrival["skill"] = skill
                    break
                pick -= share
        result = self._run(cc.ContactArrives.model_validate(arrival))
        if result and spec.patience_seconds:
            self._at(self._now() + self.rng.expovariate(1.0 / spec.patience_seconds), "patience", result["id"])

    def _do_patience(self, contact_id: str) -> None:
        c = self.router.view.contacts.get(contact_id)
        if c is not None and c.status in ("queued", "offered") and not c.virtual:
            self._run(cc.Abandon(contact_id=contact_id))

    def _do_answer(self, contact_id: str, agent_id: str) -> None:
        self._run(cc.Answer(contact_id=contact_id, agent_id=agent_id), actor=Actor(agent_id, "agent"))

    def _do_end(self, contact_id: str, agent_id: str) -> None:
        self._run(
            cc.End(contact_id=contact_id, agent_id=agent_id, ended_by=self.rng.choice(["citizen", "agent"])), actor=Actor(agent_id, "agent")
        )

    def _do_wrap(self, contact_id: str, agent_id: str) -> None:
        c = self.router.view.contacts.get(contact_id)
        if c is None or c.status != "wrap_up":
            return  # the queue's wrap-up time ran out first
        disposition = self.rng.choice(["information_given", "request_registered", "transferred_to_department", "resolved"])
        self._run(cc.WrapUp(contact_id=contact_id, agent_id=agent_id, disposition=disposition), actor=Actor(agent_id, "agent"))

    def _do_callback(self, contact_id: str) -> None:
        outcome = "answered" if self.rng.random() < self.config.callback_answer_rate else self.rng.choice(["no_answer", "busy"])
        self._run(cc.CallbackOutcome.model_validate({"contact_id": contact_id, "outcome": outcome}))

    def _do_break(self, agent_id: str) -> None:
        if self._now() >= self._t0 + self.config.hours * 3600:
            return
        a = self.router.view.agents.get(agent_id)
        if a is None or a.presence == "logged_out" or a.presence == "not_ready":
            return
        if self._run(cc.SetPresence(agent_id=agent_id, presence="not_ready", reason="break"), actor=Actor(agent_id, "agent")):
            self.on_break.add(agent_id)
            self._at(self._now() + 15 * 60, "back", agent_id)

    def _do_back(self, agent_id: str) -> None:
        if agent_id not in self.on_break:
            return  # the shift ended during the break
        self.on_break.discard(agent_id)
        self._run(cc.SetPresence(agent_id=agent_id, presence="available"), actor=Actor(agent_id, "agent"))

    def _do_shift_login(self, shift_name: str, i: int, agent_id: str) -> None:
        shift = next(s for s in self.config.shifts if s.name == shift_name)
        a = self.router.view.agents.get(agent_id)
        if a is None or a.presence == "logged_out":
            self._login(i, agent_id, shift.names.get(agent_id, f"Simulated agent {agent_id}"))

    def _do_shift_logout(self, agent_id: str) -> None:
        """End of shift: no new contacts; log out once the current one is over."""
        a = self.router.view.agents.get(agent_id)
        if a is None or a.presence == "logged_out":
            return
        if a.state in ("available", "not_ready") and not any(c.agent_id == agent_id for c in self.router.view.contacts.values()):
            self.on_break.discard(agent_id)
            if self._run(cc.LogoutAgent(agent_id=agent_id), actor=Actor(agent_id, "agent")) is not None:
                return
        elif a.presence == "available":
            self._run(cc.SetPresence(agent_id=agent_id, presence="not_ready", reason="other"), actor=Actor(agent_id, "agent"))
        self._at(self._now() + 60, "shift_logout", agent_id)

    def _do_call(self, action: Callable[[], None]) -> None:
        action()

    def _do_grab(self, contact_id: str) -> None:
        view = self.router.view
        c = view.contacts.get(contact_id)
        if c is None or c.status != "queued":
            return
        for agent_id in sorted(self.agent_ids, key=lambda _: self.rng.random()):
            a = view.agents.get(agent_id)
            free = a is not None and a.can_take(c.media) and c.queue_id in a.queues
            if free and self._run(cc.Grab(contact_id=contact_id, agent_id=agent_id), actor=Actor(agent_id, "agent")):
                return
        self._at(self._now() + 5, "grab", contact_id)  # nobody free: look again shortly

    def _handle_time(self, queue_id: str) -> float:
        spec = self.specs.get(queue_id)
        aht = spec.aht_seconds if spec else 240.0
        if self.config.handle == "exponential":
            return self.rng.expovariate(1.0 / aht)
        sigma = spec.handle_sigma if spec else 0.6
        mu = math.log(aht) - sigma * sigma / 2  # so that the mean is the AHT
        return self.rng.lognormvariate(mu, sigma)

    def _observe(self) -> None:
        """Reads what happened, as the PBX and the agents' consoles would, and reacts."""
        while True:
            envelopes = self.store.envelopes(self.position, 5000)
            if not envelopes:
                return
            for env in envelopes:
                self.position = env.position
                self.events += 1
                self._react(env)

    def _react(self, env: Envelope) -> None:
        if env.stream != "contact":
            return
        kind = env.event_class
        now, d, cid = self._now(), env.data, env.aggregate_id
        cfg = self.config
        if kind is Contact.Offered:
            if self.rng.random() >= cfg.miss_rate:
                ring = self.rng.expovariate(1.0 / cfg.ring_seconds) if cfg.ring_seconds > 0 else 0.0
                self._at(now + ring, "answer", cid, d["agent_id"])
        elif kind is Contact.Answered or kind is Contact.CallbackConnected:
            self._at(now + self._handle_time(d["queue_id"]), "end", cid, d["agent_id"])
            if cid not in self.answered:  # a contact counts once, where it first arrived
                self.answered.add(cid)
                self._count(self.first_queue.get(cid, d["queue_id"]), "answered", d["wait_seconds"])
        elif kind is Contact.CallbackAttempted:
            self._at(now + self.rng.uniform(8, 25), "callback", cid)
        elif kind is Contact.Ended and cfg.acw_seconds is not None and d["agent_id"]:
            self._at(now + self.rng.expovariate(1.0 / cfg.acw_seconds), "wrap", cid, d["agent_id"])
        elif kind is Contact.Queued:
            c = self.router.view.contacts.get(cid)
            rules = self.router.view.queues.get(d["queue_id"])
            if rules is not None and rules.strategy == "ring_all" and c is not None:
                self._at(now + self.rng.uniform(1, 6), "grab", cid)
        elif kind is Contact.Arrived and d["direction"] == "inbound":
            self.first_queue[cid] = d["queue_id"]
            self._count(d["queue_id"], "arrived")
        elif kind is Contact.Abandoned and cid not in self.answered:
            self._count(self.first_queue.get(cid, d["queue_id"]), "abandoned", d["wait_seconds"])
        elif kind is Contact.Overflowed:
            self._count(d["from_queue_id"], f"overflowed_{d['to']}")

    def _count(self, queue_id: str, what: str, wait: float | None = None) -> None:
        s = self.stats.setdefault(queue_id, {"arrived": 0, "answered": 0, "abandoned": 0, "waits": [], "abandon_waits": []})
        s[what] = s.get(what, 0) + 1
        if what == "answered" and wait is not None:
            s["waits"].append(wait)
        elif what == "abandoned" and wait is not None:
            s["abandon_waits"].append(wait)

    def report(self) -> dict[str, dict[str, Any]]:
        """Per queue, with the definitions of the service-level report (analytics/kpis.py):
        service level = answered within the threshold / answered; "offered" service level
        = answered within the threshold / (answered + abandoned after the short-abandon
        time); ASA over answered contacts."""
        from analytics.kpis import KpiParams

        short = KpiParams().short_abandon_seconds
        out: dict[str, dict[str, Any]] = {}
        for queue_id, s in sorted(self.stats.items()):
            spec = self.specs.get(queue_id)
            threshold = spec.config.get("sl_seconds", 20) if spec else 20
            waits = s["waits"]
            answered, abandoned = len(waits), s["abandoned"]
            within = sum(1 for w in waits if w <= threshold)
            real_abandons = sum(1 for w in s["abandon_waits"] if w >= short)
            out[queue_id] = {
                "arrived": s["arrived"],
                "answered": answered,
                "abandoned": abandoned,
                **{k: v for k, v in s.items() if k.startswith("overflowed_")},
                "service_level": round(within / answered, 4) if answered else None,
                "service_level_offered": round(within / (answered + real_abandons), 4) if answered + real_abandons else None,
                "sl_threshold_seconds": threshold,
                "asa_seconds": round(sum(waits) / answered, 2) if answered else None,
                "p_wait": round(sum(1 for w in waits if w > 0) / answered, 4) if answered else None,
            }
        return out


def simulate(store: EventStore, bus: CommandBus, clock: FixedClock, config: SimConfig, **kw: Any) -> SimReport:
    return Simulator(store, bus, clock, config, **kw).run()


def erlang_c(arrivals_per_second: float, aht_seconds: float, agents: int) -> float:
    """Probability that a call waits (Erlang C), for staffing checks."""
    a = arrivals_per_second * aht_seconds
    if a >= agents:
        return 1.0
    term, total = 1.0, 1.0
    for k in range(1, agents):
        term *= a / k
        total += term
    top = term * a / agents * agents / (agents - a)
    return top / (total + top)


def day_start(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=8)
