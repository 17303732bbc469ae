"""The department inbox asks for a deadline extension and waits for the citizen.

Server-side (FastAPI's TestClient renders the HTML; no browser), on SQLite and PostgreSQL.
The browser's part is replayed as console.js does it: the forms' ``data-api`` URL posted
with the session cookie and the CSRF double submit. The oracles are the JSON API (the
case's status and deadline), the supervisor's approvals screen (which decides), and each
language's catalogue read straight from its ``.po`` file.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import babel.dates
import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from httpx import Response

from api.app import create_app
from api.console.web import HERE
from domain.base import Actor, FixedClock
from domain.requests import commands as c
from infra.runtime import Hotline
from tests.auth import token_for

SUP = Actor("sup-ext", "supervisor")
TRANSPORT = {"sub": "roads-ext", "roles": "department", "departments": ["transport"]}
ENVIRONMENT = {"sub": "green-ext", "roles": "department", "departments": ["environment"]}
SUPERVISOR = {"sub": "sup-ext", "roles": "supervisor", "departments": []}
VOID = frozenset({"input", "br", "meta", "link", "img", "hr", "source", "wbr", "col", "area", "base", "embed", "track"})


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    def text(self) -> str:
        return " ".join(" ".join(self.parts + [child.text() for child in self.children]).split())

    def all(self, tag: str | None = None, **attrs: str | None) -> list[Node]:
        """The descendants with this tag and these attributes (None: present, any value)."""
        found = []
        for child in self.children:
            wanted = (tag is None or child.tag == tag) and all(
                (name in child.attrs) if value is None else child.attrs.get(name) == value
                for name, value in ((k.replace("_", "-"), v) for k, v in attrs.items())
            )
            if wanted:
                found.append(child)
            found.extend(child.all(tag, **attrs))
        return found


class Tree(HTMLParser):
    """The page as a small tree (the standard library's parser; no other is installed)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.root = Node("document", {})
        self._stack = [self.root]
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self._stack[-1].children.append(node)
        if tag not in VOID:
            self._stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._stack) - 1, 0, -1):
            if self._stack[i].tag == tag:
                del self._stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self._stack[-1].parts.append(data)


@dataclass
class Card:
    section: str
    node: Node

    @property
    def status(self) -> str:
        return self.node.attrs["data-status"]

    def apis(self) -> set[str]:
        """Where the card's forms post (the API's command endpoints)."""
        return {form.attrs["data-api"] for form in self.node.all("form", data_api=None)}

    def form(self, api: str) -> Node:
        (found,) = [f for f in self.node.all("form", data_api=None) if f.attrs["data-api"] == api]
        return found

    def one(self, **attrs: str | None) -> Node | None:
        found = self.node.all(**attrs)
        return found[0] if found else None


def card_of(html: str, reference: str) -> Card | None:
    for section in Tree(html).root.all("section", data_section=None):
        for case in section.all("li", data_reference=reference):
            return Card(section.attrs["data-section"], case)
    return None


def catalogue(lang: str, area: str) -> dict[str, str]:
    with (HERE / "locales" / lang / f"{area}.po").open("rb") as f:
        return {str(m.id): str(m.string) for m in read_po(f, locale=lang) if m.id and isinstance(m.id, str) and m.string}


