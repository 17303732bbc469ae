"""Every Open311 error case, in both formats: the spec's error list (``[{"code", "description"}]``
/ ``<errors><error>``), its code the HTTP status, 400 for bad parameters, 403 for the
api_key, 404 for what is not there; 401 where a read comes with no credential at all."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.base import FixedClock
from domain.requests.intake import IntakePolicy
from infra.runtime import Hotline
from infra.settings import Settings
from tests.conftest import START, load_catalogue
from tests.open311.conformance import validate, xml_as_json
from tests.open311.conftest import BASE, issue_key, pothole_form, staff


def refused(client: TestClient, method: str, path: str, status: int, words: str, **kw: Any) -> None:
    """``path`` (``requests.{fmt}``) in JSON and XML answers ``status`` with an error list
    whose one description contains ``words``."""
    for fmt in ("json", "xml"):
        response = client.request(method, f"{BASE}/{path.format(fmt=fmt)}", **kw)
        assert response.status_code == status, f"{fmt}: {response.status_code} {response.text}"
        errors = response.json() if fmt == "json" else xml_as_json(response.content, "errors", "errors.json")
        validate("errors.json", errors)
        assert errors[0]["code"] == status
        assert words.lower() in errors[0]["description"].lower(), errors


def post(client: TestClient, status: int, words: str, form: dict[str, str]) -> None:
    refused(client, "POST", "requests.{fmt}", status, words, data=form)


def test_unknown_format_service_and_jurisdiction_are_404(client: TestClient, api_key: str) -> None:
    response = client.get(f"{BASE}/services.html")
    assert response.status_code == 404 and response.json()[0]["code"] == 404
    refused(client, "GET", "services/no-such-service.{fmt}", 404, "service_code")
    refused(client, "GET", "services.{fmt}", 404, "jurisdiction_id", params={"jurisdiction_id": "atlantis"})
    refused(client, "GET", "requests/999999999999.{fmt}", 404, "not found", params={"api_key": api_key})
    refused(client, "GET", "tokens/not-a-token.{fmt}", 404, "token", params={"api_key": api_key})
    refused(client, "GET", "tokens/00000000-0000-4000-8000-000000000000.{fmt}", 404, "token", params={"api_key": api_key})
    refused(client, "GET", "requests.{fmt}", 404, "jurisdiction_id", params={"api_key": api_key, "jurisdiction_id": "atlantis"})


def test_a_submission_with_bad_parameters_is_400(client: TestClient, hotline: Hotline, api_key: str) -> None:
    form = pothole_form(api_key)
    without = {k: v for k, v in form.items() if k != "service_code"}
    post(client, 400, "service_code was not provided", without)
    post(client, 400, "service_code 'no-such' not found", {**form, "service_code": "no-such"})
    no_place = {k: v for k, v in form.items() if k not in ("lat", "long", "address_string")}
    post(client, 400, "location", no_place)
    post(client, 400, "lat and long", {k: v for k, v in form.items() if k != "long"})
    post(client, 400, "lat must be between", {**form, "lat": "91"})
    post(client, 400, "long must be a number", {**form, "long": "east"})
    post(client, 400, "no attribute 'depth'", {**form, "attribute[depth]": "30"})
    post(client, 400, "must be one of", {**form, "attribute[size]": "huge"})
    post(client, 400, "one value", {**form, "attribute[size]": ["small", "large"]})  # type: ignore[dict-item]
    appliance = {**form, "service_code": "appliance-removal", "attribute[pickup_address]": "Via Roma 1"}
    del appliance["attribute[size]"]
    post(client, 400, "requires attribute[appliance_type]", appliance)
    benefit = {**form, "service_code": "benefit-application", "attribute[household_size]": "four"}
    del benefit["attribute[size]"]
    post(client, 400, "must be a number", benefit)
    post(client, 400, "media_url", {**form, "media_url": "file:///etc/passwd"})
    post(client, 400, "description", {**form, "description": "x" * 10_001})
    # The hotline's own rules on the contact, through RegisterRequest.
    post(client, 400, "email", {**form, "email": "not an address"})
    # Not a form.
    refused(client, "POST", "requests.{fmt}", 400, "form-encoded", json={"api_key": api_key, "service_code": "pothole"})
    # The contact's own limits, in Open311's names (a name over 200 characters answered 500).
    post(client, 400, "first_name and last_name", {**form, "first_name": "A" * 150, "last_name": "B" * 150})
    post(client, 400, "phone", {**form, "phone": "+39" + "1" * 300})
    post(client, 400, "email", {**form, "email": "m" * 250 + "@example.org"})
    # A plain decimal only: float() read "4_1.9" as 41.9.
    for bad in ("4_1.9", "1e1", "nan", "0x10"):
        post(client, 400, "lat must be a number", {**form, "lat": bad})
    # What was sent is quoted, not echoed whole.
    response = client.post(f"{BASE}/requests.json", data={**form, "service_code": "x" * 100_000})
    assert response.status_code == 400 and len(response.content) < 1_000, response.text[:200]


def test_raw_utf8_in_a_form_is_read_as_utf8(client: TestClient, hotline: Hotline, api_key: str) -> None:
    """GeoReport v2: "All text received by the service from the client will be assumed to
    be UTF-8". Sent unescaped (as curl -d sends it), 路面有坑 was stored as è·¯é¢æå."""
    form = {**pothole_form(api_key), "first_name": "王", "last_name": "芳芳", "description": "路面有坑 città"}
    raw = "&".join(f"{k}={v.replace(' ', '+').replace('&', '%26')}" for k, v in form.items()).encode("utf-8")
    for content_type in ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=UTF-8"):
        response = client.post(f"{BASE}/requests.json", content=raw, headers={"Content-Type": content_type})
        assert response.status_code == 200, response.text
        ref = response.json()[0]["service_request_id"]
        detail = client.get(f"/requests/{ref}", headers=staff(hotline)).json()
        assert detail["description"] == "路面有坑 città", detail
        citizen = client.get(f"/citizens/{detail['citizen_id']}", headers=staff(hotline, "supervisor")).json()
        assert citizen["name"] == "王 芳芳", citizen
    latin = client.post(
        f"{BASE}/requests.json",
        content=raw.replace("città".encode(), "città".encode("latin-1")),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert latin.status_code == 400 and "UTF-8" in latin.json()[0]["description"], latin.text


def test_the_jurisdictions_anonymity_policy_applies(client: TestClient, hotline: Hotline, api_key: str) -> None:
    anonymous = {k: v for k, v in pothole_form(api_key).items() if k not in ("first_name", "last_name", "email", "phone")}
    post(client, 400, "anonymous requests are not registered here", anonymous)
    post(client, 400, "contact details missing", {**pothole_form(api_key), "phone": ""})
    hotline.bus.deps.policy = IntakePolicy(allow_anonymous=True)  # a jurisdiction that allows it
    response = client.post(f"{BASE}/requests.json", data=anonymous)
    assert response.status_code == 200, response.text
    ref = response.json()[0]["service_request_id"]
    detail = client.get(f"/requests/{ref}", headers=staff(hotline)).json()
    assert detail["contact_hidden"] is True


def test_a_submission_needs_an_api_key_of_this_hotline(client: TestClient, hotline: Hotline, api_key: str) -> None:
    form = pothole_form(api_key)
    post(client, 403, "api_key was not provided", {k: v for k, v in form.items() if k != "api_key"})
    post(client, 403, "api_key is invalid", {**form, "api_key": "hk_00000000000000000000000000000000_guess"})
    post(client, 403, "api_key is invalid", {**form, "api_key": "letmein"})
    # A signed-in staff member is not an Open311 client either.
    refused(
        client,
        "POST",
        "requests.{fmt}",
        403,
        "api_key was not provided",
        data={k: v for k, v in form.items() if k != "api_key"},
        headers=staff(hotline, "agent"),
    )
    reader = issue_key(client, hotline, ["requests.read"])
    post(client, 403, "requests.register", {**form, "api_key": reader})
    no_photos = issue_key(client, hotline, ["requests.register"])
    post(client, 403, "attachments.add", {**form, "api_key": no_photos, "media_url": "https://example.org/a.jpg"})
    assert client.post(f"{BASE}/requests.json", data={**form, "api_key": no_photos}).status_code == 200
    # A revoked key stops at once.
    key_id = uuid.UUID(no_photos.split("_")[1])
    assert (
        client.post(f"/api-keys/{key_id}/revoke", json={"reason": "app retired"}, headers=staff(hotline, "administrator")).status_code
        == 200
    )
    post(client, 403, "api_key is invalid", {**form, "api_key": no_photos})


@pytest.mark.parametrize(
    "path",
    ["requests.{fmt}", "requests/261116000001.{fmt}", "tokens/00000000-0000-4000-8000-000000000000.{fmt}", "servicerequestupdates.{fmt}"],
)
def test_reading_requests_needs_a_credential(client: TestClient, hotline: Hotline, path: str) -> None:
    refused(client, "GET", path, 401, "sign in")
    refused(client, "GET", path, 403, "api_key is invalid", params={"api_key": "hk_00000000000000000000000000000000_guess"})
    writer = issue_key(client, hotline, ["requests.register"])
    refused(client, "GET", path, 403, "requests.read", params={"api_key": writer})
    refused(client, "GET", path, 403, "may not take requests.read", headers=staff(hotline, "analyst"))


def test_bad_query_parameters_are_400(client: TestClient, api_key: str) -> None:
    key = {"api_key": api_key}
    for path in ("requests.{fmt}", "servicerequestupdates.{fmt}"):
        refused(client, "GET", path, 400, "start_date must be", params={**key, "start_date": "yesterday"})
        refused(client, "GET", path, 400, "end_date must be", params={**key, "end_date": "2026-13-01"})
        refused(
            client, "GET", path, 400, "start_date is after end_date", params={**key, "start_date": "2026-11-20", "end_date": "2026-11-10"}
        )
        refused(client, "GET", path, 400, "page must be", params={**key, "page": "0"})
        refused(client, "GET", path, 400, "page must be a whole number", params={**key, "page": "two"})
        refused(client, "GET", path, 400, "page_size must be between 1 and 1000", params={**key, "page_size": "1001"})
    refused(client, "GET", "requests.{fmt}", 400, "status must be open or closed", params={**key, "status": "pending"})


def test_a_department_reads_only_its_own_requests(client: TestClient, hotline: Hotline, api_key: str) -> None:
    ref = client.post(f"{BASE}/requests.json", data=pothole_form(api_key)).json()[0]["service_request_id"]
    assert client.post(f"/requests/{ref}/dispatch", json={}, headers=staff(hotline, "agent")).status_code == 200
    transport = staff(hotline, "department", departments=["transport"])
    environment = staff(hotline, "department", departments=["environment"])
    assert [r["service_request_id"] for r in client.get(f"{BASE}/requests.json", headers=transport).json()] == [ref]
    assert client.get(f"{BASE}/requests.json", headers=environment).json() == []
    assert client.get(f"{BASE}/servicerequestupdates.json", headers=environment).json() == []
    refused(client, "GET", f"requests/{ref}" + ".{fmt}", 403, "outside", headers=environment)
    assert client.get(f"{BASE}/requests/{ref}.json", headers=transport).status_code == 200


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_too_many_calls_from_one_address_are_429_with_retry_after(tmp_path: Path, fmt: str) -> None:
    """Open311's error list, with the Retry-After the API's own 429 carries."""
    hotline = Hotline.start(Settings(data_dir=tmp_path, rate_limit_public="2/minute"), FixedClock(START))
    load_catalogue(hotline)
    try:
        with TestClient(create_app(hotline=hotline)) as client:
            answers = [client.get(f"{BASE}/services.{fmt}") for _ in range(3)]
    finally:
        hotline.close()
    assert [a.status_code for a in answers] == [200, 200, 429], answers[-1].text
    limited = answers[-1]
    errors = limited.json() if fmt == "json" else xml_as_json(limited.content, "errors", "errors.json")
    validate("errors.json", errors)
    assert errors[0]["code"] == 429 and "try again" in errors[0]["description"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 61


def test_a_bug_is_a_500_in_the_format_asked_for(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An XML client reads XML even from a bug; the traceback goes to the log."""
    from api.open311 import mapping

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug in the service list")

    monkeypatch.setattr(mapping, "services", broken)
    refused(client, "GET", "services.{fmt}", 500, "unexpected error")
    assert any(r.exc_info and "a bug in the service list" in str(r.exc_info[1]) for r in caplog.records)


def test_errors_the_framework_answers_under_open311_are_the_specs_lists(client: TestClient, api_key: str) -> None:
    """An unknown path, a wrong method and a body too large were answered in the API's own
    JSON shape, even to a client that asked for .xml."""
    for fmt in ("json", "xml"):
        for method, path, status, kw in (
            ("GET", f"nothing-here.{fmt}", 404, {}),
            ("PUT", f"requests.{fmt}", 405, {}),
            ("POST", f"requests.{fmt}", 413, {"data": {"api_key": api_key, "description": "x" * 2_000_000}}),
        ):
            response = client.request(method, f"{BASE}/{path}", **kw)
            assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text[:200]}"
            errors = response.json() if fmt == "json" else xml_as_json(response.content, "errors", "errors.json")
            validate("errors.json", errors)
            assert errors[0]["code"] == status, errors
