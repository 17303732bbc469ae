"""What happens on the PBX when a call is bridged and watched: the queue's recording
policy (announcement, ``POST /bridges/{id}/record``, the file fetched when it finishes),
and supervisors monitoring, whispering and barging in through snoop channels."""

from __future__ import annotations

from domain.base import Actor
from domain.contact_center import commands as cc
from domain.recordings.commands import SetRecordingPolicy
from telephony_adapter.recorder import Recorder
from tests.telephony.ari_harness import Pbx, in_order, login, pbx, wait

__all__ = ["pbx"]


def test_a_recorded_call(pbx: Pbx) -> None:
    pbx.run(SetRecordingPolicy(queue_id="general", mode="all", announcement="sound:hotline/call-recorded"))
    login(pbx, "A1", ["general"])
    pbx.adapter(recorder=Recorder(pbx.hotline.bus, pbx.hotline.attachments))
    caller = pbx.standin.call("+390655501234", "general")
    cid = pbx.contact_of(caller)
    pbx.wait_status(cid, "connected")
    wait(lambda: bool(pbx.standin.live), what="recording")
    [name] = list(pbx.standin.live)
    assert pbx.standin.live[name]["target_uri"] == f"bridge:hl-contact.{cid}"
    # The caller hears the announcement before being bridged.
    assert in_order(pbx.ops(), ["channels.play", "bridges.create", "bridges.addChannel", "bridges.record"])
    announcement = pbx.standin.ops("channels.play")[0]
    assert announcement.path == f"/channels/{caller}/play" and announcement.query["media"] == "sound:hotline/call-recorded"
    wait(lambda: any(e.type == "hotline.recording.started.v1" for e in pbx.hotline.store.iter_envelopes()), what="StartRecording")
    started = next(e for e in pbx.hotline.store.iter_envelopes() if e.type == "hotline.recording.started.v1")
    assert started.data["reason"] == "policy" and started.data["agent_id"] == "A1"
    pbx.standin.hangup(caller)
    wait(lambda: any(e.type == "hotline.recording.completed.v1" for e in pbx.hotline.store.iter_envelopes()), what="CompleteRecording")
    completed = next(e for e in pbx.hotline.store.iter_envelopes() if e.type == "hotline.recording.completed.v1")
    assert completed.data["size_bytes"] == len(pbx.standin.stored[name])
    assert [r.path for r in pbx.standin.ops("recordings.getStoredFile")] == [f"/recordings/stored/{name}/file"]
    pbx.quiet()
    pbx.assert_valid()


def test_a_call_not_recorded_by_its_queue(pbx: Pbx) -> None:
    pbx.run(SetRecordingPolicy(queue_id="general", mode="none"))
    login(pbx, "A1", ["general"])
    pbx.adapter(recorder=Recorder(pbx.hotline.bus, pbx.hotline.attachments))
    caller = pbx.standin.call("+390655501234", "general")
    cid = pbx.contact_of(caller)
    pbx.wait_status(cid, "connected")
    wait(lambda: len(pbx.standin.bridges.get(f"hl-contact.{cid}", {}).get("channels", [])) == 2, what="bridged")
    pbx.quiet()
    assert not pbx.standin.ops("bridges.record", "channels.play")
    pbx.assert_valid()


def test_monitor_whisper_barge_and_stop(pbx: Pbx) -> None:
    login(pbx, "A1", ["general"])
    pbx.adapter()
    caller = pbx.standin.call("+390655501234", "general")
    cid = pbx.contact_of(caller)
    pbx.wait_status(cid, "connected")
    agent = pbx.agent_leg(cid, "A1")
    wait(lambda: len(pbx.standin.bridges.get(f"hl-contact.{cid}", {}).get("channels", [])) == 2, what="bridged")
    sup = Actor("sup1", "supervisor")
    bridge = f"hl-sup.{cid}.sup1"
    for n, (mode, whisper) in enumerate((("monitor", "none"), ("whisper", "out"), ("barge", "both")), start=1):
        pbx.run(cc.Supervise(contact_id=cid, supervisor_id="sup1", mode=mode), sup)  # type: ignore[arg-type]
        wait(lambda: len(pbx.standin.ops("channels.snoopChannel")) == n, what=f"{mode}: snoop")  # noqa: B023
        snoop = pbx.standin.ops("channels.snoopChannel")[-1]
        members = lambda: pbx.standin.bridges.get(bridge, {}).get("channels", [])  # noqa: E731
        wait(lambda: len(members()) == 2 and members()[0] == snoop.query["snoopId"], what=f"{mode}: supervisor with the snoop")  # noqa: B023
        assert snoop.path == f"/channels/{agent}/snoop" and (snoop.query["spy"], snoop.query["whisper"]) == ("both", whisper)
        snoop_id, sup_leg = pbx.standin.bridges[bridge]["channels"]
        assert snoop_id == snoop.query["snoopId"] and pbx.standin.channels[sup_leg].endpoint == "PJSIP/sup1"
        # The call itself is untouched: citizen and agent still bridged together.
        assert pbx.standin.bridges[f"hl-contact.{cid}"]["channels"] == [caller, agent]
    pbx.run(cc.Supervise(contact_id=cid, supervisor_id="sup1", mode="stop"), sup)
    wait(lambda: f"hl-sup.{cid}.sup1" not in pbx.standin.bridges, what="supervision over")
    wait(lambda: not any(c.startswith(("hl-snoop.", "hl-sup.")) for c in pbx.standin.channels), what="snoop and supervisor hung up")
    assert pbx.events_of(cid)[-4:] == ["supervisor_joined", "supervisor_joined", "supervisor_joined", "supervisor_left"]
    pbx.quiet()
    pbx.assert_valid()
