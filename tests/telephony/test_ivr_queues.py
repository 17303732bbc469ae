"""The queues a voice menu hands callers to: publishing a flow that names a queue that does
not exist (or is not a voice queue) is refused naming the node and the queue; a flow that
still names one at run time (published before, or its queue gone) hands the caller to the
adapter's default queue rather than hanging up."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from domain.base import SYSTEM, Actor, InvalidCommand
from domain.contact_center import commands as cc
from domain.ivr import commands as ic
from domain.ivr.flow import check_flow, queues_named
from infra.runtime import Hotline
from infra.settings import Settings
from telephony_adapter.ari_ivr import IvrDriver
from telephony_adapter.ivr.engine import Flow
from tests.auth import SignedInClient
from tests.telephony.ari_harness import Pbx, login, pbx, wait
from tests.telephony.test_ari_ivr import english_general_topic

__all__ = ["pbx"]
ROOT = Path(__file__).resolve().parents[2]
MAIN = json.loads((ROOT / "infra" / "data" / "ivr" / "main.json").read_text("utf-8"))
QUEUES = {queue: "voice" for _, queue in queues_named(MAIN)}
ADMIN = {"X-Actor-Id": "admin", "X-Actor-Role": "administrator"}
SUP = {"X-Actor-Id": "sup-li", "X-Actor-Role": "supervisor"}


def changed(edit: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    doc = copy.deepcopy(MAIN)
    edit(doc)
    return doc


TYPO = changed(lambda d: d["nodes"]["queue-general"].update(queue="generall"))


def test_check_flow_names_the_node_and_the_queue() -> None:
    check_flow(MAIN, QUEUES)
    check_flow(TYPO)  # without the queues: not checked (the aggregate's own re-check)
    with pytest.raises(InvalidCommand) as typo:
        check_flow(TYPO, QUEUES)
    assert "node queue-general" in typo.value.message and "'generall'" in typo.value.message
    assert typo.value.details == {"field": "document/nodes/queue-general/queue", "node": "queue-general", "queue": "generall"}
    callback = changed(lambda d: d["nodes"]["callback-tax"].update(queue="taxes"))
    with pytest.raises(InvalidCommand, match="node callback-tax schedules callbacks in queue 'taxes', which is not defined"):
        check_flow(callback, QUEUES)
    with pytest.raises(InvalidCommand, match="node queue-tax hands callers over to queue 'tax', a chat queue"):
        check_flow(MAIN, {**QUEUES, "tax": "chat"})


def test_publishing_checks_the_queues(hotline: Hotline) -> None:
    admin = Actor("admin", "administrator")
    with pytest.raises(InvalidCommand, match="which is not defined"):
        hotline.bus.execute(ic.PublishFlow(document=MAIN), admin)
    for queue_id in QUEUES:
        hotline.bus.execute(cc.DefineQueue(queue_id=queue_id), SYSTEM)
    with pytest.raises(InvalidCommand, match="'generall'"):
        hotline.bus.execute(ic.PublishFlow(document=TYPO), admin)
    assert hotline.bus.execute(ic.PublishFlow(document=MAIN), admin).result["flow_version"] == 1


def test_publishing_a_flow_with_an_unknown_queue_over_http_is_422(tmp_path: Path) -> None:
    with SignedInClient(create_app(Settings(data_dir=tmp_path))) as client:
        for queue_id in QUEUES:
            assert client.post("/queues", json={"queue_id": queue_id}, headers=SUP).status_code == 200
        assert client.post("/queues", json={"queue_id": "chat", "media": "chat"}, headers=SUP).status_code == 200
        bad = client.post("/ivr/flows", json={"document": TYPO}, headers=ADMIN)
        assert bad.status_code == 422, bad.text
        error = bad.json()["error"]
        assert error["code"] == "ivr_flow_invalid" and "queue-general" in error["message"] and "generall" in error["message"]
        chat = client.post("/ivr/flows", json={"document": changed(lambda d: d["nodes"]["queue-tax"].update(queue="chat"))}, headers=ADMIN)
        assert chat.status_code == 422 and "a chat queue" in chat.json()["error"]["message"]
        assert client.get("/ivr/flows", headers=SUP).json() == []
        assert client.post("/ivr/flows", json={"document": MAIN}, headers=ADMIN).status_code == 201


def test_a_hand_over_to_a_missing_queue_goes_to_the_default_queue(pbx: Pbx) -> None:
    """A flow published before publishing checked its queues (its driver given the
    document directly): the caller who asked for a person waits in the default queue."""
    login(pbx, "A1", ["general"])
    flow = Flow.of(TYPO, 1)
    driver = IvrDriver(pbx.hotline, flows=lambda flow_id: flow, time_scale=0.05)
    pbx.adapter(ivr=driver)
    caller = pbx.standin.call("+390655501234", "ivr", "main", channel_id="1700.88")
    english_general_topic(pbx, caller)
    pbx.standin.dtmf(caller, "1")  # wait for a person: queue-general names "generall"
    cid = pbx.contact_of(caller)
    pbx.wait_status(cid, "connected")
    arrived = pbx.event(cid, "arrived")
    assert (arrived["queue_id"], arrived["language"], arrived["skill"]) == ("general", "en", None)
    assert caller in pbx.standin.channels  # not hung up
    wait(lambda: bool(driver.finished), what="session over")
    pbx.standin.hangup(caller)
    pbx.wait_status(cid, "closed")
    pbx.quiet()
    pbx.assert_valid()
