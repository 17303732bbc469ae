"""Rendering the console: Jinja2 templates, translations and formats by locale.

Labels are gettext messages (English is the message id); each language's catalogues are
``locales/<lang>/<area>.po``, one file per area of the console (``common.po`` for what
all share), read with Babel on first use (no compile step). Dates, numbers and durations are formatted by Babel
for the user's locale, in the hotline's time zone. Catalogue names and articles, which
the domain keeps in every language, are picked with :func:`localised`.
"""

from __future__ import annotations

import gettext
import io
import itertools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import babel.dates
import babel.numbers
from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.units import format_unit
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from api.console import reference
from domain.access import Access, Action, allows
from domain.base import Actor
from infra.runtime import Hotline

HERE = Path(__file__).parent
LANGUAGES = ("zh", "ar", "it", "en")
LANGUAGE_NAMES = {"zh": "中文", "ar": "العربية", "it": "Italiano", "en": "English"}
RTL = frozenset({"ar"})
LANGUAGE_COOKIE = "hotline_lang"


def catalogue(language: str, area: str) -> gettext.GNUTranslations | None:
    """One area's catalogue (``locales/<lang>/<area>.po``), compiled in memory. A new
    object each time: each area's chain of fallbacks is its own."""
    po = HERE / "locales" / language / f"{area}.po"
    if not po.is_file():
        return None
    with po.open("rb") as f:
        catalog = read_po(f, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@cache
def translations(language: str, area: str = "common") -> gettext.NullTranslations:
    """The translations a screen area uses: its own catalogue first (the same English word
    may be said differently on the desk and in a department's inbox: "Accept" a call, a
    case), then the shared one, then the other areas'. English: none."""
    folder = HERE / "locales" / language
    others = sorted(p.stem for p in folder.glob("*.po")) if folder.is_dir() else []
    chain = [c for name in dict.fromkeys([area, "common", *others]) if (c := catalogue(language, name)) is not None]
    if not chain:
        return gettext.NullTranslations()
    for first, then in itertools.pairwise(chain):
        first.add_fallback(then)
    return chain[0]


def choose_language(request: Request, default: str) -> str:
    """The user's choice (the language menu sets a cookie), else the browser's, else the hotline's."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    accepted = [part.split(";")[0].strip().replace("-", "_") for part in request.headers.get("accept-language", "").split(",")]
    negotiated = Locale.negotiate([a for a in accepted if a], list(LANGUAGES), sep="_")
    return str(negotiated.language) if negotiated and negotiated.language in LANGUAGES else default


UNITS = ((86400, "duration-day"), (3600, "duration-hour"), (60, "duration-minute"), (1, "duration-second"))


class Formats:
    """Dates, numbers and durations for one locale, in the hotline's time zone."""

    def __init__(self, language: str, time_zone: str) -> None:
        self.locale = Locale.parse({"zh": "zh_Hans_CN", "ar": "ar_EG", "it": "it_IT", "en": "en_GB"}[language])
        self.tz = ZoneInfo(time_zone)

    def when(self, value: datetime | str | None, form: str = "short") -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return babel.dates.format_datetime(value, form, tzinfo=self.tz, locale=self.locale)

    def time(self, value: datetime | str | None) -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return babel.dates.format_time(value, "short", tzinfo=self.tz, locale=self.locale)

    def number(self, value: float | int | None, digits: int = 0) -> str:
        if value is None:
            return "–"
        return babel.numbers.format_decimal(round(value, digits), locale=self.locale, decimal_quantization=False)

    def percent(self, value: float | None) -> str:
        """A share (0.87) as a percentage in the locale's digits and sign."""
        if value is None:
            return "–"
        return babel.numbers.format_percent(value, "#,##0.#%", locale=self.locale)

    def elapsed(self, seconds: float | None) -> str:
        """A span that was measured (a wait, the time left before a deadline or past it, a
        mean handle time), in the locale's narrow unit words as ``duration`` writes them,
        but floored and to two units: 1 day 16 h left reads "1d 16h", not "2d" (``duration``
        rounds to one unit: right for a target, wrong for what a user acts on)."""
        if seconds is None:
            return "–"
        left = int(abs(seconds))
        parts: list[str] = []
        for size, unit in UNITS:
            if left >= size or (size == 1 and not parts):
                parts.append(format_unit(left // size, unit, length="narrow", locale=self.locale))
                left %= size
            elif parts:
                break  # the unit under the largest is 0: "2h", not "2h 0min"
            if len(parts) == 2:
                break
        if len(parts) == 1:
            return parts[0]
        # CLDR's narrow unit list, as Babel's format_list resolves it; not format_list itself,
        # which repeats the second item in a locale without a pattern for two (Arabic).
        style = next(s for s in ("unit-narrow", "unit-short", "unit", "standard") if s in self.locale.list_patterns)
        patterns = self.locale.list_patterns[style]
        return str(patterns["2"] if "2" in patterns else patterns["end"]).format(*parts)

    def duration(self, seconds: float | None) -> str:
        """How long, in the locale's words: "3 min", "2 h"."""
        if seconds is None:
            return "–"
        return babel.dates.format_timedelta(timedelta(seconds=abs(seconds)), threshold=1.5, format="narrow", locale=self.locale)


def localised(names: Mapping[str, str] | str | None, language: str) -> str:
    """A name or text kept in several languages: the user's, else English, else any."""
    if names is None:
        return ""
    if isinstance(names, str):
        return names
    return names.get(language) or names.get("en") or next(iter(names.values()), "")


def ltr(value: Any) -> Markup:
    """A phone number, reference or id: kept left to right inside right-to-left text."""
    return Markup('<bdi dir="ltr">{}</bdi>').format(value if value is not None else "")


def N_(message: str) -> str:
    """Marks a label for translation where it is defined; translated where it is shown."""
    return message


ROLE_NAMES = {
    "citizen": N_("citizen"),
    "agent": N_("agent"),
    "expert": N_("expert"),
    "supervisor": N_("supervisor"),
    "department": N_("department"),
    "control_office": N_("control office"),
    "analyst": N_("analyst"),
    "auditor": N_("auditor"),
    "integrator": N_("integrator"),
    "administrator": N_("administrator"),
    "system": N_("system"),
}

# Words of the domain, as people read them (the values stay the domain's).
TERMS: dict[str, dict[str, str]] = {
    "agent_state": {
        "logged_out": N_("signed out"),
        "available": N_("available"),
        "not_ready": N_("not ready"),
        "reserved": N_("ringing"),
        "on_contact": N_("on a contact"),
        "wrap_up": N_("after-call work"),
    },
    "status": {
        "registered": N_("registered"),
        "classified": N_("classified"),
        "answered": N_("answered"),
        "dispatched": N_("dispatched"),
        "in_progress": N_("in progress"),
        "returned": N_("returned"),
        "awaiting_ruling": N_("awaiting ruling"),
        "waiting_citizen": N_("waiting for the citizen"),
        "replied": N_("replied"),
        "resolved": N_("resolved"),
        "closed": N_("closed"),
        "open": N_("open"),
        "completed": N_("completed"),
        "cancelled": N_("cancelled"),
    },
    # A request's steps, as a citizen's history tells them (by the event's short name).
    "step": {
        "registered": N_("Request registered"),
        "dispatched": N_("Sent to"),
        "interim_replied": N_("Interim reply"),
        "final_replied": N_("Reply"),
        "closed": N_("Closed"),
        "reopened": N_("Reopened"),
        "rated": N_("Rated"),
        "work_order_outcome_recorded": N_("Work order outcome"),
    },
    "urgency": {"urgent": N_("urgent"), "control": N_("control"), "normal": N_("normal")},
    "kind": {"information": N_("information"), "action": N_("action"), "feedback": N_("feedback")},
    "subtype": {
        "consultation": N_("consultation"),
        "complaint": N_("complaint"),
        "application": N_("application"),
        "suggestion": N_("suggestion"),
        "praise": N_("praise"),
    },
    "channel": {
        "phone": N_("phone"),
        "web": N_("web"),
        "email": N_("email"),
        "sms": N_("SMS"),
        "chat": N_("chat"),
        "walk_in": N_("walk-in"),
        "social": N_("social media"),
        "voicemail": N_("voice message"),
    },
    "not_ready_reason": {
        "break": N_("break"),
        "lunch": N_("lunch"),
        "training": N_("training"),
        "meeting": N_("meeting"),
        "after_call_work": N_("after-call work"),
        "missed_offers": N_("missed offers"),
        "login": N_("just signed in"),
        "supervisor": N_("set by a supervisor"),
        "other": N_("other"),
    },
    "alarm": {"service_level": N_("service level below target"), "longest_wait": N_("wait over target"), "waiting": N_("queue long")},
}


# What a refusal means, by its stable code (the API's message is English, for
# developers; people read these). A code not here shows the API's message.
ERRORS = {
    "contact_required": N_("Contact details are required here: fill in the fields marked."),
    "anonymous_refused": N_("This hotline does not register anonymous requests: give your contact details."),
    "forbidden": N_("Your role does not allow this."),
    "not_found": N_("Not found: it may have been removed, or the reference is wrong."),
    "invalid_state": N_("Not possible now: the case has moved on. The page shows where it stands."),
    "deadline_not_later": N_("The new deadline must be later than the current one."),
    "version_conflict": N_("Someone changed this at the same time. Look at it again and retry."),
    "too_many_attempts": N_("Too many attempts. Wait a moment and try again."),
    "rate_limited": N_("Too many attempts. Wait a moment and try again."),
    "unauthenticated": N_("Your session has ended: sign in again."),
    "invalid_code": N_("That code is wrong or has expired."),
    "invalid_grant": N_("Unknown username or wrong password."),
    "delivery_failed": N_("The code could not be sent. Try again, or use another way to sign in."),
    "csrf": N_("The page is out of date: reload it and try again."),
    "agent_busy": N_("The agent is busy."),
    "agent_unavailable": N_("The agent is not available."),
    "not_offered": N_("This contact is no longer offered to you."),
    "invalid_request": N_("Some fields are not filled in correctly: see the fields marked."),
    "expected_not_future": N_("The expected date must be in the future."),
    "not_accepted_yet": N_("The department must accept the case before the final reply."),
    "final_reply_first": N_("A case is closed only after its final reply."),
    "extension_pending": N_("An extension request is already waiting for approval."),
    "extension_too_late": N_("An extension must be asked for before the deadline."),
    "problem_code_needed": N_("Classify the case with a problem code first."),
    "information_not_dispatched": N_("An information request is answered here, not dispatched: change its kind first."),
    "text_required": N_("Fill in the field marked."),
    "phone_unreadable": N_("This phone number cannot be read: write it with its area code, for example +39 06 1234 5678."),
    "email_unreadable": N_("This email address cannot be read: check it, for example name@example.org."),
}
# A field's problem, by pydantic's error type (the API sends it with each problem).
PROBLEMS = {
    "missing": N_("Required"),
    "string_too_short": N_("Too short"),
    "string_too_long": N_("Too long"),
    "literal_error": N_("Not one of the allowed values"),
    "enum": N_("Not one of the allowed values"),
    "int_parsing": N_("A whole number is needed"),
    "float_parsing": N_("A number is needed"),
    "datetime_from_date_parsing": N_("A date and time are needed"),
    "datetime_parsing": N_("A date and time are needed"),
    "value_error": N_("Not valid"),
    "string_pattern_mismatch": N_("Not in the expected form"),
    "greater_than_equal": N_("Too small"),
    "less_than_equal": N_("Too large"),
}


# The screens, and which roles have them in their menu (what each may do on a screen is
# still the policy's: domain/access.py).
NAV: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("/console/desk", N_("Desk"), frozenset({"agent", "expert", "supervisor"})),
    ("/console/wallboard", N_("Wallboard"), frozenset({"supervisor"})),
    ("/console/agents", N_("Agents"), frozenset({"supervisor"})),
    ("/console/inbox", N_("Inbox"), frozenset({"department", "supervisor"})),
    ("/console/control", N_("Control office"), frozenset({"control_office", "supervisor"})),
    ("/console/sla", N_("Deadlines"), frozenset({"supervisor", "control_office"})),
    ("/console/cases", N_("Cases"), frozenset({"agent", "expert", "supervisor", "department", "control_office", "auditor"})),
    ("/console/knowledge", N_("Knowledge"), frozenset({"agent", "expert", "supervisor", "administrator"})),
    ("/console/reports", N_("Reports"), frozenset({"analyst", "supervisor", "control_office", "auditor"})),
    ("/console/audit", N_("Audit"), frozenset({"auditor"})),
)


def live_url(topics: Iterable[str]) -> str:
    """The page's live connection (api/console/live.py) for these topics."""
    return "/console/live?" + urlencode([("topic", t) for t in topics])


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["ltr"] = ltr
    # tojson as written (王芳, not \u738b\u82b3): still escaped for HTML by Jinja.
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
    env.globals["live_url"] = live_url
    env.globals["LANGUAGE_NAMES"] = LANGUAGE_NAMES
    return env


ENV = _environment()


def context(request: Request, actor: Actor | None, area: str = "common", **values: Any) -> dict[str, Any]:
    """What every template sees: the user, their language and formats, translations, CSRF."""
    hotline: Hotline = request.app.state.hotline
    language = choose_language(request, hotline.settings.default_language)
    t = translations(language, area)

    def term(kind: str, value: str | None) -> str:
        """A domain value (a status, a role, a channel) in the user's words."""
        words = ROLE_NAMES if kind == "role" else TERMS.get(kind, {})
        return t.gettext(words.get(value, value)) if value else ""

    @cache
    def problem_names() -> dict[str, dict[str, str]]:
        return reference.problem_names(hotline)  # once per page: reference data (the store's cache)

    def problem_name(code: str | None) -> str:
        """A problem code by its name in the user's language; the code itself if the
        catalogue does not know it (retired, or a catalogue not loaded yet)."""
        if not code:
            return ""
        return localised(problem_names().get(code), language) or code

    return {
        "request": request,
        "actor": actor,
        "lang": language,
        "dir": "rtl" if language in RTL else "ltr",
        "fmt": Formats(language, hotline.settings.time_zone),
        "_": t.gettext,
        "gettext": t.gettext,
        "ngettext": t.ngettext,
        "name_in": lambda names: localised(names, language),
        # Whether to offer an action: a form the policy would refuse is not shown (the API
        # still decides). ``may("agents.session", subject="op-anna")``.
        "may": lambda action, **on: actor is not None and allows(actor, Action(action), Access(**on) if on else None),
        "csrf": request.cookies.get("hotline_csrf", ""),
        "nav": [(path, t.gettext(label)) for path, label, roles in NAV if actor and roles & set(actor.roles)],
        "role_name": lambda role: term("role", role),
        "term": term,
        "problem_name": problem_name,
        "error_text": lambda error: t.gettext(ERRORS[error.code]) if error.code in ERRORS else error.message,
        "messages": {
            "saved": t.gettext("Saved"),
            "failed": t.gettext("Not done"),
            "offline": t.gettext("The server cannot be reached. Try again."),
            "errors": {code: t.gettext(text) for code, text in ERRORS.items()},
            "problems": {kind: t.gettext(text) for kind, text in PROBLEMS.items()},
        },
        "agent_state_name": lambda state: term("agent_state", state),
        "alarm_name": lambda alarm: term("alarm", alarm),
        **values,
    }


def render(
    request: Request, template: str, actor: Actor | None, status_code: int = 200, *, part: str | None = None, **values: Any
) -> HTMLResponse:
    """The page ``template``; or, when htmx refreshes the page's live ``part`` (it sends
    HX-Request), that part alone: one route serves a page and its refreshes."""
    if part is not None and request.headers.get("hx-request") == "true":
        template = part
    # A template's area is its folder (templates/desk/… → the desk's catalogue).
    area = template.split("/", 1)[0] if "/" in template else "common"
    html = ENV.get_template(template).render(context(request, actor, area, **values))
    return HTMLResponse(html, status_code=status_code)
