"""A citizen signs in by email whatever the case they type it in: the code asked for as
``Mario.Rossi@Example.IT`` is accepted for ``mario.rossi@example.it``, is sent to the
address as typed, and the token names the citizen already on record for that address."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from domain.base import FixedClock
from infra.runtime import Hotline
from tests.auth import bearer
from tests.conftest import START
from tests.identity.test_citizen_sign_in import code_from_mail, exchange, mails_to, start
from tests.sla.servers import SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def hotline(tmp_path: Path, smtp: SmtpServer) -> Iterator[Hotline]:
    h = start(tmp_path, smtp, FixedClock(START))
    yield h
    h.close()


def test_sign_in_by_email_whatever_its_case(client: TestClient, hotline: Hotline, smtp: SmtpServer) -> None:
    agent = bearer(hotline.settings, "agent-1", "agent")
    registered = client.post(
        "/requests",
        json={
            "kind": "information",
            "channel": "phone",
            "description": "Opening hours?",
            "contact": {"name": "Mario Rossi", "phone": "+39 06 1234 5678", "email": "mario.rossi@example.it"},
        },
        headers=agent,
    )
    assert registered.status_code == 201, registered.text

    asked = client.post("/auth/citizen/code", json={"email": "Mario.Rossi@Example.IT"})
    assert asked.status_code == 202, asked.text
    assert mails_to(smtp, "Mario.Rossi@example.it"), "sent to the address as typed"
    code = code_from_mail(smtp, "Mario.Rossi@example.it")

    r = exchange(client, code, "MARIO.ROSSI@EXAMPLE.IT")
    assert r.status_code == 200, r.text
    assert r.json()["citizen_id"] == registered.json()["citizen_id"]
