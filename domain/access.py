"""Who may do what: the hotline's one permission policy.

Every command class and every HTTP endpoint names one :class:`Action`; :data:`RULES` says,
for each action, which roles may take it and in which :class:`Scope`:

* ``all``: anywhere (supervisors, the control office, system processes);
* ``own_department``: only on cases and work orders dispatched to one of the actor's
  departments, whatever a request body says;
* ``own_cases``: a citizen, only on their own requests and their own record;
* ``assigned``: an agent, only on the contacts offered to them (the commands name the
  agent; the contact's own rules check the offer);
* ``self``: only on the actor's own record (an agent's own desk and presence).

A role absent from an action's rule may not take it. A refusal is
:class:`~domain.base.Forbidden` (HTTP 403) naming the action. Reads are actions too:
personal data (:data:`Action.CITIZENS_READ`) and internal notes
(:data:`Action.REQUESTS_READ_INTERNAL`) go only to the roles that need them; analysts
read reports and no personal data; auditors read everything and change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from domain.base import ROLES, Actor, Forbidden, InvalidCommand


class Scope(StrEnum):
    ALL = "all"
    OWN_DEPARTMENT = "own_department"
    OWN_CASES = "own_cases"
    ASSIGNED = "assigned"
    SELF = "self"


class Action(StrEnum):
    # requests (受理 → 派单 → 办理 → 回复 → 办结)
    REQUESTS_REGISTER = "requests.register"
    REQUESTS_READ = "requests.read"
    REQUESTS_READ_INTERNAL = "requests.read_internal"  # internal notes in the timeline
    REQUESTS_TRIAGE = "requests.triage"  # classify, change kind
    REQUESTS_DISPATCH = "requests.dispatch"  # dispatch, work order, link a duplicate
    REQUESTS_ACCEPT = "requests.accept"  # accept or return to the dispatcher
    REQUESTS_OVERSEE = "requests.oversee"  # ownership rulings, extension decisions, supervision
    REQUESTS_REPLY = "requests.reply"  # interim and final replies, resolve
    REQUESTS_CLOSE = "requests.close"
    REQUESTS_REOPEN = "requests.reopen"
    REQUESTS_RATE = "requests.rate"
    REQUESTS_EXTEND = "requests.extend"  # ask for a deadline extension
    REQUESTS_NOTE = "requests.note"
    REQUESTS_FOLLOW_UP = "requests.follow_up"  # wait for the citizen
    REQUESTS_CITIZEN_RESPONDED = "requests.citizen_responded"
    REQUESTS_CITIZEN_MESSAGE = "requests.citizen_message"  # what the citizen wrote, from any channel
    REQUESTS_FIRE_TIMERS = "requests.fire_timers"
    SLA_READ = "sla.read"  # breaches, ageing, timers, workloads
    # work orders
    WORK_ORDERS_READ = "work_orders.read"
    WORK_ORDERS_WORK = "work_orders.work"  # start, tasks, complete
    WORK_ORDERS_CANCEL = "work_orders.cancel"
    # attachments (photos, documents) on requests and work orders
    ATTACHMENTS_ADD = "attachments.add"
    ATTACHMENTS_READ = "attachments.read"  # then the subject's own read rule, on the subject
    ATTACHMENTS_REMOVE = "attachments.remove"
    # citizens' personal data
    CITIZENS_READ = "citizens.read"
    CITIZENS_UPDATE = "citizens.update"
    # Link a phone number and an email given together to one citizen on record. Only staff
    # who spoke to the person: from an unverified channel (the web, Open311, email-in, an
    # SMS) anyone could name somebody's number beside their own address and sign in to
    # that person's cases with it.
    CITIZENS_LINK = "citizens.link"
    # reference data
    CATALOGUE_READ = "catalogue.read"
    CATALOGUE_MANAGE = "catalogue.manage"  # catalogue and calendars
    # notifications
    NOTIFICATIONS_READ = "notifications.read"
    NOTIFICATIONS_RETRY = "notifications.retry"
    NOTIFICATIONS_DELIVER = "notifications.deliver"
    # the contact center
    CONTACT_CENTER_READ = "contact_center.read"  # wallboard, queues, agents
    QUEUES_MANAGE = "queues.manage"
    AGENTS_SESSION = "agents.session"  # log in and out, presence
    AGENTS_DESK = "agents.desk"  # an agent's desk and suggestions
    AGENTS_MANAGE = "agents.manage"  # queues and skills of an agent
    CONTACTS_ARRIVE = "contacts.arrive"  # a call or message arrives; callbacks scheduled
    CONTACTS_HANDLE = "contacts.handle"  # answer, hold, transfer, end, wrap up …
    CONTACTS_ROUTE = "contacts.route"  # offers, overflow, abandonment (the router and the PBX)
    CONTACTS_SUPERVISE = "contacts.supervise"
    STAFFING_READ = "staffing.read"
    # knowledge base
    KNOWLEDGE_SEARCH = "knowledge.search"
    KNOWLEDGE_READ_INTERNAL = "knowledge.read_internal"  # revisions, usage, unanswered
    KNOWLEDGE_WRITE = "knowledge.write"
    KNOWLEDGE_FEEDBACK = "knowledge.feedback"  # opened, deflected, no good answer
    KNOWLEDGE_ANSWER = "knowledge.answer"  # an article used to answer a caller
    # analytics
    REPORTS_READ = "reports.read"
    REPORTS_MANAGE = "reports.manage"
    REPORTS_DELETE = "reports.delete"  # a saved report: its owner's, or a supervisor's call
    # identity and operations
    SIGN_IN = "auth.sign_in"  # a staff member exchanges a password for a token
    CITIZENS_SIGN_IN = "auth.citizen_sign_in"  # a citizen asks for and uses a one-time code
    STAFF_READ = "staff.read"
    STAFF_MANAGE = "staff.manage"
    API_KEYS_READ = "api_keys.read"  # a key's name, role, actions and state (never the key)
    API_KEYS_MANAGE = "api_keys.manage"
    OPERATIONS_READ = "operations.read"  # Kafka status
    CHANNELS_SMS_RECEIVE = "channels.sms_receive"  # the SMS provider delivers what citizens texted (signed webhook)
    AUDIT_READ = "audit.read"  # any aggregate's full history and state as of a time, case traces, read models as of a time
    PRIVACY_ERASE = "privacy.erase"  # erase a citizen's personal data (crypto-shredding), with a reason
    PRIVACY_RETENTION = "privacy.retention"  # the retention rule: erase citizens whose requests all closed long ago
    IVR_READ = "ivr.read"  # IVR flows and their published versions
    IVR_PUBLISH = "ivr.publish"  # publish a new version of an IVR flow
    # call recordings (domain/recordings)
    RECORDINGS_READ = "recordings.read"  # search and metadata: agents their own calls, departments those of their cases
    RECORDINGS_PLAY = "recordings.play"  # a playback link (audited): the same scopes as reading
    RECORDINGS_MANAGE = "recordings.manage"  # a queue's recording policy
    RECORDINGS_CAPTURE = "recordings.capture"  # the PBX adapter starts and completes recordings
    RECORDINGS_RETENTION = "recordings.retention"  # delete old recordings, and erased citizens' audio
    RECORDINGS_DEMAND = "recordings.demand"  # an agent on a live call (or a supervisor for them) asks to record it


A, D, C, AS, S = Scope.ALL, Scope.OWN_DEPARTMENT, Scope.OWN_CASES, Scope.ASSIGNED, Scope.SELF
# Front-line roles that take calls and answer from the knowledge base.
_DESK = {"agent": A, "expert": A, "supervisor": A, "system": A}
_READ_ALL = {"auditor": A, "system": A}

RULES: Mapping[Action, Mapping[str, Scope]] = {
    Action.REQUESTS_REGISTER: {"citizen": A, "agent": A, "expert": A, "supervisor": A, "control_office": A, "integrator": A, "system": A},
    Action.REQUESTS_READ: {
        "citizen": C,
        "agent": A,
        "expert": A,
        "supervisor": A,
        "department": D,
        "control_office": A,
        "integrator": A,
        **_READ_ALL,
    },
    Action.REQUESTS_READ_INTERNAL: {"agent": A, "expert": A, "supervisor": A, "department": D, "control_office": A, **_READ_ALL},
    Action.REQUESTS_TRIAGE: {"agent": A, "expert": A, "supervisor": A, "control_office": A, "system": A},
    Action.REQUESTS_DISPATCH: {"agent": A, "supervisor": A, "control_office": A, "system": A},
    Action.REQUESTS_ACCEPT: {"department": D, "supervisor": A, "system": A},
    Action.REQUESTS_OVERSEE: {"supervisor": A, "control_office": A, "system": A},
    Action.REQUESTS_REPLY: {"agent": A, "expert": A, "department": D, "supervisor": A, "control_office": A, "system": A},
    Action.REQUESTS_CLOSE: {"agent": A, "supervisor": A, "control_office": A, "system": A},
    Action.REQUESTS_REOPEN: {"citizen": C, "agent": A, "supervisor": A, "control_office": A, "system": A},
    Action.REQUESTS_RATE: {"citizen": C, "agent": A, "supervisor": A, "system": A},
    Action.REQUESTS_EXTEND: {"department": D, "supervisor": A, "system": A},
    Action.REQUESTS_NOTE: {"agent": A, "expert": A, "department": D, "supervisor": A, "control_office": A, "system": A},
    Action.REQUESTS_FOLLOW_UP: {"agent": A, "department": D, "supervisor": A, "control_office": A, "system": A},
    Action.REQUESTS_CITIZEN_MESSAGE: {
        "citizen": C,
        "agent": A,
        "expert": A,
        "supervisor": A,
        "control_office": A,
        "integrator": A,
        "system": A,
    },
    Action.REQUESTS_CITIZEN_RESPONDED: {"citizen": C, "agent": A, "department": D, "supervisor": A, "control_office": A, "system": A},
    Action.REQUESTS_FIRE_TIMERS: {"system": A},
    Action.SLA_READ: {"supervisor": A, "department": D, "control_office": A, "analyst": A, **_READ_ALL},
    Action.WORK_ORDERS_READ: {"agent": A, "expert": A, "supervisor": A, "department": D, "control_office": A, **_READ_ALL},
    Action.WORK_ORDERS_WORK: {"department": D, "supervisor": A, "system": A},
    Action.WORK_ORDERS_CANCEL: {"supervisor": A, "control_office": A, "system": A},
    Action.ATTACHMENTS_ADD: {
        "citizen": C,
        "agent": A,
        "expert": A,
        "supervisor": A,
        "department": D,
        "control_office": A,
        "integrator": A,
        "system": A,
    },
    Action.ATTACHMENTS_READ: {
        "citizen": C,
        "agent": A,
        "expert": A,
        "supervisor": A,
        "department": D,
        "control_office": A,
        "integrator": A,
        **_READ_ALL,
    },
    Action.ATTACHMENTS_REMOVE: {"supervisor": A, "control_office": A, "system": A},
    Action.CITIZENS_READ: {"citizen": C, "agent": A, "expert": A, "supervisor": A, "control_office": A, **_READ_ALL},
    Action.CITIZENS_UPDATE: {"citizen": C, "agent": A, "supervisor": A, "system": A},
    Action.CITIZENS_LINK: {"agent": A, "expert": A, "supervisor": A, "control_office": A, "administrator": A},
    Action.CATALOGUE_READ: {role: A for role in ROLES},  # public: what the hotline handles, and its calendar
    Action.CATALOGUE_MANAGE: {"supervisor": A, "administrator": A, "system": A},
    Action.NOTIFICATIONS_READ: {"supervisor": A, **_READ_ALL},
    Action.NOTIFICATIONS_RETRY: {"agent": A, "supervisor": A, "system": A},
    Action.NOTIFICATIONS_DELIVER: {"system": A},
    Action.CONTACT_CENTER_READ: {"agent": A, "expert": A, "supervisor": A, "analyst": A, **_READ_ALL},
    Action.QUEUES_MANAGE: {"supervisor": A, "administrator": A, "system": A},
    Action.AGENTS_SESSION: {"agent": S, "expert": S, "supervisor": A, "system": A},
    Action.AGENTS_DESK: {"agent": S, "expert": S, "supervisor": A, **_READ_ALL},
    Action.AGENTS_MANAGE: {"supervisor": A, "system": A},
    Action.CONTACTS_ARRIVE: {"agent": A, "expert": A, "supervisor": A, "system": A},
    Action.CONTACTS_HANDLE: {"agent": AS, "expert": AS, "supervisor": A, "system": A},
    Action.CONTACTS_ROUTE: {"supervisor": A, "system": A},
    Action.CONTACTS_SUPERVISE: {"supervisor": A, "system": A},
    Action.STAFFING_READ: {"supervisor": A, "analyst": A, **_READ_ALL},
    Action.KNOWLEDGE_SEARCH: {role: A for role in ROLES},  # public: citizens help themselves
    Action.KNOWLEDGE_READ_INTERNAL: {**_DESK, "analyst": A, "auditor": A},
    Action.KNOWLEDGE_WRITE: {"expert": A, "supervisor": A, "system": A},
    Action.KNOWLEDGE_FEEDBACK: {"citizen": A, "integrator": A, **_DESK},
    Action.KNOWLEDGE_ANSWER: _DESK,
    Action.REPORTS_READ: {"supervisor": A, "control_office": A, "analyst": A, **_READ_ALL},
    Action.REPORTS_MANAGE: {"supervisor": A, "analyst": A, "system": A},
    Action.REPORTS_DELETE: {"supervisor": A, "analyst": S, "system": A},
    Action.SIGN_IN: {role: A for role in ROLES},
    Action.CITIZENS_SIGN_IN: {"citizen": A, "system": A},
    Action.STAFF_READ: {"supervisor": A, "administrator": A, **_READ_ALL},
    Action.STAFF_MANAGE: {"administrator": A, "system": A},
    Action.PRIVACY_ERASE: {"administrator": A, "system": A},
    Action.PRIVACY_RETENTION: {"administrator": A, "system": A},
    Action.IVR_READ: {"supervisor": A, "administrator": A, **_READ_ALL},
    Action.IVR_PUBLISH: {"administrator": A, "system": A},
    Action.API_KEYS_READ: {"administrator": A, **_READ_ALL},
    Action.API_KEYS_MANAGE: {"administrator": A, "system": A},
    Action.OPERATIONS_READ: {"supervisor": A, "administrator": A, **_READ_ALL},
    # The provider proves it is the hotline's SMS channel by its signature (a system actor).
    Action.CHANNELS_SMS_RECEIVE: {"system": A},
    # The auditor's views read every stream, personal data included: auditors only (and the CLI's system actor).
    Action.AUDIT_READ: {"auditor": A, "system": A},
    # Recordings: an agent their own calls, a department only recordings attached to its cases,
    # supervisors, the control office (supervision, disputes) and auditors all; never citizens.
    Action.RECORDINGS_READ: {"agent": AS, "expert": AS, "supervisor": A, "control_office": A, "department": D, **_READ_ALL},
    Action.RECORDINGS_PLAY: {"agent": AS, "expert": AS, "supervisor": A, "control_office": A, "department": D, **_READ_ALL},
    Action.RECORDINGS_MANAGE: {"supervisor": A, "administrator": A, "system": A},
    Action.RECORDINGS_CAPTURE: {"system": A},
    Action.RECORDINGS_RETENTION: {"administrator": A, "system": A},
    # Recording on demand: the agent on the call for themselves (scope assigned), a supervisor for any agent.
    Action.RECORDINGS_DEMAND: {"agent": AS, "expert": AS, "supervisor": A, "system": A},
}

# Actions anyone may take without signing in (an anonymous citizen): the public face of
# the hotline. Their endpoints are rate-limited per client address.
PUBLIC: frozenset[Action] = frozenset(
    {
        Action.REQUESTS_REGISTER,
        Action.CATALOGUE_READ,
        Action.KNOWLEDGE_SEARCH,
        Action.KNOWLEDGE_FEEDBACK,
        Action.SIGN_IN,
        Action.CITIZENS_SIGN_IN,
    }
)


@dataclass(frozen=True)
class Access:
    """What the policy needs to know about the thing acted on."""

    departments: frozenset[str] = field(default_factory=frozenset)  # dispatched to
    citizen_id: str | None = None  # whose case or record it is
    assignee: str | None = None  # the agent it is offered to or with
    subject: str | None = None  # the staff member (agent) it belongs to

    @classmethod
    def of_department(cls, department: str | None, citizen_id: str | None = None) -> Access:
        return cls(departments=frozenset({department}) if department else frozenset(), citizen_id=citizen_id)


def access_of(thing: object) -> Access:
    """What an aggregate tells the policy about itself (its ``access()``); nothing when it
    has no such method, so that only scope ``all`` reaches it."""
    method = getattr(thing, "access", None)
    return method() if callable(method) else Access()


def scopes(actor: Actor, action: Action) -> set[Scope]:
    """The scopes in which ``actor`` (any of their roles) may take ``action``."""
    rule = RULES[action]
    return {rule[role] for role in actor.roles if role in rule}


def scope(actor: Actor, action: Action) -> Scope | None:
    """The widest scope the actor has (``all`` beats every narrower one), or None."""
    found = scopes(actor, action)
    if Scope.ALL in found:
        return Scope.ALL
    return min(found, key=list(Scope).index) if found else None


def allows(actor: Actor, action: Action, on: Access | None = None) -> bool:
    """May ``actor`` take ``action`` (on ``on``, when the thing is known)?"""
    found = scopes(actor, action)
    if actor.allowed_actions is not None and action not in actor.allowed_actions:
        return False  # an API key scoped to fewer actions than its role
    if not found:
        return False
    if on is None or Scope.ALL in found:
        return True
    return any(_within(actor, s, on) for s in found)


def finds_by_personal_data(actor: Actor) -> bool:
    """May ``actor`` find cases by a caller's name or number (a search of personal data)?
    Only staff who may read every citizen's personal data."""
    return allows(actor, Action.CITIZENS_READ) and scope(actor, Action.CITIZENS_READ) is Scope.ALL


