"""Open311 GeoReport v2 conformance: every endpoint in JSON and XML, each answer validated
against the reference schemas (tests/open311/schemas/), the XML converted to the JSON
shape and validated too, and compared with the JSON answer (the same data)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from domain.base import SYSTEM, FixedClock
from domain.catalogue import commands as catc
from domain.requests import commands as c
from infra.runtime import Hotline
from tests.conftest import CATALOGUE
from tests.open311.conformance import validate, xml_as_json
from tests.open311.conftest import BASE, pothole_form, staff


def _catalogue_names(code: str) -> dict[str, str]:
    """The problem code's names as the catalogue file gives them (the oracle)."""
    document = yaml.safe_load(CATALOGUE.read_text("utf-8"))
    for department in document["departments"]:
        for provider in department.get("providers", []):
            for category in provider["categories"]:
                for problem in category["problem_codes"]:
                    if problem["code"] == code:
                        names: dict[str, str] = problem["names"]
                        return names
    raise KeyError(code)


NAMES = _catalogue_names("pothole")


def both(client: TestClient, path: str, root: str, schema: str, **kw: Any) -> Any:
    """GET ``path`` as .json and .xml; both valid against ``schema`` and carrying the same data."""
    answers = {}
    for fmt in ("json", "xml"):
        response = client.get(f"{BASE}/{path}.{fmt}", **kw)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].endswith("charset=utf-8")
        if fmt == "json":
            assert response.headers["content-type"].startswith("application/json")
            answers[fmt] = response.json()
        else:
            assert response.headers["content-type"].startswith("text/xml")
            answers[fmt] = xml_as_json(response.content, root, schema)
        validate(schema, answers[fmt])
    assert answers["xml"] == answers["json"]
    return answers["json"]


def submit(client: TestClient, form: dict[str, str], fmt: str = "json") -> Any:
    response = client.post(f"{BASE}/requests.{fmt}", data=form)
    assert response.status_code == 200, response.text
    if fmt == "xml":
        created = xml_as_json(response.content, "service_requests", "requests.json")
    else:
        created = response.json()
    validate("requests.json", created)
    assert len(created) == 1 and created[0]["service_request_id"]
    return created[0]


def test_services_are_the_catalogues_problem_codes_in_the_language_asked_for(client: TestClient, hotline: Hotline) -> None:
    services = both(client, "services", "services", "services.json", params={"locale": "en"})
    by_code = {s["service_code"]: s for s in services}
    assert set(by_code) == {
        "appliance-removal",
        "missed-collection",
        "illegal-dumping",
        "pothole",
        "streetlight-out",
        "bus-complaint",
        "benefit-application",
    }
    assert by_code["pothole"]["service_name"] == "Pothole"
    # metadata: true exactly where the problem code collects fields.
    assert {code for code, s in by_code.items() if s["metadata"]} == {
        "appliance-removal",
        "missed-collection",
        "pothole",
        "streetlight-out",
        "bus-complaint",
        "benefit-application",
    }
    assert by_code["illegal-dumping"]["metadata"] is False
    for lang, name in NAMES.items():
        named = {
            s["service_code"]: s["service_name"] for s in both(client, "services", "services", "services.json", params={"locale": lang})
        }
        assert named["pothole"] == name
    # Accept-Language when no locale; region tags fold to the language; unknown falls back.
    zh = client.get(f"{BASE}/services.json", headers={"Accept-Language": "fr;q=1, zh-CN;q=0.8"}).json()
    assert {s["service_code"]: s["service_name"] for s in zh}["pothole"] == NAMES["zh"]
    it = client.get(f"{BASE}/services.json", params={"locale": "it_IT"}).json()
    assert {s["service_code"]: s["service_name"] for s in it}["pothole"] == NAMES["it"]
    # Retired codes are no longer offered.
    hotline.bus.execute(catc.RetireEntry(level="problem_code", entry_id="bus-complaint", reason="moved to the transit agency"), SYSTEM)
    assert "bus-complaint" not in {s["service_code"] for s in client.get(f"{BASE}/services.json").json()}


