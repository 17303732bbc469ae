"""What an IVR session asks the PBX to do: frozen values, no behaviour.

The engine (``engine.py``) answers every input with a list of these; the ARI adapter
turns each into ARI calls (``Play`` → ``POST /channels/{id}/play`` with the media URIs,
``Record`` → ``POST /channels/{id}/record``, ``HandOver`` → the contact joins its queue,
…). ``Collect`` is not an ARI call: it tells the adapter how many digits to gather and
when to report ``on_timeout`` if none come.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Play:
    """Play these ARI media URIs in order (``sound:hotline/it/welcome``, ``digits:12345``,
    ``number:3``, ``characters:AB``)."""

    media: tuple[str, ...]


@dataclass(frozen=True)
class Collect:
    """Gather up to ``max_digits`` DTMF digits; report a timeout after ``timeout_s``
    seconds without one (counted from the end of the prompt)."""

    max_digits: int
    timeout_s: float
    terminator: str | None


@dataclass(frozen=True)
class Record:
    """Record the caller as the stored recording ``name`` (after a beep, if asked)."""

    name: str
    max_seconds: int
    beep: bool


@dataclass(frozen=True)
class HandOver:
    """Leave the IVR: the caller joins ``queue_id`` with the skill and language chosen."""

    queue_id: str
    skill: str | None
    language: str
    priority: int


@dataclass(frozen=True)
class OfferCallback:
    """The caller accepted a callback to ``number`` from ``queue_id``, keeping their place
    in line (the adapter issues the contact center's callback command, then hangs up)."""

    queue_id: str
    number: str


@dataclass(frozen=True)
class Hangup:
    """End the call."""


IvrAction = Play | Collect | Record | HandOver | OfferCallback | Hangup
# The actions after which the session is over (the engine answers nothing more).
TERMINAL = (HandOver, OfferCallback, Hangup)
