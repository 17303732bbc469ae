"""IVR flows as data and as events: the schema (an independent check with jsonschema's
own validator) and the rules between parts refuse bad flows, naming the problem; each
published version is an event with its document and hash; the API lets an
administrator publish (422 naming the problem) and supervisors read."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from api.app import create_app
from domain.base import SYSTEM, Actor, Forbidden, InvalidCommand
from domain.contact_center import commands as cc
from domain.ivr import commands as ic
from domain.ivr.aggregate import IvrFlow, flow_uuid
from domain.ivr.flow import check_flow, flow_hash, queues_named
from infra.runtime import Hotline
from infra.settings import Settings
from projections import ivr as rm
from tests.auth import SignedInClient

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "telephony_adapter" / "ivr" / "flow.schema.json").read_text("utf-8"))
MAIN = json.loads((ROOT / "infra" / "data" / "ivr" / "main.json").read_text("utf-8"))
MAIN_QUEUES = sorted({queue for _, queue in queues_named(MAIN)})
ADMIN = {"X-Actor-Id": "admin", "X-Actor-Role": "administrator"}
SUP = {"X-Actor-Id": "sup-li", "X-Actor-Role": "supervisor"}
AGENT = {"X-Actor-Id": "op-anna", "X-Actor-Role": "agent"}


def define_queues(hotline: Hotline, *queues: str) -> None:
    """The queues the shipped flow hands callers to: a flow naming others is refused."""
    for queue_id in queues or MAIN_QUEUES:
        hotline.bus.execute(cc.DefineQueue(queue_id=queue_id), SYSTEM)


def changed(edit: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    doc = copy.deepcopy(MAIN)
    edit(doc)
    return doc


def test_the_shipped_flow_is_valid() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert not list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(MAIN))
    check_flow(MAIN)
    assert set(MAIN["languages"]) == {"zh", "ar", "it", "en"}


# What the schema itself refuses: jsonschema's validator (the oracle) and check_flow agree.
SCHEMA_BAD = {
    "no start": lambda d: d.pop("start"),
    "unknown language": lambda d: d.update(languages=["it", "fr"]),
    "unknown node type": lambda d: d["nodes"]["goodbye"].update(type="transfer"),
    "two-digit option": lambda d: d["nodes"]["main"]["options"].update({"12": {"next": "main"}}),
    "menu without on_fail": lambda d: d["nodes"]["main"].pop("on_fail"),
    "negative timeout": lambda d: d["nodes"]["main"].update(timeout_s=-1),
    "too many retries": lambda d: d["nodes"]["main"].update(retries=50),
    "a field a node does not have": lambda d: d["nodes"]["hours"].update(prompt=["x"]),
    "media with spaces": lambda d: d["nodes"]["welcome"].update(prompt=["hello world"]),
    "handover without a queue": lambda d: d["nodes"]["queue-tax"].pop("queue"),
}


@pytest.mark.parametrize("name", list(SCHEMA_BAD))
def test_schema_refuses(name: str) -> None:
    doc = changed(SCHEMA_BAD[name])
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc)), "the oracle accepts it"
    with pytest.raises(InvalidCommand) as refused:
        check_flow(doc)
    assert refused.value.code == "ivr_flow_invalid" and "schema" in refused.value.message
    assert refused.value.details["field"].startswith("document")


# What only the rules between parts refuse (the schema accepts these).
RULES_BAD = {
    "next names no node": (lambda d: d["nodes"]["main"]["options"]["1"].update(next="nowhere"), "nodes/main/options/1/next", "nowhere"),
    "start names no node": (lambda d: d.update(start="nowhere"), "start", "nowhere"),
    "prompt lacks a language": (lambda d: d["nodes"]["welcome"].update(prompt={"it": ["a"], "en": ["a"]}), "nodes/welcome/prompt", "ar"),
    "default language not spoken": (lambda d: d.update(languages=["it", "en"], default_language="zh"), "default_language", "zh"),
    "on_limit does not end the call": (lambda d: d.update(on_limit="main"), "on_limit", "handover or hangup"),
    "min above max": (lambda d: d["nodes"]["status"].update(min_digits=13), "nodes/status/min_digits", "max_digits"),
    "say and hours loop": (
        lambda d: d["nodes"]["office-hours"].update(next="hours") or d["nodes"]["hours"].update(closed="office-hours"),
        "nodes/",
        "loop",
    ),
    "dialled language not spoken": (
        lambda d: d.update(languages=["it", "en"], dialled_languages={"12345": "ar"}),
        "dialled_languages/12345",
        "ar",
    ),
}


@pytest.mark.parametrize("name", list(RULES_BAD))
def test_rules_between_parts_refuse(name: str) -> None:
    edit, where, says = RULES_BAD[name]
    doc = changed(edit)
    if name not in ("prompt lacks a language", "default language not spoken", "dialled language not spoken"):
        assert not list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc))
    with pytest.raises(InvalidCommand) as refused:
        check_flow(doc)
    assert refused.value.details["field"].startswith(f"document/{where}") and says in refused.value.message


def test_the_hash_is_of_the_canonical_document() -> None:
    reordered = json.loads(json.dumps(MAIN, indent=4, sort_keys=False))
    reordered = dict(reversed(list(reordered.items())))
    assert flow_hash(reordered) == flow_hash(MAIN)
    canonical = json.dumps(MAIN, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert flow_hash(MAIN) == hashlib.sha256(canonical).hexdigest()


def test_versions_are_events(hotline: Hotline) -> None:
    define_queues(hotline)
    admin = Actor("admin", "administrator")
    first = hotline.bus.execute(ic.PublishFlow(document=MAIN, note="first"), admin).result
    assert first["flow_version"] == 1 and first["published"] and first["sha256"] == flow_hash(MAIN)
    same = hotline.bus.execute(ic.PublishFlow(document=copy.deepcopy(MAIN)), admin).result
    assert same["flow_version"] == 1 and not same["published"]
    v2 = changed(lambda d: d["nodes"]["main"].update(retries=1))
    second = hotline.bus.execute(ic.PublishFlow(document=v2, note="fewer retries"), admin).result
    assert second["flow_version"] == 2
    with pytest.raises(InvalidCommand):
        hotline.bus.execute(ic.PublishFlow(document=changed(lambda d: d.update(start="x"))), admin)
    with pytest.raises(Forbidden):
        hotline.bus.execute(ic.PublishFlow(document=v2), Actor("sup-li", "supervisor"))
    events = list(hotline.store.events.get(flow_uuid("main")))
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Registered", "VersionPublished", "VersionPublished"]
    published = [e for e in events if isinstance(e, IvrFlow.VersionPublished)]
    assert [(e.flow_version, e.sha256, e.note, e.meta["actor_id"]) for e in published] == [
        (1, flow_hash(MAIN), "first", "admin"),
        (2, flow_hash(v2), "fewer retries", "admin"),
    ]
    assert published[0].document == MAIN and published[1].document == v2
    with hotline.read_store.engine.connect() as conn:
        assert [(f["flow_id"], f["current_version"], f["sha256"]) for f in rm.flows(conn)] == [("main", 2, flow_hash(v2))]
        assert [v["flow_version"] for v in rm.versions(conn, "main")] == [2, 1]
        old = rm.version(conn, "main", 1)
        assert old is not None and old["document"] == MAIN and old["published_by"] == "admin"


def test_publish_and_read_over_http(tmp_path: Path) -> None:
    with SignedInClient(create_app(Settings(data_dir=tmp_path))) as client:
        for queue_id in MAIN_QUEUES:
            assert client.post("/queues", json={"queue_id": queue_id}, headers=SUP).status_code == 200
        assert client.post("/ivr/flows", json={"document": MAIN}, headers=SUP).status_code == 403
        created = client.post("/ivr/flows", json={"document": MAIN, "note": "first"}, headers=ADMIN)
        assert created.status_code == 201, created.text
        assert created.json()["flow_version"] == 1
        bad = client.post(
            "/ivr/flows", json={"document": changed(lambda d: d["nodes"]["main"]["options"]["1"].update(next="x"))}, headers=ADMIN
        )
        assert bad.status_code == 422
        error = bad.json()["error"]
        assert error["code"] == "ivr_flow_invalid" and "nodes/main/options/1/next" in error["message"]
        schema_bad = client.post("/ivr/flows", json={"document": changed(lambda d: d.pop("nodes"))}, headers=ADMIN)
        assert schema_bad.status_code == 422 and "nodes" in schema_bad.json()["error"]["message"]
        assert client.get("/ivr/flows", headers=AGENT).status_code == 403
        flows = client.get("/ivr/flows", headers=SUP).json()
        assert [(f["flow_id"], f["current_version"]) for f in flows] == [("main", 1)]
        one = client.get("/ivr/flows/main", headers=SUP)
        assert one.headers["ETag"] == '"2"' and [v["flow_version"] for v in one.json()["versions"]] == [1]
        version = client.get("/ivr/flows/main/versions/1", headers={"X-Actor-Id": "auditor-omar", "X-Actor-Role": "auditor"}).json()
        assert version["document"] == MAIN and version["sha256"] == flow_hash(MAIN)
        assert client.get("/ivr/flows/main/versions/2", headers=SUP).status_code == 404
        assert client.get("/ivr/schema", headers=SUP).json()["$id"] == SCHEMA["$id"]
        history = client.get(f"/audit/ivr_flow/{flow_uuid('main')}", headers={"X-Actor-Id": "auditor-omar", "X-Actor-Role": "auditor"})
        assert history.status_code == 200, history.text


def test_system_may_publish(hotline: Hotline) -> None:
    define_queues(hotline)
    assert hotline.bus.execute(ic.PublishFlow(document=MAIN), SYSTEM).result["flow_version"] == 1
