"""Fixtures for the SLA tests: a hotline whose jurisdiction has a business calendar."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from domain.base import SYSTEM, Actor, FixedClock
from domain.calendars import commands as calc
from domain.handling import Command
from domain.requests import commands as c
from infra.runtime import Hotline
from infra.settings import Settings
from tests.conftest import load_catalogue

CALENDARS = Path(__file__).resolve().parents[2] / "infra" / "data" / "calendars.yaml"
AGENT = Actor("op1", "agent")
SUP = Actor("sup1", "supervisor")
ROADS = Actor("roads", "department", departments=("transport",))
ENV = Actor("env", "department", departments=("environment",))
CONTACT = c.Contact(name="Mario Rossi", phone="+39 06 1234 5678", email="mario@example.it")


def load_calendars(h: Hotline) -> None:
    h.bus.execute(calc.ImportCalendars(document=yaml.safe_load(CALENDARS.read_text("utf-8"))), SYSTEM)


def start(settings: Settings, clock: FixedClock) -> Hotline:
    h = Hotline.start(settings, clock)
    load_catalogue(h)
    load_calendars(h)
    return h


@pytest.fixture
def shanghai(store_settings: Settings, clock: FixedClock) -> Iterator[Hotline]:
    h = start(store_settings.model_copy(update={"jurisdiction": "shanghai"}), clock)
    yield h
    h.close()


@pytest.fixture
def rome(store_settings: Settings, clock: FixedClock) -> Iterator[Hotline]:
    h = start(store_settings.model_copy(update={"jurisdiction": "rome"}), clock)
    yield h
    h.close()


def run(h: Hotline, cmd: Command, actor: Actor) -> dict[str, Any]:
    return h.bus.execute(cmd, actor).result


def register(h: Hotline, **kw: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "kind": "action",
        "subtype": "complaint",
        "channel": "phone",
        "description": "Pothole",
        "contact": CONTACT,
    }
    fields.update(kw)
    return run(h, c.RegisterRequest(**fields), AGENT)


def request_events(h: Hotline, request_id: str) -> list[Any]:
    return [e for e in h.store.envelopes(0, 100_000) if e.aggregate_id == request_id]