def test_service_definitions_carry_the_fields_to_collect(client: TestClient, hotline: Hotline) -> None:
    appliance = both(client, "services/appliance-removal", "service_definition", "service-definition.json", params={"locale": "en"})
    assert appliance["service_code"] == "appliance-removal"
    first, second = appliance["attributes"]
    assert first == {
        "variable": True,
        "code": "appliance_type",
        "datatype": "singlevaluelist",
        "required": True,
        "datatype_description": None,
        "order": 1,
        "description": "Appliance type",
        "values": [{"key": k, "name": k} for k in ("fridge", "washer", "oven", "other")],
    }
    assert (second["code"], second["datatype"], second["required"], second["order"]) == ("pickup_address", "string", True, 2)
    assert "values" not in second
    household = both(client, "services/benefit-application", "service_definition", "service-definition.json", params={"locale": "it"})
    assert household["attributes"][0]["datatype"] == "number" and household["attributes"][0]["description"] == "Componenti del nucleo"
    dumping = both(client, "services/illegal-dumping", "service_definition", "service-definition.json")
    assert dumping["attributes"] == []
    # Every field type of the catalogue has its Open311 datatype.
    labels = {"zh": "x", "ar": "x", "it": "x", "en": "x"}
    hotline.bus.execute(
        catc.AddProblemCode(
            code="fallen-tree",
            category_id="road-surface",
            names=catc.Names(zh="倒树", ar="شجرة ساقطة", it="Albero caduto", en="Fallen tree"),
            work_order_template={"title": labels, "tasks": [{"names": labels}]},
            fields_to_collect=[
                {"name": "fell_at", "type": "date", "required": True, "labels": labels},
                {"name": "blocking", "type": "boolean", "required": False, "labels": labels},
                {"name": "photo", "type": "photo", "required": False, "labels": labels},
            ],
        ),
        SYSTEM,
    )
    tree = both(client, "services/fallen-tree", "service_definition", "service-definition.json", params={"locale": "en"})
    kinds = {a["code"]: (a["datatype"], a.get("values")) for a in tree["attributes"]}
    assert kinds == {
        "fell_at": ("datetime", None),
        "blocking": ("singlevaluelist", [{"key": "true", "name": "Yes"}, {"key": "false", "name": "No"}]),
        "photo": ("string", None),
    }


def test_a_request_submitted_is_read_back_in_both_formats(client: TestClient, hotline: Hotline, api_key: str) -> None:
    created = submit(client, pothole_form(api_key, media_url="https://photos.example.org/pothole-12.jpg"))
    ref = created["service_request_id"]
    assert created["status"] == "open" and created["service_code"] == "pothole"
    assert created["media_url"] == "https://photos.example.org/pothole-12.jpg"
    # Registered through the hotline's own command: the request, classified with its attributes.
    detail = client.get(f"/requests/{ref}", headers=staff(hotline)).json()
    assert detail["status"] == "registered" and detail["problem_code"] == "pothole" and detail["channel"] == "web"
    assert detail["location"] == {"address": "Piazza del Colosseo, Roma", "lat": 41.8902, "lon": 12.4922}
    [classified] = [t for t in detail["timeline"] if t["type"].endswith(".classified.v1")]
    assert classified["details"]["collected"] == {"size": "large"}
    # XML submission too.
    xml_created = submit(client, pothole_form(api_key, **{"attribute[size]": "small"}), fmt="xml")
    assert xml_created["service_request_id"] != ref

    auth = {"params": {"api_key": api_key}}
    [one] = both(client, f"requests/{ref}", "service_requests", "requests.json", **auth)
    assert one["service_request_id"] == ref
    assert one["lat"] == pytest.approx(41.8902) and one["long"] == pytest.approx(12.4922)
    assert one["address"] == "Piazza del Colosseo, Roma"
    assert one["description"] == "Deep pothole by the bus stop, a cyclist fell yesterday"
    assert one["requested_datetime"] == "2026-11-16T09:00:00Z"  # the clock's time, in UTC
    assert datetime.fromisoformat(one["expected_datetime"]) > datetime.fromisoformat(one["requested_datetime"])
    assert one["agency_responsible"] is None  # not dispatched yet
    tokens = both(client, f"tokens/{created['token']}", "service_requests", "tokens.json", **auth)
    assert tokens == [{"service_request_id": ref, "token": created["token"]}]
    listed = both(client, "requests", "service_requests", "requests.json", **auth)
    assert {r["service_request_id"] for r in listed} == {ref, xml_created["service_request_id"]}  # registered at the same moment


