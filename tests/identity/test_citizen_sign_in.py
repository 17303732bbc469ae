"""A citizen signs in with a one-time code sent by email (a real SMTP server, aiosmtpd on
loopback): the code works once, wrong codes lock the address out, codes expire in
domain time, resends and attempts are limited; the token reaches the citizen's own
cases and no one else's.

Everything here goes without a token, as a citizen who is not signed in yet does.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.base import FixedClock
from infra.runtime import Hotline
from infra.settings import Settings
from tests.auth import bearer
from tests.conftest import START, load_catalogue
from tests.sla.servers import SmtpServer

EMAIL = "mario.rossi@example.it"
Json = dict[str, Any]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def start(tmp_path: Path, smtp: SmtpServer, clock: FixedClock, **settings: Any) -> Hotline:
    h = Hotline.start(Settings(data_dir=tmp_path, smtp_host="127.0.0.1", smtp_port=smtp.port, **settings), clock)
    load_catalogue(h)
    return h


@pytest.fixture
def hotline(tmp_path: Path, smtp: SmtpServer, clock: FixedClock) -> Iterator[Hotline]:
    h = start(tmp_path, smtp, clock)
    yield h
    h.close()


def ask_code(client: TestClient, email: str = EMAIL, status: int = 202) -> Any:
    r = client.post("/auth/citizen/code", json={"email": email})
    assert r.status_code == status, f"{r.status_code} {r.text}"
    return r


def mails_to(smtp: SmtpServer, email: str) -> list[EmailMessage]:
    return [m for m in smtp.messages if email in str(m["To"])]


def code_from_mail(smtp: SmtpServer, email: str = EMAIL, nth: int = -1) -> str:
    """The code in the ``nth`` mail to ``email`` (it arrives before the 202; poll a little anyway)."""
    deadline = time.monotonic() + 5
    while not mails_to(smtp, email) and time.monotonic() < deadline:
        time.sleep(0.02)
    mails = mails_to(smtp, email)
    assert mails, f"no mail to {email}; got {[str(m['To']) for m in smtp.messages]}"
    part = mails[nth].get_body(("plain",))
    assert part is not None
    found = re.search(r"\b(\d{6})\b", part.get_content())
    assert found, part.get_content()
    return found.group(1)


def exchange(client: TestClient, code: str, email: str = EMAIL, **extra: Any) -> Any:
    return client.post("/auth/citizen/token", json={"email": email, "code": code, **extra})


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def assert_refused(response: Any, status: int, retry_after: bool = False) -> Json:
    assert response.status_code == status, f"{response.status_code} {response.text}"
    if retry_after:
        assert int(response.headers["retry-after"]) > 0, response.headers
    error: Json = response.json()["error"]
    return error


def test_code_by_email_for_a_token_with_the_citizens_id(client: TestClient, hotline: Hotline, smtp: SmtpServer) -> None:
    answer = ask_code(client).json()
    assert answer["channel"] == "email"
    assert EMAIL not in json.dumps(answer), "the answer masks the address"
    [mail] = mails_to(smtp, EMAIL)
    assert mail["From"] == hotline.settings.mail_from
    code = code_from_mail(smtp)

    r = exchange(client, code, name="Mario Rossi")
    assert r.status_code == 200, r.text
    body = r.json()
    citizen_id = body["citizen_id"]
    assert body["roles"] == ["citizen"] and body["subject"] == f"citizen:{citizen_id}"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["citizen_id"] == citizen_id and claims["roles"] == ["citizen"]
    assert claims["exp"] - claims["iat"] == hotline.settings.citizen_token_ttl_seconds

    mine = client.get(f"/citizens/{citizen_id}", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert mine.status_code == 200, mine.text
    assert mine.json()["id"] == citizen_id

    # The code works once.
    assert_refused(exchange(client, code), 401)
    # Only its hash is stored.
    assert not any(code in json.dumps(e.data, default=str) for e in hotline.store.iter_envelopes())


def test_the_token_reaches_the_citizens_own_request_and_no_other(client: TestClient, hotline: Hotline, smtp: SmtpServer) -> None:
    agent = bearer(hotline.settings, "agent-1", "agent")
    request = {
        "kind": "action",
        "subtype": "complaint",
        "channel": "phone",
        "description": "Deep pothole in front of number 12",
        "location": {"address": "Via Roma 12"},
        "urgency": "urgent",
        "problem_code": "pothole",
    }
    own = client.post(
        "/requests", json={**request, "contact": {"name": "Mario Rossi", "phone": "+39 06 1234 5678", "email": EMAIL}}, headers=agent
    )
    assert own.status_code == 201, own.text
    other = client.post("/requests", json={**request, "contact": {"name": "Anna Bianchi", "phone": "+39 347 765 4321"}}, headers=agent)
    assert other.status_code == 201, other.text

    ask_code(client)
    r = exchange(client, code_from_mail(smtp))
    assert r.status_code == 200, r.text
    assert r.json()["citizen_id"] == own.json()["citizen_id"], "the code signs in the citizen the hotline knows by this email"
    me = {"Authorization": f"Bearer {r.json()['access_token']}"}

    seen = client.get(f"/requests/{own.json()['reference']}", headers=me)
    assert seen.status_code == 200, seen.text
    assert seen.json()["citizen_id"] == own.json()["citizen_id"]
    refused = client.get(f"/requests/{other.json()['reference']}", headers=me)
    assert refused.status_code == 403, refused.text
    assert "Anna" not in refused.text
    assert client.get(f"/citizens/{other.json()['citizen_id']}", headers=me).status_code == 403
    listed = client.get("/requests", headers=me)
    assert listed.status_code == 200, listed.text
    assert [x["reference"] for x in listed.json()["items"]] == [own.json()["reference"]]


def test_five_wrong_codes_lock_the_address_out(client: TestClient, smtp: SmtpServer) -> None:
    ask_code(client)
    code = code_from_mail(smtp)
    for _ in range(5):
        assert_refused(exchange(client, wrong(code)), 401)
    error = assert_refused(exchange(client, code), 429, retry_after=True)  # even the right code
    assert error["code"] == "too_many_attempts"
    assert_refused(client.post("/auth/citizen/code", json={"email": EMAIL}), 429, retry_after=True)
    assert len(mails_to(smtp, EMAIL)) == 1, "no new code is sent while locked out"


def test_a_code_expires_after_ten_minutes_of_domain_time(client: TestClient, smtp: SmtpServer, clock: FixedClock) -> None:
    ask_code(client)
    code = code_from_mail(smtp)
    clock.advance(minutes=11)
    error = assert_refused(exchange(client, code), 401)
    assert "expired" in error["message"]


def test_a_new_code_within_a_minute_is_refused(client: TestClient, smtp: SmtpServer, clock: FixedClock) -> None:
    ask_code(client)
    first = code_from_mail(smtp)
    assert_refused(client.post("/auth/citizen/code", json={"email": EMAIL}), 429, retry_after=True)
    assert len(mails_to(smtp, EMAIL)) == 1

    clock.advance(seconds=61)
    ask_code(client)
    assert len(mails_to(smtp, EMAIL)) == 2
    second = code_from_mail(smtp)
    if second != first:  # a new code replaces the old
        assert_refused(exchange(client, first), 401)
    assert exchange(client, second).status_code == 200


def test_code_requests_are_limited_per_address(tmp_path: Path, smtp: SmtpServer, clock: FixedClock) -> None:
    h = start(tmp_path, smtp, clock, rate_limit_sign_in="3/minute")
    try:
        with TestClient(create_app(hotline=h)) as client:
            for n in range(3):
                ask_code(client, f"citizen{n}@example.it")
            assert_refused(client.post("/auth/citizen/code", json={"email": "citizen3@example.it"}), 429, retry_after=True)
            assert not mails_to(smtp, "citizen3@example.it")
            # Exchanging codes from that address: its wrong codes are limited the same way.
            code = code_from_mail(smtp, "citizen0@example.it")
            for n in (1, 2):
                assert_refused(exchange(client, code_from_mail(smtp, f"citizen{n}@example.it"), "citizen0@example.it"), 401)
            assert_refused(exchange(client, wrong(code), "citizen0@example.it"), 401)
            assert_refused(exchange(client, code, "citizen0@example.it"), 429, retry_after=True)
    finally:
        h.close()
