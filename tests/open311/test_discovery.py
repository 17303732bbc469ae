"""Open311 service discovery (wiki.open311.org/Service_Discovery), required of every
GeoReport v2 server: in XML and JSON, at an address ending in /discovery, naming the
endpoint, its formats, a contact, how to get a key, and a changeset that moves when the
service definitions (the catalogue) change."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime

from fastapi.testclient import TestClient

from domain.base import SYSTEM
from domain.catalogue import commands as catc
from infra.runtime import Hotline


def test_discovery_names_the_georeport_endpoint_in_both_formats(client: TestClient, hotline: Hotline) -> None:
    found = client.get("/open311/discovery.json")
    assert found.status_code == 200 and found.headers["content-type"].startswith("application/json"), found.text
    doc = found.json()
    assert set(doc) == {"changeset", "contact", "key_service", "endpoints"}
    [endpoint] = doc["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2" and endpoint["type"] == "production"
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}
    assert endpoint["url"].endswith("/open311/v2") and endpoint["changeset"] == doc["changeset"]
    datetime.fromisoformat(doc["changeset"])  # a W3C date-time
    services = client.get(endpoint["url"].removeprefix(str(client.base_url)) + "/services.json")
    assert services.status_code == 200 and services.json(), "the endpoint named is the one that answers"

    xml = client.get("/open311/discovery.xml")
    assert xml.status_code == 200 and xml.headers["content-type"].startswith("text/xml"), xml.text
    root = ET.fromstring(xml.content)
    assert root.tag == "discovery" and root.findtext("changeset") == doc["changeset"]
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == endpoint["formats"]
    assert root.findtext("endpoints/endpoint/url") == endpoint["url"]
    assert client.get("/open311/discovery.html").status_code == 404


def test_the_changeset_moves_when_the_service_definitions_change(client: TestClient, hotline: Hotline) -> None:
    before = client.get("/open311/discovery.json").json()["changeset"]
    hotline.clock.advance(minutes=5)  # type: ignore[attr-defined]
    hotline.bus.execute(
        catc.AddProblemCode(
            code="broken-bench",
            category_id="road-surface",
            names=catc.Names(zh="长椅损坏", ar="مقعد مكسور", it="Panchina rotta", en="Broken bench"),
            work_order_template={"title": {"zh": "长椅", "ar": "مقعد", "it": "Panchina", "en": "Bench"}, "tasks": []},
        ),
        SYSTEM,
    )
    after = client.get("/open311/discovery.json").json()["changeset"]
    assert after > before