def test_listing_filters_windows_and_pages(client: TestClient, hotline: Hotline, api_key: str, clock: FixedClock) -> None:
    """Filters against a brute-force selection of what was registered."""
    made: list[dict[str, Any]] = []
    codes = ["pothole", "streetlight-out", "illegal-dumping"]
    for n in range(12):
        code = codes[n % 3]
        form = pothole_form(api_key, service_code=code, description=f"report {n}")
        del form["attribute[size]"]
        if code == "pothole":
            form["attribute[size]"] = "small"
        made.append({**submit(client, form), "at": clock.now()})
        clock.advance(days=10)
    # Close two of them through the hotline's own commands.
    for ref in (made[1]["service_request_id"], made[4]["service_request_id"]):
        agent, department = staff(hotline, "agent"), staff(hotline, "department", departments=["transport", "environment"])
        for step, body, who in (
            ("dispatch", {}, agent),
            ("accept", {}, department),
            ("reply", {"message": "Done"}, department),
            ("close", {}, agent),
        ):
            response = client.post(f"/requests/{ref}/{step}", json=body, headers=who)
            assert response.status_code == 200, response.text
    auth = {"api_key": api_key}
    now = clock.now()

    def ids(**params: str) -> list[str]:
        answer = both(client, "requests", "service_requests", "requests.json", params={**auth, **params})
        return [r["service_request_id"] for r in answer]

    def expected(select: Any, start: datetime | None = None, end: datetime | None = None) -> list[str]:
        start = start or now - timedelta(days=90)
        end = end or now
        chosen = [m for m in made if start <= m["at"] <= end and select(m)]
        return [m["service_request_id"] for m in sorted(chosen, key=lambda m: m["at"], reverse=True)]

    closed = {made[1]["service_request_id"], made[4]["service_request_id"]}
    # The default window: the 90 days before now, newest first.
    assert ids() == expected(lambda m: True)
    assert ids(status="closed") == expected(lambda m: m["service_request_id"] in closed)
    assert ids(status="open") == expected(lambda m: m["service_request_id"] not in closed)
    assert ids(status="open,closed") == expected(lambda m: True)
    assert ids(service_code="pothole") == expected(lambda m: m["service_code"] == "pothole")
    assert ids(service_code="pothole,illegal-dumping") == expected(lambda m: m["service_code"] != "streetlight-out")
    start, end = made[2]["at"], made[6]["at"]
    window = {"start_date": start.isoformat(), "end_date": end.isoformat()}
    assert ids(**window) == expected(lambda m: True, start, end)
    # Without an offset: the hotline's local time (Rome, +01:00 in winter).
    local = {"start_date": (start + timedelta(hours=1)).replace(tzinfo=None).isoformat()}
    assert ids(**local) == expected(lambda m: True, start, start + timedelta(days=90))
    # service_request_id: those, whatever else is asked.
    chosen = [made[0]["service_request_id"], made[11]["service_request_id"]]
    assert set(ids(service_request_id=",".join(chosen), status="closed")) == set(chosen)
    # Pages.
    # A start alone: the 90 days from it.
    first = made[0]["at"] - timedelta(days=1)
    assert ids(start_date=first.isoformat()) == expected(lambda m: True, first, first + timedelta(days=90))
    # Pages.
    span = {"start_date": first.isoformat(), "end_date": now.isoformat()}
    everything = ids(**span)
    assert everything == expected(lambda m: True, first, now) and len(everything) == 12
    pages = [ids(**span, page=str(p), page_size="5") for p in (1, 2, 3, 4)]
    assert [len(p) for p in pages] == [5, 5, 2, 0]
    assert [ref for page in pages for ref in page] == everything


