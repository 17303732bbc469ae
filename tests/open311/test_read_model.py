"""The Open311 read model (projections/open311.py) and the text it carries into XML."""

from __future__ import annotations

import random
import uuid
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from consumers.replay import rebuild
from domain.attachments.commands import RemoveAttachment
from domain.base import SYSTEM
from domain.envelope import Envelope
from infra.runtime import Hotline
from projections import open311 as rm
from projections.base import MemoryRows
from tests.open311.conformance import validate, xml_as_json
from tests.open311.conftest import BASE, issue_key, pothole_form, staff


def _rows(envelopes: list[Envelope]) -> dict[str, list[str]]:
    rows = MemoryRows(rm.projection)
    rows.apply_all(envelopes)
    return {t: sorted(repr(sorted(r.items())) for r in rows.rows(t)) for t in rm.projection.tables}


def _stored(hotline: Hotline) -> dict[str, list[str]]:
    with hotline.read_store.engine.connect() as conn:
        return {
            t.name: sorted(repr(sorted(dict(r).items())) for r in conn.execute(sa.select(t)).mappings())
            for t in rm.projection.tables.values()
        }


def _interleave(envelopes: list[Envelope], rng: random.Random) -> list[Envelope]:
    """Another order a Kafka consumer may see: each aggregate's own order kept, the rest shuffled."""
    queues: dict[str, list[Envelope]] = {}
    for e in envelopes:
        queues.setdefault(e.aggregate_id, []).append(e)
    streams = [list(reversed(q)) for q in queues.values()]
    out = []
    while streams:
        stream = rng.choice(streams)
        out.append(stream.pop())
        if not stream:
            streams.remove(stream)
    return out


def test_rows_do_not_depend_on_the_order_of_requests_and_their_photos(sqlite_hotline: Hotline) -> None:
    hotline = sqlite_hotline
    with TestClient(create_app(hotline=hotline)) as client:
        key = issue_key(client, hotline)
        refs = []
        for n in range(6):
            form = pothole_form(key, media_url=f"https://photos.example.org/{n}.jpg", description=f"hole {n}")
            refs.append(client.post(f"{BASE}/requests.json", data=form).json()[0]["service_request_id"])
        agent = staff(hotline, "agent")
        for ref in refs[:3]:
            assert client.post(f"/requests/{ref}/dispatch", json={}, headers=agent).status_code == 200
            assert client.post(f"/requests/{ref}/notes", json={"text": "seen", "internal": False}, headers=agent).status_code == 200
        [photo] = client.get(f"/requests/{refs[0]}/attachments", headers=agent).json()
        hotline.bus.execute(RemoveAttachment(attachment_id=photo["id"], reason="a face in the photo"), SYSTEM)
        envelopes = list(hotline.store.iter_envelopes(0))
        # What the store's read model holds is what a replay of the events makes.
        replayed = _rows(envelopes)
        assert _stored(hotline) == replayed
        # ``hotline replay open311`` rebuilds the same tables, indexes included.
        before = _stored(hotline)
        rebuild(hotline.store, hotline.read_store, rm.projection)
        assert _stored(hotline) == before
        with hotline.read_store.engine.connect() as conn:
            indexes = {i["name"] for i in sa.inspect(conn).get_indexes(rm.REQUESTS.name)}
        assert {"ix_open311_requested", "ix_open311_service", "ix_open311_open"} <= indexes
        # Every interleaving of different aggregates' events gives the same rows.
        for seed in range(20):
            assert _rows(_interleave(envelopes, random.Random(seed))) == replayed
        # The removed photo is gone, the others shown.
        shown = {r["service_request_id"]: r["media_url"] for r in client.get(f"{BASE}/requests.json", params={"api_key": key}).json()}
        assert shown[refs[0]] is None
        assert all(shown[ref] == f"https://photos.example.org/{n}.jpg" for n, ref in enumerate(refs) if n)


def test_text_survives_both_formats(client: TestClient, hotline: Hotline, api_key: str) -> None:
    tricky = 'Tombino <rotto> & "pericoloso" ]]> 路灯不亮 — حفرة عميقة\x07 fine'
    ref = client.post(f"{BASE}/requests.json", data=pothole_form(api_key, description=tricky)).json()[0]["service_request_id"]
    [as_json] = client.get(f"{BASE}/requests/{ref}.json", params={"api_key": api_key}).json()
    assert as_json["description"] == tricky
    [as_xml] = xml_as_json(
        client.get(f"{BASE}/requests/{ref}.xml", params={"api_key": api_key}).content, "service_requests", "requests.json"
    )
    assert as_xml["description"] == tricky.replace("\x07", "")  # XML 1.0 cannot carry a bell
    long = "x" * 5000
    ref = client.post(f"{BASE}/requests.json", data=pothole_form(api_key, description=long)).json()[0]["service_request_id"]
    listed: list[dict[str, Any]] = client.get(f"{BASE}/requests.json", params={"api_key": api_key, "service_request_id": ref}).json()
    validate("requests.json", listed)
    assert listed[0]["description"] == long[:4000]  # the schema's maxLength; the case keeps it whole
    assert client.get(f"/requests/{ref}", headers=staff(hotline)).json()["description"] == long
    assert uuid.UUID(client.post(f"{BASE}/requests.json", data=pothole_form(api_key)).json()[0]["token"])
