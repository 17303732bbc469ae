"""A client session modelled on FixMyStreet's Open311 client (perllib/Open311.pm): it
speaks XML, sends ``jurisdiction_id`` and ``api_key`` on every call, reads the services
and the definitions of those with metadata, posts a report with its attributes and a
photo URL, and then polls ``servicerequestupdates`` over successive time windows
(deduplicating by ``update_id``) while the hotline works the case with its own commands,
until the report is closed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from domain.base import FixedClock
from infra.runtime import Hotline
from tests.open311.conformance import validate, xml_as_json
from tests.open311.conftest import BASE, staff

JURISDICTION = "default"


class FixMyStreet:
    """The calls FixMyStreet's Open311 client makes, as it makes them."""

    def __init__(self, client: TestClient, api_key: str) -> None:
        self.client, self.api_key = client, api_key
        self.seen: set[str] = set()

    def get(self, path: str, root: str, schema: str, **params: str) -> Any:
        response = self.client.get(f"{BASE}/{path}.xml", params={"jurisdiction_id": JURISDICTION, "api_key": self.api_key, **params})
        assert response.status_code == 200, response.text
        ET.fromstring(response.content)  # well-formed, as XML::Simple needs
        data = xml_as_json(response.content, root, schema)
        validate(schema, data)
        return data

    def services(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.get("services", "services", "services.json")
        return found

    def definition(self, code: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get(f"services/{code}", "service_definition", "service-definition.json")
        return found

    def send_report(self, form: dict[str, str]) -> str:
        response = self.client.post(f"{BASE}/requests.xml", data={"jurisdiction_id": JURISDICTION, "api_key": self.api_key, **form})
        assert response.status_code == 200, response.text
        created = xml_as_json(response.content, "service_requests", "requests.json")
        validate("requests.json", created)
        request_id: str = created[0]["service_request_id"]
        return request_id

    def updates(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """One poll: the updates of the window not seen before."""
        found = self.get(
            "servicerequestupdates", "service_request_updates", "updates.json", start_date=start.isoformat(), end_date=end.isoformat()
        )
        new = [u for u in found if u["update_id"] not in self.seen]
        self.seen.update(u["update_id"] for u in new)
        return new


def test_a_fixmystreet_session_from_report_to_closed(client: TestClient, hotline: Hotline, api_key: str, clock: FixedClock) -> None:
    fms = FixMyStreet(client, api_key)
    services = fms.services()
    with_metadata = [s["service_code"] for s in services if s["metadata"]]
    definitions = {code: fms.definition(code) for code in with_metadata}
    # The report's form from the definition: each required attribute given, and the size of the pothole.
    pothole = definitions["pothole"]
    [size] = pothole["attributes"]
    assert size["datatype"] == "singlevaluelist" and [v["key"] for v in size["values"]] == ["small", "medium", "large"]
    photo = "https://www.fixmystreet.example/photo/4242.0.jpeg"
    ref = fms.send_report(
        {
            "service_code": "pothole",
            "lat": "41.9028",
            "long": "12.4964",
            "description": "Pothole at the junction: deep, full of water",
            "first_name": "Giulia",
            "last_name": "Bianchi",
            "email": "giulia@example.org",
            "phone": "+39 347 123 4567",
            "media_url": photo,
            f"attribute[{size['code']}]": size["values"][1]["key"],
        }
    )
    [report] = fms.get(f"requests/{ref}", "service_requests", "requests.json")
    assert (report["status"], report["media_url"], report["service_code"]) == ("open", photo, "pothole")

    agent = staff(hotline, "agent")
    transport = staff(hotline, "department", departments=["transport"])
    # What the hotline does between two polls: its own commands, through its own API.
    work: list[list[tuple[str, dict[str, Any], dict[str, str]]]] = [
        [("dispatch", {}, agent)],
        [("accept", {}, transport)],
        [
            (
                "interim-reply",
                {"message": "Scheduled for Friday", "delay_reason": "crew", "expected_at": "2026-11-20T09:00:00+01:00"},
                transport,
            )
        ],
        [],  # a quiet window
        [("reply", {"message": "Repaired this morning, thank you"}, transport), ("close", {}, agent)],
    ]
    seen: list[tuple[str, str | None]] = []
    last_poll = clock.now() - timedelta(minutes=5)
    for batch in work:
        for step, body, who in batch:
            clock.advance(minutes=20)
            response = client.post(f"/requests/{ref}/{step}", json=body, headers=who)
            assert response.status_code == 200, response.text
        clock.advance(minutes=15)
        now = clock.now()
        # FixMyStreet asks for overlapping windows; update_id keeps it from counting one twice.
        for update in fms.updates(last_poll - timedelta(minutes=30), now):
            assert update["service_request_id"] == ref and update["media_url"] == photo
            seen.append((update["status"], update["description"]))
        last_poll = now
        if seen and seen[-1][0] == "closed":
            break
    assert seen == [
        ("open", None),
        ("open", None),
        ("open", "Scheduled for Friday"),
        ("open", "Repaired this morning, thank you"),
        ("closed", None),
    ]
    [closed] = fms.get(f"requests/{ref}", "service_requests", "requests.json")
    assert closed["status"] == "closed" and closed["status_notes"] == "Repaired this morning, thank you"
    # The hotline's own view: the same case, closed, with the photo as its attachment.
    detail = client.get(f"/requests/{ref}", headers=staff(hotline)).json()
    assert detail["status"] == "closed"
    attachments = client.get(f"/requests/{ref}/attachments", headers=staff(hotline))
    assert attachments.status_code == 200, attachments.text
    assert [(a["url"], a["source"], a["sha256"]) for a in attachments.json()] == [(photo, "open311", None)]
