"""Queue rules as pure code: who may serve a queue, how priority ages, when a queue is open.

A queue requires skills at a minimum proficiency (1–5). While a contact waits, the
requirement relaxes in steps (``relaxation``: after N seconds, accept agents K levels
below the minimum), like Asterisk's penalty rules or "bullseye" routing. A contact's
priority grows with its wait (``ageing_per_minute``), so low-priority work is not
starved. Everything here is a function of its inputs: no clock, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from domain.base import InvalidCommand

MEDIA = ("voice", "chat", "email", "web")
# Which medium a contact's channel occupies on the agent's desk.
CHANNEL_MEDIA = {
    "phone": "voice",
    "callback": "voice",
    "chat": "chat",
    "social": "chat",
    "sms": "chat",
    "email": "email",
    "web": "web",
}
STRATEGIES = ("longest_idle", "best_proficiency", "round_robin", "fewest_contacts", "ring_all")
OVERFLOW_TARGETS = ("queue", "voicemail", "callback")
DEFAULT_CAPACITY = {"voice": 1, "chat": 3, "email": 5, "web": 2}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_PROFICIENCY = 5


def media_of(channel: str) -> str:
    try:
        return CHANNEL_MEDIA[channel]
    except KeyError:
        raise InvalidCommand(f"unknown contact channel {channel!r}", channels=sorted(CHANNEL_MEDIA)) from None


def check_skills(skills: dict[str, int], what: str = "skill") -> dict[str, int]:
    for name, level in skills.items():
        if not isinstance(level, int) or not 1 <= level <= MAX_PROFICIENCY:
            raise InvalidCommand(f"{what} {name!r} must have a proficiency from 1 to 5, not {level!r}")
    return dict(skills)


# A skill a contact asks for: one word (letters of any script, digits, ``_ . -``), as the
# voice-menu schema's option skills are (a stricter pattern) and agents' skill names read.
SKILL_NAME = re.compile(r"[^\W_][\w.-]{0,63}")


def check_skill_name(skill: str) -> str:
    """The name of the skill a contact needs (agents' ``skills`` keys are the same names)."""
    if not SKILL_NAME.fullmatch(skill):
        raise InvalidCommand(f"skill {skill!r} is not a skill name: one word of at most 64 letters, digits, '_', '.' or '-'", field="skill")
    return skill


@dataclass(frozen=True)
class QueueRules:
    """A queue's configuration, validated. Stored as a plain dict in the queue's events."""

    queue_id: str
    media: str = "voice"
    required_skills: dict[str, int] = field(default_factory=dict)
    priority: int = 0  # added to every contact's priority: a queue's weight
    strategy: str = "longest_idle"
    sl_percent: float = 80.0
    sl_seconds: int = 20
    max_wait_seconds: int | None = None  # then overflow
    overflow: dict[str, Any] | None = None  # {"to": "queue"|"voicemail"|"callback", "queue_id": ...}
    opening_hours: dict[str, list[list[str]]] | None = None  # {"mon": [["08:00", "20:00"]]}; None = 24 h
    timezone: str = "UTC"
    grab: bool = False  # agents may pick waiting work themselves (话务抢答)
    wrap_seconds: int = 30
    offer_timeout_seconds: int = 15
    max_missed_offers: int = 2  # then the agent goes not-ready
    relaxation: list[list[int]] = field(default_factory=list)  # [[after_seconds, levels_down], ...]
    ageing_per_minute: float = 0.0
    join_when_empty: bool = True  # with no agent logged in who could serve it: queue anyway?
    # After this long waiting a caller's language is no longer required (the desk tells the
    # agent, for the site's interpreter service); None: only agents who speak it, however long.
    language_relax_seconds: int | None = None
    # A callback (virtual hold, or scheduled) no agent could take within this long of its
    # place in line or due time is given up (reason max_age): it never waits for ever.
    # None: no limit. A day, so that every shift (and its languages) had its turn.
    callback_max_age_seconds: int | None = 24 * 3600

    @classmethod
    def parse(cls, queue_id: str, config: dict[str, Any]) -> QueueRules:
        known = set(cls.__dataclass_fields__) - {"queue_id"}
        unknown = set(config) - known
        if unknown:
            raise InvalidCommand(f"unknown queue settings {sorted(unknown)}", known=sorted(known))
        rules = cls(queue_id=queue_id, **config)
        rules.validate()
        return rules

    def validate(self) -> None:
        if self.media not in MEDIA:
            raise InvalidCommand(f"media must be one of {MEDIA}")
        check_skills(self.required_skills, "required skill")
        if self.strategy not in STRATEGIES:
            raise InvalidCommand(f"strategy must be one of {STRATEGIES}")
        if self.strategy == "ring_all" and not self.grab:
            raise InvalidCommand("ring_all offers work to every agent at once: it needs grab mode")
        if not 0 < self.sl_percent <= 100 or self.sl_seconds < 0:
            raise InvalidCommand("service level target: 0 < percent <= 100 and seconds >= 0")
        if self.max_wait_seconds is not None and self.max_wait_seconds < 0:
            raise InvalidCommand("max_wait_seconds must be >= 0")
        if self.language_relax_seconds is not None and self.language_relax_seconds < 0:
            raise InvalidCommand("language_relax_seconds must be >= 0")
        if self.callback_max_age_seconds is not None and self.callback_max_age_seconds <= 0:
            raise InvalidCommand("callback_max_age_seconds must be > 0")
        if self.overflow is not None:
            to = self.overflow.get("to")
            if to not in OVERFLOW_TARGETS:
                raise InvalidCommand(f"overflow 'to' must be one of {OVERFLOW_TARGETS}")
            if to == "queue" and not self.overflow.get("queue_id"):
                raise InvalidCommand("overflow to a queue needs its queue_id")
            if to == "queue" and self.overflow.get("queue_id") == self.queue_id:
                raise InvalidCommand("a queue cannot overflow to itself")
        if self.wrap_seconds < 0 or self.offer_timeout_seconds <= 0 or self.max_missed_offers < 1:
            raise InvalidCommand("wrap_seconds >= 0, offer_timeout_seconds > 0, max_missed_offers >= 1")
        last = -1
        for step in self.relaxation:
            if len(step) != 2 or step[0] <= last or not 1 <= step[1] <= MAX_PROFICIENCY - 1:
                raise InvalidCommand("relaxation is [[after_seconds, levels_down], ...] with growing seconds, levels 1-4")
            last = step[0]
        try:
            ZoneInfo(self.timezone)
        except Exception:
            raise InvalidCommand(f"unknown timezone {self.timezone!r}") from None
        for day, spans in (self.opening_hours or {}).items():
            if day not in WEEKDAYS:
                raise InvalidCommand(f"opening hours: unknown day {day!r}, use {WEEKDAYS}")
            for span in spans:
                try:
                    start, end = time.fromisoformat(span[0]), time.fromisoformat(span[1])
                except (ValueError, IndexError, TypeError):
                    raise InvalidCommand(f"opening hours: bad span {span!r}, use ['08:00', '20:00']") from None
                if start >= end:
                    raise InvalidCommand(f"opening hours: {span[0]} is not before {span[1]}")

    def as_config(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "queue_id"}

    # ------------------------------------------------------------------ rules
    def levels_relaxed(self, wait_seconds: float) -> int:
        """How many proficiency levels below the minimum are accepted after this wait."""
        down = 0
        for after, levels in self.relaxation:
            if wait_seconds >= after:
                down = levels
        return down

    def skill_dropped(self, wait_seconds: float) -> bool:
        """Whether a contact that asked for a skill may, after this wait, go to any agent of
        the queue: once the queue's last relaxation step is reached. A queue that never
        relaxes keeps the skill for as long as the contact waits (overflow and maximum
        wait still apply)."""
        return bool(self.relaxation) and wait_seconds >= self.relaxation[-1][0]

    def language_dropped(self, wait_seconds: float) -> bool:
        """Whether a caller may, after this wait, go to an agent who does not speak their
        language."""
        return self.language_relax_seconds is not None and wait_seconds >= self.language_relax_seconds

    def callback_expired(self, age_seconds: float) -> bool:
        """Whether a callback that has waited this long (since its place in line or its
        due time) is too old to attempt."""
        return self.callback_max_age_seconds is not None and age_seconds >= self.callback_max_age_seconds

    def next_relaxation_after(self, wait_seconds: float) -> float | None:
        """The wait (seconds) at which the requirement next relaxes (a level, the skill
        asked for, the language), if it ever does."""
        steps = [after for after, _ in self.relaxation]
        if self.language_relax_seconds is not None:
            steps.append(self.language_relax_seconds)
        return min((float(after) for after in steps if after > wait_seconds), default=None)

    def margin(self, skills: dict[str, int]) -> int | None:
        """How far an agent's skills exceed the requirement (its worst skill); None when
        a required skill is missing altogether: relaxation lowers levels, it never
        lets an agent without the skill take the contact."""
        if not self.required_skills:
            return 0
        worst: int | None = None
        for skill, minimum in self.required_skills.items():
            level = skills.get(skill)
            if not level:
                return None
            worst = level - minimum if worst is None else min(worst, level - minimum)
        return worst

    def proficiency_score(self, skills: dict[str, int]) -> int:
        return sum(skills.get(s, 0) for s in self.required_skills)

    def is_open(self, at: datetime) -> bool:
        if self.opening_hours is None:
            return True
        local = at.astimezone(ZoneInfo(self.timezone))
        spans = self.opening_hours.get(WEEKDAYS[local.weekday()], [])
        now = local.time()
        return any(time.fromisoformat(s) <= now < time.fromisoformat(e) for s, e in spans)

    def effective_priority(self, priority: int, waited_seconds: float) -> float:
        return self.priority + priority + self.ageing_per_minute * waited_seconds / 60.0


def queue_rules(queue_id: str, config: dict[str, Any]) -> QueueRules:
    """Rules from a stored config dict (already validated when it was written)."""
    return QueueRules(queue_id=queue_id, **config)