def _within(actor: Actor, s: Scope, on: Access) -> bool:
    if s is Scope.OWN_DEPARTMENT:
        return bool(on.departments & set(actor.departments))
    if s is Scope.OWN_CASES:
        return actor.citizen_id is not None and on.citizen_id == actor.citizen_id
    if s is Scope.ASSIGNED:
        return on.assignee is not None and on.assignee == actor.id
    if s is Scope.SELF:
        return on.subject is not None and on.subject == actor.id
    return s is Scope.ALL


def authorize(actor: Actor, action: Action, on: Access | None = None) -> None:
    """Refuses with 403 (naming the action) unless the policy allows it."""
    if allows(actor, action, on):
        return
    found = scopes(actor, action)
    if actor.allowed_actions is not None and action not in actor.allowed_actions:
        reason = f"this API key is not scoped for {action.value}"
    elif not found:
        reason = f"role {' or '.join(actor.roles)} may not take {action.value}"
    else:
        where = ", ".join(sorted(s.value for s in found))
        reason = f"{action.value} is allowed to role {' or '.join(actor.roles)} only in scope {where}, and this is outside it"
    raise Forbidden(reason, permission=action.value, roles=list(actor.roles))


def acting_department(actor: Actor, action: Action, named: str | None, default: str | None) -> str:
    """The department a user acts for: the one the body names or else ``default`` (the
    case's department). Department users act only for their own departments, whatever
    the body says; roles with scope ``all`` act for any."""
    chosen = named or default
    if scope(actor, action) is not Scope.ALL and chosen not in actor.departments:
        raise Forbidden(f"{actor.id} does not act for department {chosen!r}", permission=action.value, departments=list(actor.departments))
    if chosen is None:
        raise InvalidCommand("name the department acted for in 'department_id'", field="department_id")
    return chosen