def test_updates_follow_status_changes_and_replies(client: TestClient, hotline: Hotline, api_key: str, clock: FixedClock) -> None:
    start = clock.now()
    ref = submit(client, pothole_form(api_key))["service_request_id"]
    agent = staff(hotline, "agent")
    department = staff(hotline, "department", departments=["transport"])
    steps: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("dispatch", {}, agent),
        ("accept", {}, department),
        ("notes", {"text": "crew booked for Thursday", "internal": True}, department),
        ("notes", {"text": "Crew booked for Thursday", "internal": False}, department),
        (
            "interim-reply",
            {"message": "Asphalt plant closed, we come next week", "delay_reason": "supplies", "expected_at": "2026-11-25T10:00:00+01:00"},
            department,
        ),
        ("reply", {"message": "Filled with asphalt today"}, department),
        ("close", {}, agent),
    ]
    for step, body, who in steps:
        clock.advance(hours=1)
        response = client.post(f"/requests/{ref}/{step}", json=body, headers=who)
        assert response.status_code == 200, response.text
    updates = both(
        client,
        "servicerequestupdates",
        "service_request_updates",
        "updates.json",
        params={"api_key": api_key, "start_date": start.isoformat(), "end_date": clock.now().isoformat()},
    )
    assert [(u["status"], u["description"]) for u in updates] == [
        ("open", None),
        ("open", None),
        ("open", "Crew booked for Thursday"),  # the internal note is not there
        ("open", "Asphalt plant closed, we come next week"),
        ("open", "Filled with asphalt today"),
        ("closed", None),
    ]
    assert {u["service_request_id"] for u in updates} == {ref}
    assert [int(u["update_id"]) for u in updates] == sorted(int(u["update_id"]) for u in updates)
    assert len({u["update_id"] for u in updates}) == len(updates)
    [closed] = both(client, f"requests/{ref}", "service_requests", "requests.json", params={"api_key": api_key, "locale": "en"})
    assert closed["status"] == "closed"
    assert closed["status_notes"] == "Filled with asphalt today"
    assert closed["agency_responsible"] == "Transport"  # the department it was dispatched to
    assert closed["updated_datetime"] == updates[-1]["updated_datetime"]
    # A window names what happened in it.
    later = both(
        client,
        "servicerequestupdates",
        "service_request_updates",
        "updates.json",
        params={"api_key": api_key, "start_date": (clock.now() - timedelta(minutes=90)).isoformat(), "end_date": clock.now().isoformat()},
    )
    assert [u["description"] for u in later] == ["Filled with asphalt today", None]
    # Reopened: open again, the reason as its notes.
    hotline.bus.execute(c.Reopen(ref=ref, reason="The hole is back"), SYSTEM)
    [again] = client.get(f"{BASE}/requests/{ref}.json", params={"api_key": api_key}).json()
    assert (again["status"], again["status_notes"]) == ("open", "The hole is back")


def test_a_jurisdiction_id_is_accepted_and_required_only_with_several(client: TestClient, hotline: Hotline, api_key: str) -> None:
    assert client.get(f"{BASE}/services.json", params={"jurisdiction_id": "default"}).status_code == 200
    assert client.get(f"{BASE}/services.json").status_code == 200
    hotline.settings.open311_jurisdictions = ["default", "roma.it"]
    try:
        assert client.get(f"{BASE}/services.json", params={"jurisdiction_id": "roma.it"}).status_code == 200
        missing = client.get(f"{BASE}/services.xml")
        assert missing.status_code == 400
        assert "jurisdiction_id" in xml_as_json(missing.content, "errors", "errors.json")[0]["description"]
        form = pothole_form(api_key, jurisdiction_id="roma.it")
        assert client.post(f"{BASE}/requests.json", data=form).status_code == 200
    finally:
        hotline.settings.open311_jurisdictions = []
