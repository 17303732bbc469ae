"""An oracle for the router's matching, written apart from its heaps: who may serve whom,
read off the entities of the view (which the rebuild tests check against the log).

After the router has run until idle, no waiting contact may sit beside a free agent who
could serve it: same queue (not a grab queue), the queue's required skills at the
level its relaxation accepts after the contact's wait, the contact's language (until
the queue's ``language_relax_seconds``, if it has one), the
medium's capacity, and the skill the contact asked for (level 1 or more) unless the
queue's last relaxation step has passed.
"""

from __future__ import annotations

from typing import Any

from domain.contact_center.routing import AgentView, ContactView, RoutingView


def may_serve(view: RoutingView, a: AgentView, c: ContactView, now: float) -> bool:
    rules = view.queues.get(c.queue_id)
    if rules is None or rules.strategy == "ring_all" or c.queue_id not in a.queues:
        return False
    if a.presence != "available" or not a.can_take(rules.media):
        return False
    wait = now - c.since
    relaxed = 0
    for after, levels in rules.relaxation:
        if wait >= after:
            relaxed = levels
    for skill, minimum in rules.required_skills.items():
        if a.skills.get(skill, 0) < max(1, minimum - relaxed):
            return False
    language_dropped = rules.language_relax_seconds is not None and wait >= rules.language_relax_seconds
    if c.language is not None and c.language not in a.languages and not language_dropped:
        return False
    skill_dropped = bool(rules.relaxation) and wait >= rules.relaxation[-1][0]
    return c.skill is None or skill_dropped or a.skills.get(c.skill, 0) >= 1


def waiting_now(c: ContactView, now: float) -> bool:
    if c.pending is not None or c.offered_to is not None:
        return False
    return c.status == "queued" or (c.status == "scheduled" and c.due <= now)


def idle_matches(view: RoutingView, now: float) -> list[tuple[str, str]]:
    """(contact, agent) pairs left unmatched although the agent could take the contact."""
    return [
        (c.contact_id, a.agent_id)
        for c in view.contacts.values()
        if waiting_now(c, now)
        for a in view.agents.values()
        if may_serve(view, a, c, now)
    ]


def indexed(view: RoutingView, now: float) -> dict[str, Any]:
    """Where each waiting contact and free agent is indexed (live heap entries only): a
    view rebuilt from the log must index everyone in the same places."""
    contacts: dict[str, list[tuple[str, str, str]]] = {}
    for key, heap in view.waiting.items():
        for entry in heap:
            c = view.contacts.get(entry[2])
            if c is not None and c.token == entry[3] and waiting_now(c, now):
                contacts.setdefault(c.contact_id, []).append(key)
    agents: dict[str, set[tuple[str, str, str, int]]] = {}
    for free_key, free_heap in view.free.items():
        rules = view.queues[free_key[0]]
        for entry in free_heap:
            a = view.agents.get(entry[2])
            if a is not None and a.token == entry[1] and a.can_take(rules.media):
                agents.setdefault(a.agent_id, set()).add(free_key)
    return {"contacts": {cid: sorted(keys) for cid, keys in contacts.items()}, "agents": agents}