class Console:
    """A TestClient signed in to the console as one person, posting as console.js does."""

    def __init__(self, client: TestClient, hotline: Hotline) -> None:
        self.client, self.hotline = client, hotline
        self.csrf = secrets.token_urlsafe(16)

    def as_(self, who: dict[str, Any], lang: str = "en") -> Console:
        token = token_for(self.hotline.settings, who["sub"], who["roles"], departments=who["departments"])
        self.client.cookies.set("hotline_session", token)
        self.client.cookies.set("hotline_csrf", self.csrf)
        self.client.cookies.set("hotline_lang", lang)
        return self

    def page(self, url: str) -> str:
        answer = self.client.get(url)
        assert answer.status_code == 200, answer.text[:2000]
        return answer.text

    def inbox(self, reference: str, department: str | None = None) -> Card:
        card = card_of(self.page("/console/inbox" + (f"?department={department}" if department else "")), reference)
        assert card is not None, f"{reference} is not in the inbox"
        return card

    def submit(self, form: Node, body: dict[str, Any], *, csrf: bool = True) -> Response:
        """The form's ``data-api`` URL ({ref} filled from its hidden field), as console.js posts it."""
        hidden = {i.attrs["name"]: i.attrs.get("value", "") for i in form.all("input", type="hidden")}
        url = form.attrs["data-api"].replace("{ref}", hidden["ref"])
        headers = {"Idempotency-Key": secrets.token_hex(8), **({"X-CSRF-Token": self.csrf} if csrf else {})}
        return self.client.post(url, json=body, headers=headers)

    def post(self, url: str, body: dict[str, Any]) -> Response:
        """A post as another screen's form makes it (the approvals screen's decision)."""
        return self.client.post(url, json=body, headers={"X-CSRF-Token": self.csrf})

    def case(self, reference: str) -> dict[str, Any]:
        answer = self.client.get(f"/requests/{reference}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


@pytest.fixture
def console(hotline: Hotline) -> Iterator[Console]:
    with TestClient(create_app(hotline=hotline), base_url="http://testserver") as client:
        yield Console(client, hotline)


def dispatched_case(hotline: Hotline, description: str = "Deep pothole at number 12") -> str:
    """A pothole dispatched to transport; its reference."""
    fields: dict[str, Any] = {"kind": "action", "subtype": "complaint", "channel": "phone", "problem_code": "pothole"}
    contact = c.Contact(name="Giulia Bianchi", phone="+39 06 5550 7788")
    result = hotline.bus.execute(c.RegisterRequest(**fields, description=description, contact=contact), SUP).result
    reference = str(result["reference"])
    hotline.bus.execute(c.Dispatch(ref=reference), SUP)
    return reference


def accepted_case(hotline: Hotline, console: Console) -> str:
    """A pothole dispatched to transport and accepted there from the inbox; its reference."""
    reference = dispatched_case(hotline)
    card = console.as_(TRANSPORT).inbox(reference)
    assert console.submit(card.form("/requests/{ref}/accept"), {}).status_code == 200
    return reference


def messages(html: str) -> dict[str, Any]:
    """The words console.js shows for a refusal's code (the page's ``data-messages``)."""
    (body,) = Tree(html).root.all("body")
    return dict(json.loads(body.attrs["data-messages"]))


def shown(hotline: Hotline, at: datetime) -> str:
    """A moment as an English page shows it (Babel, the hotline's time zone)."""
    return babel.dates.format_datetime(at, "short", tzinfo=ZoneInfo(hotline.settings.time_zone), locale="en_GB")


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_an_extension_is_asked_from_the_inbox_and_decided_on_the_approvals_screen(hotline: Hotline, console: Console) -> None:
    reference = accepted_case(hotline, console)
    due = moment(console.case(reference)["due_at"])
    card = console.inbox(reference)
    assert card.section == "in-progress" and "/requests/{ref}/extension" in card.apis()
    assert card.one(data_extension=None) is None
    form = card.form("/requests/{ref}/extension")
    fields = {i.attrs["name"]: i for i in [*form.all("input"), *form.all("textarea")]}
    # What the command takes: the deadline asked for and the reason; none earlier than now's.
    assert fields["requested_due_at"].attrs["type"] == "datetime-local" and "required" in fields["reason"].attrs
    assert fields["requested_due_at"].attrs["min"] > due.strftime("%Y-%m-%d")

    asked = due + timedelta(days=3)
    body = {"requested_due_at": asked.isoformat(), "reason": "Asphalt on order until Thursday"}
    # The double submit: the session cookie alone (another site's form) is refused.
    refused = console.submit(form, body, csrf=False)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf"
    assert console.submit(form, body).status_code == 200

    card = console.inbox(reference)
    pending = card.one(data_extension="pending")
    assert pending is not None and "Asphalt on order until Thursday" in pending.text()
    assert shown(hotline, asked) in pending.text()
    assert "/requests/{ref}/extension" not in card.apis(), "a second request is offered while one waits"
    # Asked again anyway (a stale page): the domain refuses, and the page has the words for
    # that refusal's code in the user's language.
    again = console.submit(form, body)
    assert again.status_code == 409 and again.json()["error"]["code"] == "extension_pending"
    words = messages(console.as_(TRANSPORT, "ar").page("/console/inbox"))["errors"]["extension_pending"]
    assert words == catalogue("ar", "common")["An extension request is already waiting for approval."]

    # The supervisor's approvals screen lists it and approves it.
    approvals = Tree(console.as_(SUPERVISOR).page("/console/approvals")).root
    (row,) = approvals.all("tr", data_reference=reference)
    approve = next(f for f in row.all("form", data_api=None) if f.all("button", data_action="approve"))
    assert approve.attrs["data-api"] == f"/requests/{reference}/extension/decision"
    assert console.post(approve.attrs["data-api"], {"approve": True}).status_code == 200
    assert not Tree(console.page("/console/approvals")).root.all("tr", data_reference=reference)

    assert moment(console.as_(TRANSPORT).case(reference)["due_at"]) == asked
    card = console.inbox(reference)
    approved = card.one(data_extension="approved")
    # The card's deadline is the new one (the supervisor decided, the department sees it).
    assert approved is not None and shown(hotline, asked) in approved.text()
    assert f"due {shown(hotline, asked)}" in card.node.text() and f"due {shown(hotline, due)}" not in card.node.text()
    assert "/requests/{ref}/extension" in card.apis(), "another extension may be asked"

    # A second extension, refused with a reason: the deadline stays.
    later = asked + timedelta(days=2)
    body = {"requested_due_at": later.isoformat(), "reason": "Rain"}
    assert console.submit(card.form("/requests/{ref}/extension"), body).status_code == 200
    refuse = {"approve": False, "comment": "Use a temporary patch"}
    assert console.as_(SUPERVISOR).post(f"/requests/{reference}/extension/decision", refuse).status_code == 200
    card = console.as_(TRANSPORT).inbox(reference)
    assert card.one(data_extension="refused") is not None and "Use a temporary patch" in card.node.text()
    assert moment(console.case(reference)["due_at"]) == asked


def test_the_inbox_waits_for_the_citizen_and_resumes(hotline: Hotline, console: Console, clock: FixedClock) -> None:
    reference = accepted_case(hotline, console)
    due = moment(console.case(reference)["due_at"])
    card = console.inbox(reference)
    assert card.one(data_waiting=None) is None
    answer = console.submit(card.form("/requests/{ref}/wait-for-citizen"), {"reason": "A photo of the pothole, please"})
    assert answer.status_code == 200, answer.text

    card = console.inbox(reference)
    assert card.status == "waiting_citizen" == console.case(reference)["status"]
    assert card.section == "in-progress"
    deadline = card.one(data_deadline=None)
    assert deadline is not None and deadline.attrs["data-deadline"] == "paused"
    waiting = card.one(data_waiting=None)
    assert waiting is not None and "A photo of the pothole, please" in waiting.text()
    # Waiting: no extension (the domain allows it only while the clock runs), a way to resume.
    assert card.apis() >= {"/requests/{ref}/citizen-responded"}
    assert not card.apis() & {"/requests/{ref}/extension", "/requests/{ref}/wait-for-citizen", "/requests/{ref}/reply"}

    # Two days later the citizen answers: the clock runs again, the deadline moved on.
    clock.advance(days=2)
    resume = card.form("/requests/{ref}/citizen-responded")
    answer = console.submit(resume, {"note": "Photo sent by email"})
    assert answer.status_code == 200, answer.text
    case = console.case(reference)
    assert case["status"] == "in_progress" and moment(case["due_at"]) > due
    card = console.inbox(reference)
    assert card.status == "in_progress" and card.one(data_waiting=None) is None
    deadline = card.one(data_deadline=None)
    assert deadline is not None and deadline.attrs["data-deadline"] in ("ok", "warn")
    # Resumed twice is refused by the domain (the form is gone; a stale page's post).
    stale = console.submit(resume, {})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "invalid_state"


def test_a_case_not_yet_accepted_can_wait_for_the_citizen_and_comes_back_to_be_accepted(
    hotline: Hotline, console: Console, clock: FixedClock
) -> None:
    """ "We need the exact address before we can take this": the department pauses the
    deadline from the dispatched card, and the case returns to it when the citizen answers."""
    reference = dispatched_case(hotline, "A pothole somewhere on via Roma")
    card = console.as_(TRANSPORT).inbox(reference)
    assert card.status == "dispatched"
    assert card.apis() >= {"/requests/{ref}/accept", "/requests/{ref}/wait-for-citizen"}
    answer = console.submit(card.form("/requests/{ref}/wait-for-citizen"), {"reason": "Which number of via Roma?"})
    assert answer.status_code == 200, answer.text
    assert console.case(reference)["status"] == "waiting_citizen"
    clock.advance(days=1)
    card = console.inbox(reference)
    answer = console.submit(card.form("/requests/{ref}/citizen-responded"), {"note": "Number 40"})
    assert answer.status_code == 200, answer.text
    card = console.inbox(reference)
    assert card.status == "dispatched" == console.case(reference)["status"]
    assert "/requests/{ref}/accept" in card.apis()


# What the cards and forms say, in English: each language's own words must be shown instead.
LABELS = (
    "extension asked",
    "Reason given:",
    "deadline paused",
    "Asked of the citizen:",
    "The citizen answered",
    "Resume the deadline",
    "Ask for an extension",
    "New deadline asked for",
    "Why more time is needed",
    "Wait for the citizen",
    "What the citizen must provide",
    "Pause the deadline and wait",
)


@pytest.mark.parametrize("lang", ["zh", "ar", "it"])
def test_the_new_cards_and_forms_speak_the_users_language(sqlite_hotline: Hotline, lang: str) -> None:
    hotline = sqlite_hotline
    with TestClient(create_app(hotline=hotline), base_url="http://testserver") as client:
        console = Console(client, hotline)
        waiting, extended, fresh = (accepted_case(hotline, console) for _ in range(3))
        due = moment(console.case(extended)["due_at"])
        card = console.inbox(extended)
        body = {"requested_due_at": (due + timedelta(days=2)).isoformat(), "reason": "Asfalto in arrivo"}
        assert console.submit(card.form("/requests/{ref}/extension"), body).status_code == 200
        card = console.inbox(waiting)
        assert console.submit(card.form("/requests/{ref}/wait-for-citizen"), {"reason": "Una foto"}).status_code == 200
        page = Tree(console.as_(TRANSPORT, lang).page("/console/inbox")).root
        words = catalogue(lang, "inbox")
        cards = [case for case in page.all("li", data_reference=None) if case.attrs["data-reference"] in (waiting, extended, fresh)]
        text = " ".join(card.text() for card in cards)
        for label in LABELS:
            assert words[label] in text, (lang, label)
            assert label not in text, (lang, label)
        assert words["paused: waiting for the citizen"] in page.text()
