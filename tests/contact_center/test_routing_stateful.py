"""Random interleavings of arrivals (some asking for a skill), agent state changes,
answers, timeouts, transfers, grabs, abandons and a second (stale) router: never a double
assignment, never a lost contact, every contact ends in exactly one terminal state, and
a contact that asked for a skill is routed only to an agent who has it.

The invariants are checked on the event log, independently of the aggregates that
enforce them, after every step; after each routing pass no free agent is left beside a
waiting contact it could serve (``routing_oracle``, which reads the view's entities, not
its heaps); the teardown drains the center and checks that every contact reached
exactly one terminal state.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from consumers.router import Router
from domain.base import Actor, DomainError
from domain.contact_center import commands as cc
from domain.handling import Command
from tests.contact_center.harness import SUPERVISOR, Center
from tests.contact_center.routing_oracle import idle_matches

AGENTS = ("A1", "A2", "A3", "A4")
ENV_AGENTS = ("A1", "A3")  # the agents with the "env" skill (fixed, so a stale router cannot be wrong about it)
TERMINAL = {"wrapped_up", "abandoned", "callback_gave_up"}


class LogChecker:
    """Follows the event log and fails on any double assignment."""

    def __init__(self) -> None:
        self.position = 0
        self.offer: dict[str, str | None] = {}
        self.connected: dict[str, bool] = {}
        self.terminal: dict[str, int] = defaultdict(int)
        self.voice: dict[str, set[str]] = defaultdict(set)  # agent -> voice contacts on the desk
        self.contacts: set[str] = set()
        self.skills: dict[str, dict[str, int]] = {}  # agent -> skills
        self.asked: dict[str, tuple[str, str | None]] = {}  # contact -> (queue, skill asked for there)

    def follow(self, center: Center) -> None:
        for e in center.store.envelopes(self.position, 10_000):
            self.position = e.position
            kind = e.name
            if e.stream == "contact":
                cid = e.aggregate_id
                assert self.terminal[cid] == 0, f"event {kind} after the end of contact {cid}"
                if kind in ("transferred", "overflowed") and e.data.get("to_queue_id") is not None:
                    self.asked[cid] = (e.data["to_queue_id"], None)  # another queue: the skill stays behind
                if kind == "arrived":
                    self.contacts.add(cid)
                    self.asked[cid] = (e.data["queue_id"], e.data.get("skill"))
                elif kind == "offered":
                    assert self.offer.get(cid) is None, f"{cid} offered to {e.data['agent_id']} while offered to {self.offer[cid]}"
                    self.offer[cid] = e.data["agent_id"]
                    queue, skill = self.asked[cid]
                    # q1 never relaxes: its skill contacts only ever go to agents with the skill.
                    if e.data["kind"] == "route" and queue == "q1" and skill is not None:
                        has = self.skills.get(e.data["agent_id"], {})
                        assert has.get(skill, 0) >= 1, f"{cid} asked for {skill}, offered to {e.data['agent_id']} with {has}"
                elif kind in ("offer_timed_out", "offer_declined", "participant_joined", "callback_attempted"):
                    self.offer[cid] = None
                elif kind == "answered":
                    assert not self.connected.get(cid), f"{cid} answered twice (double assignment)"
                    self.connected[cid] = True
                    self.offer[cid] = None
                elif kind in ("ended", "transferred") and (kind == "ended" or e.data["mode"] == "cold"):
                    self.connected[cid] = False
                elif kind in TERMINAL or (kind == "overflowed" and e.data["to"] == "voicemail"):
                    self.terminal[cid] += 1
                    self.offer[cid] = None
            elif e.stream == "agent":
                agent, d = e.data["agent_id"], e.data
                if kind in ("logged_in", "skills_changed"):
                    self.skills[agent] = dict(d["skills"])
                if kind == "reserved" and d["media"] == "voice":
                    assert not self.voice[agent], f"agent {agent} reserved for a call while holding {self.voice[agent]}"
                    self.voice[agent].add(d["contact_id"])
                elif kind == "contact_started" and d["media"] == "voice":
                    assert self.voice[agent] <= {d["contact_id"]}, f"agent {agent} given a second call"
                    self.voice[agent].add(d["contact_id"])
                elif (
                    kind == "offer_lost"
                    or kind == "wrap_up_completed"
                    or (kind == "contact_finished" and d["wrap_until"] <= e.time.isoformat())
                ):
                    self.voice[agent].discard(d["contact_id"])


class ContactCenterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.center = Center()
        self.center.queue(
            "q2",
            wrap_seconds=0,
            offer_timeout_seconds=8,
            required_skills={"tax": 2},
            relaxation=[[20, 1]],
            max_wait_seconds=200,
            overflow={"to": "callback"},
        )
        self.center.queue(
            "q1",
            wrap_seconds=5,
            offer_timeout_seconds=8,
            max_wait_seconds=120,
            overflow={"to": "queue", "queue_id": "q2"},
            language_relax_seconds=30,  # q2 keeps the language however long: both are checked
        )
        self.center.queue("g", grab=True, strategy="ring_all", wrap_seconds=3, max_wait_seconds=90, overflow={"to": "voicemail"})
        self.stale = Router(self.center.store, self.center.bus, name="stale")
        self.checker = LogChecker()
        self.logged: set[str] = set()
        self.arrivals = 0

    # ------------------------------------------------------------------ helpers
    def _try(self, cmd: Command, actor: Actor = SUPERVISOR) -> bool:
        try:
            self.center.run(cmd, actor=actor)
            return True
        except DomainError:
            return False

    def _view(self) -> Any:
        self.center.router.catch_up()
        return self.center.router.view

    def _contacts(self, status: str) -> list[str]:
        return sorted(cid for cid, c in self._view().contacts.items() if c.status == status)

    # ------------------------------------------------------------------ rules
    @rule(
        queue=st.sampled_from(["q1", "q2", "g"]),
        priority=st.integers(0, 3),
        lang=st.sampled_from([None, "it", "en"]),
        skill=st.sampled_from([None, None, "env", "tax"]),
    )
    def arrive(self, queue: str, priority: int, lang: str | None, skill: str | None) -> None:
        # Ids derived from a per-run counter, not random: the rules draw from sorted ids,
        # and Hypothesis must see the same choices when it replays an example.
        self.arrivals += 1
        self.center.arrive(queue, priority=priority, language=lang, external_id=f"call-{self.arrivals}", skill=skill)

    @rule(agent=st.sampled_from(AGENTS), tax=st.integers(1, 5))
    def login(self, agent: str, tax: int) -> None:
        skills = {"tax": tax, **({"env": 1} if agent in ENV_AGENTS else {})}
        if self._try(cc.LoginAgent(agent_id=agent, queues=["q1", "q2", "g"], skills=skills, languages=["it", "en"][: 1 + tax % 2])):
            self.logged.add(agent)

    @rule(seconds=st.sampled_from([None, 0, 10, 30, 90]))
    def relax_language(self, seconds: int | None) -> None:
        """A supervisor changes when q1 stops requiring the caller's language, callers waiting."""
        self._try(cc.DefineQueue(queue_id="q1", language_relax_seconds=seconds))

    @rule(agent=st.sampled_from(AGENTS), presence=st.sampled_from(["available", "not_ready"]))
    def presence(self, agent: str, presence: str) -> None:
        self._try(
            cc.SetPresence.model_validate({"agent_id": agent, "presence": presence, "reason": "break" if presence == "not_ready" else None})
        )

    @rule(agent=st.sampled_from(AGENTS))
    def logout(self, agent: str) -> None:
        self._try(cc.LogoutAgent(agent_id=agent))

    def _nobody_left_idle(self) -> None:
        view = self.center.router.view
        assert idle_matches(view, self.center.clock.now().timestamp()) == [], "a free agent beside a contact it could serve"

    @rule()
    def route(self) -> None:
        self.center.route()
        self._nobody_left_idle()

    @rule(seconds=st.sampled_from([1, 3, 7, 15, 40]))
    def wait(self, seconds: int) -> None:
        self.center.tick(seconds)
        self._nobody_left_idle()

    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        offers = sorted(self._view().contacts.items())
        offered = [(cid, c.offered_to) for cid, c in offers if c.offered_to]
        if offered:
            cid, agent = data.draw(st.sampled_from(offered))
            self._try(cc.Answer(contact_id=cid, agent_id=agent))

    @rule(data=st.data())
    def decline(self, data: st.DataObject) -> None:
        offered = [(cid, c.offered_to) for cid, c in sorted(self._view().contacts.items()) if c.offered_to]
        if offered:
            cid, agent = data.draw(st.sampled_from(offered))
            self._try(cc.Decline(contact_id=cid, agent_id=agent))

    @rule(data=st.data(), agent=st.sampled_from(AGENTS))
    def grab(self, data: st.DataObject, agent: str) -> None:
        waiting = self._contacts("queued")
        if waiting:
            self._try(cc.Grab(contact_id=data.draw(st.sampled_from(waiting)), agent_id=agent))

    @rule(data=st.data())
    def end(self, data: st.DataObject) -> None:
        live = self._contacts("connected")
        if live:
            self._try(cc.End(contact_id=data.draw(st.sampled_from(live)), ended_by="citizen"))

    @rule(data=st.data())
    def wrap(self, data: st.DataObject) -> None:
        wrapping = self._contacts("wrap_up")
        if wrapping:
            self._try(cc.WrapUp(contact_id=data.draw(st.sampled_from(wrapping)), disposition="done"))

    @rule(data=st.data(), to=st.sampled_from(["q1", "q2", "A1", "A3"]))
    def transfer(self, data: st.DataObject, to: str) -> None:
        view = self._view()
        live = [(cid, c.agent_id) for cid, c in sorted(view.contacts.items()) if c.status == "connected" and c.agent_id]
        if live:
            cid, agent = data.draw(st.sampled_from(live))
            target = {"to_queue_id": to} if to.startswith("q") else {"to_agent_id": to}
            self._try(cc.Transfer.model_validate({"contact_id": cid, "agent_id": agent, **target}))

    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        waiting = [cid for cid, c in sorted(self._view().contacts.items()) if c.status in ("queued", "offered") and not c.virtual]
        if waiting:
            self._try(cc.Abandon(contact_id=data.draw(st.sampled_from(waiting))))

    @rule(data=st.data())
    def callback_outcome(self, data: st.DataObject) -> None:
        dialing = self._contacts("dialing")
        if dialing:
            outcome = data.draw(st.sampled_from(["answered", "no_answer", "busy"]))
            self._try(cc.CallbackOutcome.model_validate({"contact_id": data.draw(st.sampled_from(dialing)), "outcome": outcome}))

    @precondition(lambda self: bool(self.logged))
    @rule()
    def stale_router_races(self) -> None:
        # A second router whose view lags: its decisions were right when made, and may be
        # wrong now. The aggregates must refuse whatever is no longer possible.
        decisions = self.stale.view.decide(self.center.clock.now())
        if decisions:
            self._try(cc.OfferContacts(decisions=[(d.contact_id, d.agent_id) for d in decisions]))
        self.stale.view.settle(decisions)
        self.stale.catch_up()

    # ------------------------------------------------------------------ invariants
    @invariant()
    def no_double_assignment(self) -> None:
        self.checker.follow(self.center)

    def teardown(self) -> None:
        try:
            self._drain()
            self.checker.follow(self.center)
            counts = self.center.terminal_counts()
            missing = self.checker.contacts - set(counts)
            assert not missing, f"contacts never finished: {missing}"
            assert all(n == 1 for n in counts.values()), counts
        finally:
            self.center.close()

    def _drain(self) -> None:
        """Everyone works until nothing is left: each contact must reach a terminal state."""
        for agent in AGENTS:
            every = {"tax": 5, "env": 1}
            self._try(cc.LoginAgent(agent_id=agent, queues=["q1", "q2", "g"], skills=every, languages=["it", "en"]))
            # Agents already logged in keep what they had: give them every skill and
            # language too, or a contact only they could serve would wait for ever.
            self._try(cc.ChangeSkills(agent_id=agent, skills=every, languages=["it", "en"]))
            self._try(cc.SetPresence(agent_id=agent, presence="available"))
        for _ in range(400):
            view = self._view()
            if not view.contacts:
                return
            for cid, c in sorted(view.contacts.items()):
                if c.offered_to:
                    self._try(cc.Answer(contact_id=cid, agent_id=c.offered_to))
                elif c.status == "connected":
                    self._try(cc.End(contact_id=cid, ended_by="agent"))
                elif c.status == "dialing":
                    self._try(cc.CallbackOutcome(contact_id=cid, outcome="answered"))
                elif c.status == "wrap_up":
                    self._try(cc.WrapUp(contact_id=cid, disposition="done"))
                elif c.status == "queued" and view.queues[c.queue_id].grab:
                    for agent in AGENTS:
                        if self._try(cc.Grab(contact_id=cid, agent_id=agent)):
                            break
            self.center.tick(30)
        raise AssertionError(f"contacts still open after draining: {self._view().contacts}")


TestContactCenterStateful = ContactCenterMachine.TestCase
TestContactCenterStateful.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_concurrent_grabs_from_threads_assign_each_contact_once(center: Center) -> None:
    """Real threads racing through the group committer: one winner per contact."""
    center.queue("g", grab=True, strategy="ring_all")
    agents = [f"T{i}" for i in range(8)]
    for a in agents:
        center.login(a, ["g"])
    contacts = [center.arrive("g") for _ in range(6)]
    barrier = threading.Barrier(len(agents))
    wins: dict[str, list[str]] = defaultdict(list)

    def grabber(agent: str) -> None:
        barrier.wait()
        for cid in contacts:
            try:
                center.as_agent(agent, cc.Grab(contact_id=cid, agent_id=agent))
                wins[agent].append(cid)
            except DomainError:
                pass

    threads = [threading.Thread(target=grabber, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [cid for cids in wins.values() for cid in cids]
    assert sorted(won) == sorted(contacts)  # every contact exactly once
    assert all(len(cids) == 1 for cids in wins.values())  # a voice agent takes one call
    checker = LogChecker()
    checker.follow(center)
