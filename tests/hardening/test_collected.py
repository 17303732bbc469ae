"""``collected`` is checked against the problem code's field definitions (issue 18): type,
required, allowed values and size, in the domain (the bus) and so on the API, with a 422
naming the field. What the demo and the catalogue's own forms send still registers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.demo import CASES
from domain.base import Actor, InvalidCommand
from domain.requests import commands as c
from domain.requests.intake import check_collected
from infra.runtime import Hotline
from tests.auth import SignedInClient

AGENT = Actor("op", "agent")
CONTACT = c.Contact(name="Mario Rossi", phone="+39 06 1234 5678")


def register(hotline: Hotline, code: str | None, collected: dict[str, Any] | None) -> dict[str, Any]:
    cmd = c.RegisterRequest(kind="action", channel="web", description="A case", contact=CONTACT, problem_code=code, collected=collected)
    return hotline.bus.execute(cmd, AGENT).result


def refusal(hotline: Hotline, code: str | None, collected: dict[str, Any] | None) -> InvalidCommand:
    with pytest.raises(InvalidCommand) as caught:
        register(hotline, code, collected)
    assert caught.value.code == "invalid_collected", caught.value
    return caught.value


@pytest.mark.parametrize(
    ("code", "collected", "field"),
    [
        ("pothole", {"size": "huge"}, "collected.size"),  # not one of its choices
        ("pothole", {"a": 1}, "collected.a"),  # not a field of the code
        ("pothole", {"size": 3}, "collected.size"),  # a choice is one of its (text) choices
        ("pothole", {"size": {"n": {"n": {}}}}, "collected.size"),
        ("benefit-application", {"household_size": "four"}, "collected.household_size"),
        ("benefit-application", {"household_size": True}, "collected.household_size"),
        ("benefit-application", {"household_size": 10**31}, "collected.household_size"),
        ("benefit-application", {}, "collected.household_size"),  # required
        ("benefit-application", {"household_size": ""}, "collected.household_size"),  # empty is not given
        ("streetlight-out", {"pole_number": "A" * 2001}, "collected.pole_number"),
        ("streetlight-out", {"pole_number": 117}, "collected.pole_number"),
        (
            "appliance-removal",
            {"appliance_type": "fridge", "pickup_address": {"address": "Via Roma 1", "lat": 200}},
            "collected.pickup_address",
        ),
        (None, {"size": "large"}, "collected"),  # details without the code that defines them
    ],
)
def test_collected_refused_naming_the_field(hotline: Hotline, code: str | None, collected: dict[str, Any], field: str) -> None:
    assert refusal(hotline, code, collected).details["field"] == field


def test_classify_checks_collected_too(hotline: Hotline) -> None:
    ref = register(hotline, None, None)["reference"]
    with pytest.raises(InvalidCommand) as caught:
        hotline.bus.execute(c.Classify(ref=ref, problem_code="pothole", collected={"size": "huge"}), AGENT)
    assert caught.value.details["field"] == "collected.size"
    answer = hotline.bus.execute(c.Classify(ref=ref, problem_code="pothole", collected={"size": "small"}), AGENT).result
    assert answer["version"] > 1


def test_every_demo_case_still_registers(hotline: Hotline) -> None:
    # The demo's own details (api/demo.py CASES) are the oracle of what operators send.
    for code, kind, subtype, text, collected in CASES:
        body = {"kind": kind, "subtype": subtype, "channel": "phone", "description": text, "problem_code": code, "collected": collected}
        cmd = c.RegisterRequest.model_validate({**body, "contact": CONTACT.model_dump()})
        assert hotline.bus.execute(cmd, AGENT).result["reference"]


FIELDS: list[dict[str, Any]] = [
    {"name": "when", "type": "date", "required": False, "choices": []},
    {"name": "count", "type": "number", "required": False, "choices": []},
    {"name": "ok", "type": "boolean", "required": False, "choices": []},
    {"name": "where", "type": "location", "required": False, "choices": []},
    {"name": "photo", "type": "photo", "required": False, "choices": []},
    {"name": "kind", "type": "choice", "required": True, "choices": ["a", "b"]},
]


@pytest.mark.parametrize(
    "collected",
    [
        # What the console's form sends (a date input, a float) and what Open311 converts to.
        {"kind": "a", "when": "2026-11-30", "count": 4.0, "ok": False, "where": "Via Po 1", "photo": "https://x.example/p.jpg"},
        {"kind": "b", "when": "2026-11-30T09:00:00+01:00", "count": 2, "where": {"address": "Via Po 1", "lat": 41.9, "lon": 12.5}},
        {"kind": "a", "count": None, "ok": ""},  # optional ones left empty
    ],
)
def test_what_the_forms_send_is_accepted(collected: dict[str, Any]) -> None:
    assert check_collected("x", FIELDS, collected) == collected


@pytest.mark.parametrize(
    ("collected", "field"),
    [
        ({"kind": "a", "when": "30/11/2026"}, "when"),
        ({"kind": "a", "count": float("inf")}, "count"),
        ({"kind": "a", "count": float("nan")}, "count"),
        ({"kind": "a", "ok": "yes"}, "ok"),
        ({"kind": "a", "where": {"street": "Via Po"}}, "where"),
        ({"kind": "a", "where": ["Via Po"]}, "where"),
        ({"kind": "c"}, "kind"),
    ],
)
def test_each_type_is_checked(collected: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidCommand) as caught:
        check_collected("x", FIELDS, collected)
    assert caught.value.details["field"] == f"collected.{field}"


# ------------------------------------------------------------------ on the API
@pytest.fixture
def client(hotline: Hotline) -> Iterator[TestClient]:
    with SignedInClient(create_app(hotline=hotline)) as client:
        yield client


@pytest.mark.parametrize(("collected", "field"), [({"size": "huge"}, "collected.size"), ({"a": 1}, "collected.a")])
def test_the_api_answers_422_naming_the_field(client: TestClient, collected: dict[str, Any], field: str) -> None:
    body = {"kind": "action", "channel": "web", "description": "A pothole", "problem_code": "pothole", "collected": collected}
    body["contact"] = {"name": "Mario Rossi", "phone": "+39 06 1234 5678"}
    r = client.post("/requests", json=body, headers={"X-Actor-Id": "op", "X-Actor-Role": "agent"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_collected" and error["details"]["field"] == field and field.split(".")[-1] in error["message"]
    body["collected"] = {"size": "large"}
    assert client.post("/requests", json=body, headers={"X-Actor-Id": "op", "X-Actor-Role": "agent"}).status_code == 201
