"""An erased citizen is erased once: a second erasure with nothing new to erase is refused
(409 ``already_erased``, saying when) and records nothing; personal data written since
the erasure is erased again."""

from __future__ import annotations

from typing import Any

from api.app import create_app
from domain.base import Actor, FixedClock
from domain.citizens.commands import UpdateCitizen
from domain.privacy.aggregate import ERASED
from domain.requests import commands as c
from domain.requests.commands import Contact
from infra.runtime import Hotline
from tests.auth import SignedInClient, actor

AGENT = Actor("op1", "agent")
ADMIN = actor("admin", "administrator")


def _erasures(h: Hotline) -> list[Any]:
    return [e for e in h.store.envelopes(0, 100_000) if e.type == "hotline.erasure.erased.v1"]


def test_a_second_erasure_is_refused_and_records_nothing(sqlite_hotline: Hotline, clock: FixedClock) -> None:
    h = sqlite_hotline
    cmd = c.RegisterRequest(
        kind="information",
        channel="web",
        description="When does the library open?",
        contact=Contact(name="Ida Ferri", phone="+39 06 5555 0101"),
    )
    citizen_id = h.bus.execute(cmd, AGENT).result["citizen_id"]
    url = f"/citizens/{citizen_id}/erasure"
    with SignedInClient(create_app(hotline=h)) as client:
        first = client.post(url, json={"reason": "the citizen asked"}, headers=ADMIN)
        assert first.status_code == 200, first.text
        clock.advance(minutes=5)
        events = h.store.max_position()
        again = client.post(url, json={"reason": "again, to be sure"}, headers=ADMIN)
        assert again.status_code == 409, again.text
        error = again.json()["error"]
        assert error["code"] == "already_erased" and error["details"]["erased_at"] == _erasures(h)[0].time.isoformat()
        assert error["details"]["erasures"] == 1
        assert h.store.max_position() == events  # nothing recorded
        assert len(_erasures(h)) == 1

        # Personal data written on the record since then is new: erased again.
        h.bus.execute(UpdateCitizen(citizen_id=citizen_id, contact=Contact(name="Ida Ferri")), AGENT)
        h.store.forget_personal_data()
        third = client.post(url, json={"reason": "new details were recorded"}, headers=ADMIN)
        assert third.status_code == 200, third.text
        assert third.json()["erasures"] == 2
        shown = client.get(f"/citizens/{citizen_id}", headers=actor("sup1", "supervisor")).json()
        assert shown["name"] == ERASED
