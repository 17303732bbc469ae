"""The glossary of the published events' common field names: what each means and an example.

A field of an event is described where the event declares it (its attribute docstring or
comment, in ``domain/<context>/``); this glossary is the fallback for the names many events
share (``reference``, ``agent_id``, ``due_at`` …), and the source of every example value of
the AsyncAPI document (``api/asyncapi.py``). ``tests/contracts/`` fails when a published
event's field has no description from either, or an example does not fit its schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXAMPLE_TIME = "2026-11-16T09:05:00+00:00"
EXAMPLE_DUE = "2026-11-18T17:00:00+00:00"


@dataclass(frozen=True)
class PerEvent:
    """An example that differs by event: ``{"request.kind_changed": …}``, keyed by the type
    name without ``hotline.`` and the version (``request.kind_changed``)."""

    by_event: dict[str, Any]
    default: Any

    def for_event(self, short_type: str) -> Any:
        return self.by_event.get(short_type, self.default)


@dataclass(frozen=True)
class Term:
    description: str
    example: Any = field(default=None)


# Who acts in an example message of a stream: (actor id, role, display name).
EXAMPLE_ACTORS: dict[str, tuple[str, str, str | None]] = {
    "request": ("op-anna", "agent", "Anna (operator)"),
    "workorder": ("dept-transport", "department", "transport"),
    "contact": ("router", "system", "ACD router"),
    "agent": ("agent-early-1", "agent", None),
    "queue": ("admin", "administrator", "Administrator"),
    "catalogue": ("admin", "administrator", "Administrator"),
    "calendar": ("admin", "administrator", "Administrator"),
    "citizen": ("op-anna", "agent", "Anna (operator)"),
    "notification": ("notifier", "system", "Notification consumer"),
    "knowledge": ("op-anna", "agent", "Anna (operator)"),
    "knowledge_article": ("expert-marco", "expert", "Marco (expert)"),
    "staff": ("admin", "administrator", "Administrator"),
    "attachment": ("email-in", "system", "Email listener"),
    "erasure": ("admin", "administrator", "Administrator"),
    "*": ("system", "system", "Hotline"),
}

# Events whose modules are other parts' (domain/privacy/: issue 13; domain/ivr/ and
# domain/recordings/: issue 19), until their classes carry docstrings, which take precedence.
EVENT_DESCRIPTIONS: dict[str, str] = {
    "hotline.ivr_flow.registered.v1": "An IVR flow (a voice menu) was registered under its name.",
    "hotline.ivr_flow.version_published.v1": "A new version of the IVR flow was published: calls from now on go through it.",
    "hotline.recording_policy.defined.v1": "A queue's call-recording policy was created.",
    "hotline.recording_policy.policy_set.v1": "A queue's call-recording policy changed: what is recorded, "
    "and the announcement played first.",
    "hotline.recording.started.v1": "Recording of a call started (after its announcement).",
    "hotline.recording.completed.v1": "The recording ended and its bytes were stored.",
    "hotline.recording.playback_granted.v1": "Someone was given a time-limited link to play the recording.",
    "hotline.recording.deleted.v1": "The recording's bytes were deleted (retention, erasure or by hand).",
    "hotline.erasure.requested.v1": "An administrator asked for a citizen's personal data to be erased (right to erasure), "
    "or the retention policy did: the erasure starts.",
    "hotline.erasure.erased.v1": "The citizen's keys were destroyed: every sealed personal field and text of theirs now reads "
    "as erased, in the store and in the read models.",
}

_REQUEST_ID = "8a5e2f0c-3b1d-5c9e-a7f4-2d6b9e1c4a73"
_CITIZEN_ID = "c2f0a1d4-6e8b-4f3a-9c5d-7b1e2a3f4c5d"
_CONTACT_ID = "5b7c9d1e-2f3a-4b5c-8d9e-0a1b2c3d4e5f"
_WORK_ORDER_ID = "e4d3c2b1-a0f9-4e8d-b7c6-5a4b3c2d1e0f"
_ARTICLE_ID = "9f8e7d6c-5b4a-4c3d-a2b1-0f9e8d7c6b5a"
_TEMPLATE = {
    "title": {"en": "Repair streetlight", "it": "Riparazione lampione"},
    "instructions": None,
    "tasks": [{"en": "Replace lamp", "it": "Sostituire la lampada"}],
    "crew_size": 1,
}

GLOSSARY: dict[str, Term] = {
    # ---------------------------------------------------------------- who and where
    "agent_id": Term("The agent (staff username) concerned.", "agent-early-1"),
    "from_agent_id": Term("The agent the contact came from.", "agent-early-1"),
    "to_agent_id": Term("The agent the contact goes to, when it goes to one.", "expert-marco"),
    "supervisor_id": Term("The supervisor (staff username) acting on the contact.", "sup-li"),
    "new_primary": Term("The participant who now handles the contact, when the leaving one handed it over.", "expert-marco"),
    "offered_to": Term("The agent the contact was being offered to when the citizen hung up, if any.", "agent-late-2"),
    "forced_by": Term("The supervisor who forced the change; null when the agent did it.", "sup-li"),
    "changed_by": Term("Who changed it when not the agent themselves (a supervisor); null otherwise.", "sup-li"),
    "owner": Term("The staff member who owns the article.", "expert-marco"),
    "username": Term("The staff member's sign-in name.", "op-anna"),
    "name": Term("Display name.", PerEvent({"calendar.holiday_declared": "Festa della Repubblica"}, "Anna Verdi")),
    "names": Term(
        "Display names by language (BCP 47 tag → name).",
        {"en": "Street lighting", "it": "Illuminazione pubblica", "zh": "路灯照明", "ar": "إنارة الشوارع"},
    ),
    "role": Term("A role (staff) or a participant's part in a contact.", PerEvent({"contact.participant_joined": "consult"}, "supervisor")),
    "roles": Term("The staff member's roles.", ["agent", "supervisor"]),
    "department_id": Term("The department concerned (catalogue id).", "transport"),
    "departments": Term("The departments (catalogue ids) a staff member or agent serves.", ["transport"]),
    "departments_involved": Term("The departments that returned or handled the case so far.", ["transport", "environment"]),
    "control_office_id": Term("The control office that rules on the case, if the catalogue names one.", "control-office"),
    "provider_id": Term("The service provider within the department (catalogue id), if any.", "roads"),
    "category_id": Term("The category of the catalogue (catalogue id).", "street-lighting"),
    "problem_code": Term("The problem code of the catalogue that classifies the case.", "streetlight-out"),
    "problem_codes": Term("Problem codes the article answers.", ["pothole", "streetlight-out"]),
    "code": Term("The problem code.", "streetlight-out"),
    "entry_id": Term("The catalogue entry (its id at its level).", "roads"),
    "level": Term("The catalogue level of the entry: department, provider, category or problem_code.", "provider"),
    "jurisdiction": Term("The jurisdiction (the city or service) this configuration belongs to.", "rome"),
    "queue_id": Term("The contact-center queue concerned.", "general"),
    "from_queue_id": Term("The queue the contact left.", "general"),
    "to_queue_id": Term("The queue the contact goes to, when it goes to one.", "experts"),
    "queues": Term("The queues the agent takes contacts from.", ["general", "chat"]),
    # ---------------------------------------------------------------- ids of other aggregates
    "request_id": Term("The service request concerned (its aggregate id), if any.", _REQUEST_ID),
    "request_ref": Term("The service request's reference, if the file belongs to one.", "261116090500"),
    "reference": Term("The request's public reference, quoted to the citizen.", "261116090500"),
    "citizen_id": Term("The citizen (their aggregate id), if known; personal data is keyed by it.", _CITIZEN_ID),
    "contact_id": Term("The contact (call, chat …) concerned, if any.", _CONTACT_ID),
    "work_order_id": Term("The work order concerned.", _WORK_ORDER_ID),
    "article_id": Term("The knowledge article concerned.", _ARTICLE_ID),
    "attachment_ids": Term("Attachments that came with the message (attachment ids).", ["0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"]),
    "external_id": Term("The contact's id in the telephony or chat system, if any.", "1700123456.42"),
    "key": Term("Idempotency key of the notification: one notification per key.", f"final-reply:{_REQUEST_ID}"),
    "source_event": Term("The event that caused the notification ('<aggregate id>/<version>'), if any.", f"{_REQUEST_ID}/7"),
    "provider_message_id": Term("The SMS provider's id of the message that carried the keyword.", "SM8f2c1e"),
    "provider_ref": Term("The provider's id of the sent message, if it gave one.", "msg-0001"),
    # ---------------------------------------------------------------- the case
    "kind": Term(
        "What kind of case or offer it is.",
        PerEvent({"contact.offered": "route", "request.registered": "action", "request.kind_changed": "information"}, "action"),
    ),
    "subtype": Term("The subtype of the request's kind (complaint, application, consultation …), if any.", "complaint"),
    "channel": Term(
        "The channel concerned (phone, web, email, sms, chat, self_service …).",
        PerEvent({"contact.arrived": "phone", "knowledge.search_performed": "self_service"}, "email"),
    ),
    "reply_channel": Term("How the citizen wants the answer, if they said.", "email"),
    "description": Term("What the citizen reported, in their words.", "Deep pothole in front of number 12, cars swerve into the bike lane"),
    "location": Term(
        "Where the problem is (address, district, latitude and longitude), if given.",
        {"address": "Via Nazionale 1", "district": "Centro", "lat": 41.9009, "lon": 12.4936},
    ),
    "urgency": Term("Urgency: normal, urgent or emergency.", "normal"),
    "language": Term("The language (BCP 47 tag) of the text or preferred by the citizen.", "it"),
    "languages": Term("The languages (BCP 47 tags) the agent speaks.", ["it", "en"]),
    "contact_hidden": Term("The citizen asked that their contact details are not shown to the department.", False),
    "collected": Term("The details the problem code asks for, by field name.", {"pole_number": "A-117"}),
    "fields_to_collect": Term(
        "The details an agent collects for this problem code (name, type, required, allowed values).",
        [
            {
                "name": "appliance_type",
                "type": "choice",
                "required": True,
                "labels": {"en": "Appliance type", "it": "Tipo di elettrodomestico"},
                "choices": ["fridge", "washer"],
            }
        ],
    ),
    "work_order_template": Term("The work order made for a case of this problem code: title, instructions, tasks, crew size.", _TEMPLATE),
    "template": Term("The template the work order was made from: title, instructions, tasks, crew size.", _TEMPLATE),
    "details": Term("Details of the case copied onto the work order (what was collected).", {"pole_number": "A-117"}),
    "deadlines": Term("Deadline rules by urgency (working hours or days allowed).", {"normal": {"working_days": 5}}),
    "duplicate_radius_m": Term("Metres within which an open work order of this code is a likely duplicate; null: the default.", 200.0),
    "changes": Term("The changed attributes of the problem code and their new values.", {"duplicate_radius_m": 150.0}),
    "instructions": Term("Instructions to the department, if any.", "Cone off the hole first"),
    "ruled": Term("Dispatched by the control office's ruling: cannot be returned again.", False),
    "return_count": Term("How many times the case has been returned so far.", 1),
    "status": Term("The status the request returns to.", "in_progress"),
    "resume_status": Term("The status the request returns to when the citizen answers.", "in_progress"),
    "resolution": Term("How the case was resolved.", "Lamp replaced on 16 November"),
    "on_time": Term("The case was closed before its deadline.", True),
    "score": Term("The citizen's rating, 1 (worst) to 5 (best).", 4),
    "message": Term("The reply sent to the citizen.", "The lamp was replaced this morning. Thank you for reporting it."),
    "delay_reason": Term("Why the full answer will be late.", "Spare parts on order"),
    "expected_at": Term("When the full answer is expected.", EXAMPLE_DUE),
    "text": Term("The text written.", "Any news? The hole is getting bigger."),
    "internal": Term("Staff only: not shown to the citizen.", True),
    "note": Term("A note, if any.", "Checked with the crew"),
    "comment": Term("A comment, if any.", "Quick and polite"),
    "reason": Term(
        "Why, in the actor's words or as a code.",
        PerEvent(
            {
                "agent.state_changed": "break",
                "contact.queued": "arrival",
                "contact.overflowed": "max_wait",
                "contact.callback_scheduled": "answer",
                "notification.suppressed": "sms_opt_out",
                "erasure.erased": "The citizen asked for erasure",
            },
            "Not our department: the street belongs to the province",
        ),
    ),
    "as_duplicate": Term("The request was linked to an existing work order as a duplicate.", False),
    "completed": Term("The work order was completed (false: cancelled).", True),
    "outcome": Term(
        "How it ended.",
        PerEvent({"agent.offer_lost": "withdrawn", "contact.callback_unanswered": "no_answer"}, "Lamp replaced"),
    ),
    "crew": Term("The crew doing the work, if named.", "Crew 3"),
    "task_index": Term("The task of the work order's template (0 = first).", 0),
    "raw_message_sha256": Term("SHA-256 of the raw message the text came in (an email), if any.", "3f7a" * 16),
    # ---------------------------------------------------------------- time and SLA
    "due_at": Term("The deadline (RFC 3339).", EXAMPLE_DUE),
    "requested_due_at": Term("The deadline the department asks for.", "2026-11-20T17:00:00+00:00"),
    "since": Term("When the contact's place in line started.", EXAMPLE_TIME),
    "wrap_until": Term("When after-call work ends at the latest.", "2026-11-16T09:07:00+00:00"),
    "retry_at": Term("When the next attempt is due; null when none will be made.", "2026-11-16T09:10:00+00:00"),
    "paused_seconds": Term("How long the clock was stopped, in seconds.", 86400.0),
    "timers": Term(
        "The request's timer plan: one entry per timer (key, kind, when it fires, the deadline it belongs to, detail).",
        [
            {
                "key": "approaching-75:20261118T170000Z",
                "kind": "deadline_approaching",
                "at": "2026-11-18T09:05:00+00:00",
                "deadline": EXAMPLE_DUE,
                "detail": 75,
                "department_id": None,
            }
        ],
    ),
    "timer_key": Term("The timer that fired (each fires at most once).", "approaching-75:20261118T170000Z"),
    "detail": Term("The timer's detail (percent of the allowed time, reminder number, working days overdue), if any.", 75),
    "year": Term("The year of the list.", 2027),
    "day": Term("The day (ISO date).", "2026-12-08"),
    "hours": Term("Opening hours of the day, as [from, to] pairs of local times.", [["08:00", "14:00"]]),
    "definition": Term(
        "The calendar's definition: time zone, weekly working hours, holidays and holiday rules.",
        {
            "time_zone": "Europe/Rome",
            "working_hours": {"mon": [["08:30", "13:00"], ["14:00", "17:30"]], "sat": [], "sun": []},
            "holidays": [],
        },
    ),
    "source": Term(
        "Where it came from.",
        PerEvent({"attachment.attached": "email", "calendar.list_published": "Gazzetta Ufficiale"}, "upload"),
    ),
    # ---------------------------------------------------------------- contact center
    "media": Term("The medium of the contact: voice, chat or email.", "voice"),
    "direction": Term("inbound or outbound.", "inbound"),
    "priority": Term("Priority in the queue (higher first).", 0),
    "subject": Term("The subject line, if any.", PerEvent({"notification.queued": "Your request 261116090500"}, "Streetlight")),
    "wait_seconds": Term("How long the citizen waited, in seconds.", 42.5),
    "talk_seconds": Term("Talk time, in seconds.", 185.0),
    "hold_seconds": Term("Time on hold, in seconds.", 20.0),
    "wrap_seconds": Term("After-call work time, in seconds.", 60.0),
    "grabbed": Term("The agent took the contact from the queue themselves (not offered by the router).", False),
    "expert": Term("The transfer went to an expert seat.", False),
    "mode": Term("How it was done.", PerEvent({"contact.supervisor_joined": "monitor", "contact.transferred": "cold"}, "cold")),
    "participants": Term("Everyone who took part (staff usernames).", ["agent-early-1"]),
    "disposition": Term("The wrap-up code the agent chose, if any.", "information_given"),
    "timed_out": Term("Ended by its time limit rather than by the agent.", False),
    "to": Term("Where the contact went.", "queue"),
    "attempt": Term("The attempt number (1 = first).", 1),
    "attempts": Term("How many attempts were made.", 3),
    "max_attempts": Term("How many attempts will be made at most.", 3),
    "retry_seconds": Term("Seconds between attempts.", 600),
    "missed": Term("How many offers in a row the agent has missed.", 1),
    "how": Term("How the contact reached the agent.", "offer"),
    "state": Term(
        "What the agent is doing now (available, reserved, busy, wrap_up, not_ready …).",
        PerEvent({"agent.reserved": "reserved"}, "available"),
    ),
    "previous": Term("The agent's state before.", "available"),
    "presence": Term("The presence the agent chose: available, not_ready or logged_out.", "available"),
    "skills": Term("Skill levels by skill (1 to 10).", {"roads": 8, "waste": 5}),
    "skill": Term(
        "The skill the citizen asked for in the voice menu; only agents with it are offered the contact, "
        "until the queue's last relaxation step. Null: any agent of the queue.",
        "roads",
    ),
    "capacity": Term("How many contacts of each medium the agent takes at once.", {"voice": 1, "chat": 2}),
    "config": Term(
        "The queue's configuration (service-level target, overflow, opening hours, required skills).",
        {
            "media": "voice",
            "required_skills": {"general": 1},
            "priority": 0,
            "strategy": "longest_idle",
            "sl_percent": 80.0,
            "sl_seconds": 20,
            "max_wait_seconds": 300,
            "overflow": {"to": "callback"},
        },
    ),
    # ---------------------------------------------------------------- knowledge
    "translations": Term(
        "The article's text by language: title and body per BCP 47 tag.",
        {"en": {"title": "Opening hours of the registry office", "body": "Monday to Friday, 8:30 to 12:30."}},
    ),
    "phones": Term("Phone numbers the article gives (offices, not citizens).", ["+39 06 0606"]),
    "url": Term("A web address, if any.", "https://www.comune.example/anagrafe"),
    "links": Term("Related web addresses.", ["https://www.comune.example/servizi"]),
    "categories": Term("Catalogue categories the article belongs to.", ["registry"]),
    "tags": Term("Free tags.", ["opening-hours"]),
    "revision": Term("The article's revision (1, 2 …).", 2),
    "query": Term("What was searched for.", "opening hours registry office"),
    "trigger": Term("What started the search.", "search"),
    "results": Term("How many articles were shown.", 3),
    "answered": Term("Something was shown.", True),
    "shown": Term("The articles shown, in rank order.", [{"article_id": _ARTICLE_ID, "revision": 2, "rank": 1, "score": 0.82}]),
    "rank": Term("The article's place in the results (1 = first), if it was shown in a search.", 1),
    # ---------------------------------------------------------------- notifications, citizens, files
    "purpose": Term("Why the citizen is told (the notification's template).", "final_reply"),
    "body": Term("The message's text.", "Your request 261116090500 has been answered."),
    "html": Term("The message as HTML, if it has one.", None),
    "error": Term("What went wrong.", "SMTP 451: try again later"),
    "permanent": Term("The failure is permanent: no retry.", False),
    "keyword": Term("The keyword the citizen sent.", "STOP"),
    "personal": Term("The citizen's personal data (name, phone, email, address …).", {"name": "***", "phone": "***"}),
    "sha256": Term("SHA-256 of the file's bytes, if stored.", "9b74c9897bac770ffc029102a200c5de" * 2),
    "content_type": Term("The file's media type, checked on its content.", "image/jpeg"),
    "size": Term("The file's size in bytes.", 482113),
    # ---------------------------------------------------------------- staff, privacy
    "basis": Term("On what basis it was done.", "request"),
    "keys_destroyed": Term("How many of the citizen's encryption keys were destroyed.", 3),
    "files_deleted": Term("How many of the citizen's stored files (attachments, raw emails) were deleted.", 2),
    "subjects": Term("The streams (aggregate ids) whose personal data the erasure covered.", [_CITIZEN_ID]),
    # ---------------------------------------------------------------- IVR and recordings
    "flow_id": Term("The IVR flow (its name).", "main-menu"),
    "flow_version": Term("The published version of the IVR flow (1, 2 …).", 3),
    "flow_sha256": Term("SHA-256 of the IVR flow version's canonical JSON.", "5d41402abc4b2a76b9719d911017c592" * 2),
    "document": Term("The IVR flow as published.", {"start": "welcome", "nodes": {}}),
    "steps": Term("How many menu steps the caller went through.", 4),
    "request_reference": Term("The request a message left in the IVR became, if any.", "261116090500"),
    "request_ids": Term("The requests (aggregate ids) linked to the contact.", [_REQUEST_ID]),
    "started_at": Term("When it started.", EXAMPLE_TIME),
    "expires_at": Term("When it expires.", "2026-11-16T10:05:00+00:00"),
    "duration_s": Term("Duration in seconds.", 185.2),
    "size_bytes": Term("Size in bytes.", 2963200),
    "sample_percent": Term("The share of calls recorded, in percent (mode sample).", 10.0),
    "announcement": Term("The prompt that tells the caller the call is recorded, if any.", "recording-notice"),
    "grantee": Term("The actor the playback link is for.", "sup-li"),
    "token_sha256": Term("SHA-256 of the link's token (the event never holds a usable link).", "2c26b46b68ffc68ff99b453c1d304134" * 2),
    "is_control_office": Term("The department is the control office (rules on ownership, supervises).", False),
}
