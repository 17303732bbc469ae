"""Voice menus through ARI: the shipped flow (``infra/data/ivr/main.json``) driven by the
adapter against the stand-in. A status lookup by request reference (valid and unknown)
in staffed hours, a message left out of hours that becomes a request with the
recording attached, and a hand-over (or a callback) that carries the language and the
topic's skill the caller chose to the contact, which only an agent with that skill gets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.base import Actor, FixedClock
from domain.contact_center import commands as cc
from domain.contact_center.contacts import contact_uuid_for
from telephony_adapter.ari_ivr import IvrDriver
from telephony_adapter.ivr.demo import publish_demo_flows
from tests.telephony.ari_harness import MARIO, MARIO_ON_THE_WIRE, Pbx, in_order, login, start_pbx, wait


@pytest.fixture
def ivr_pbx(tmp_path: Path) -> Iterator[Pbx]:
    p = start_pbx(tmp_path)
    publish_demo_flows(p.hotline)
    try:
        yield p
    finally:
        p.close()


def plays(pbx: Pbx, channel: str) -> list[str]:
    return [r.query["media"] for r in pbx.standin.ops("channels.play") if r.path == f"/channels/{channel}/play"]


def wait_prompt(pbx: Pbx, channel: str, media: str) -> None:
    """Until ``media`` has been played to the channel (and the prompt finished)."""
    wait(lambda: any(media in m.split(",") for m in plays(pbx, channel)) and not pbx.standin.playbacks, what=f"prompt {media}")


def test_status_lookup_with_a_valid_and_an_unknown_reference(ivr_pbx: Pbx) -> None:
    pbx = ivr_pbx
    pbx.known_citizen()
    reference = next(e.data["reference"] for e in pbx.hotline.store.iter_envelopes() if e.type == "hotline.request.registered.v1")
    driver = IvrDriver(pbx.hotline, time_scale=0.05)
    pbx.adapter(ivr=driver)
    caller = pbx.standin.call(MARIO_ON_THE_WIRE, "ivr", "main")
    wait_prompt(pbx, caller, "sound:hotline/it/for-italian-press-1")
    assert pbx.standin.channels[caller].model["state"] == "Up"  # answered by the adapter
    pbx.standin.dtmf(caller, "1")  # Italian
    wait_prompt(pbx, caller, "sound:hotline/it/main-menu")  # staffed hours: the main menu
    pbx.standin.dtmf(caller, "1")  # the status of a request
    wait_prompt(pbx, caller, "sound:hotline/it/enter-reference")
    pbx.standin.dtmf(caller, reference)
    wait(lambda: any(f"digits:{reference}" in m for m in plays(pbx, caller)), what="the reference read back")
    readback = next(m for m in plays(pbx, caller) if f"digits:{reference}" in m).split(",")
    assert readback[0] == "sound:hotline/it/request" and readback[2] == "sound:hotline/it/status-registered"
    # Back in the main menu; now a reference nobody has.
    wait(lambda: plays(pbx, caller)[-1].endswith("sound:hotline/it/main-menu") and not pbx.standin.playbacks, what="main menu again")
    pbx.standin.dtmf(caller, "1")
    wait_prompt(pbx, caller, "sound:hotline/it/enter-reference")
    pbx.standin.dtmf(caller, "999999999999")
    wait(lambda: any("sound:hotline/it/reference-unknown" in m for m in plays(pbx, caller)), what="unknown reference")
    assert not any("digits:999999999999" in m and "status-" in m for m in plays(pbx, caller))
    pbx.standin.hangup(caller)
    wait(lambda: not driver.calls, what="session over")
    assert driver.finished[-1]["outcome"] == "caller_hung_up" and driver.finished[-1]["flow_id"] == "main"
    assert "status" in driver.finished[-1]["path"]
    # No contact: the caller never asked for a person.
    assert pbx.status(pbx.contact_of(caller)) is None
    pbx.quiet()
    pbx.assert_valid()


def test_a_message_left_out_of_hours_becomes_a_request(ivr_pbx: Pbx) -> None:
    pbx = ivr_pbx
    citizen = pbx.known_citizen(MARIO)
    clock = pbx.hotline.clock
    assert isinstance(clock, FixedClock)
    clock.advance(hours=13)  # Monday 23:00 in Rome: nobody staffs the phones
    driver = IvrDriver(pbx.hotline, time_scale=0.05)
    pbx.adapter(ivr=driver)
    caller = pbx.standin.call(MARIO_ON_THE_WIRE, "ivr", "main")
    wait_prompt(pbx, caller, "sound:hotline/it/for-italian-press-1")
    pbx.standin.dtmf(caller, "1")
    wait_prompt(pbx, caller, "sound:hotline/it/closed-menu")
    pbx.standin.dtmf(caller, "2")  # leave a message
    wait(lambda: bool(pbx.standin.live), what="recording started")
    [name] = list(pbx.standin.live)
    record = pbx.standin.ops("channels.record")[0]
    assert record.query["format"] == "wav" and record.query["terminateOn"] == "#" and record.query["beep"] == "true"
    pbx.standin.dtmf(caller, "#")  # done speaking
    wait(lambda: any("sound:hotline/it/message-saved" in m for m in plays(pbx, caller)), what="message saved")
    saved = next(m for m in plays(pbx, caller) if "message-saved" in m).split(",")
    reference = saved[1].removeprefix("digits:")
    # The message is a request of the citizen, with the recording's bytes attached.
    registered = [
        e for e in pbx.hotline.store.iter_envelopes() if e.type == "hotline.request.registered.v1" and e.data["reference"] == reference
    ]
    assert len(registered) == 1 and registered[0].data["citizen_id"] == citizen
    attached = [e for e in pbx.hotline.store.iter_envelopes() if e.type == "hotline.attachment.attached.v1"]
    assert [(a.data["request_ref"], a.data["source"], a.data["content_type"]) for a in attached] == [
        (reference, "voicemail", "audio/x-wav")
    ]
    assert [r.path for r in pbx.standin.ops("recordings.getStoredFile")] == [f"/recordings/stored/{name}/file"]
    # Goodbye, and the adapter hangs up.
    wait(lambda: caller not in pbx.standin.channels, what="call ended by the IVR")
    assert in_order(
        pbx.ops(), ["channels.answer", "channels.play", "channels.record", "recordings.getStoredFile", "channels.play", "channels.hangup"]
    )
    wait(lambda: bool(driver.finished), what="session over")
    assert driver.finished[-1]["message_reference"] == reference
    pbx.quiet()
    pbx.assert_valid()


def english_general_topic(pbx: Pbx, caller: str) -> None:
    """Through the menu in English to the general topic, until it asks: wait or be called back?"""
    wait_prompt(pbx, caller, "sound:hotline/it/for-italian-press-1")
    pbx.standin.dtmf(caller, "2")  # English
    wait_prompt(pbx, caller, "sound:hotline/en/main-menu")
    pbx.standin.dtmf(caller, "2")  # a topic
    wait_prompt(pbx, caller, "sound:hotline/en/topic-menu")
    pbx.standin.dtmf(caller, "1")  # general
    wait_prompt(pbx, caller, "sound:hotline/en/wait-or-callback")


def test_a_hand_over_from_the_menu_to_an_agent(ivr_pbx: Pbx) -> None:
    pbx = ivr_pbx
    login(pbx, "A0", ["general"])  # first in line (same idle time, smaller id) but without the topic's skill
    pbx.run(cc.LoginAgent(agent_id="A1", queues=["general"], skills={"general": 2}, languages=["it", "en"]), Actor("A1", "agent"))
    driver = IvrDriver(pbx.hotline, time_scale=0.05)
    pbx.adapter(ivr=driver)
    caller = pbx.standin.call("+390655501234", "ivr", "main", channel_id="1700.77")
    english_general_topic(pbx, caller)
    pbx.standin.dtmf(caller, "1")  # wait for a person
    cid = pbx.contact_of(caller)
    pbx.wait_status(cid, "connected")
    arrived = pbx.event(cid, "arrived")
    assert (arrived["queue_id"], arrived["language"], arrived["skill"]) == ("general", "en", "general")
    assert pbx.event(cid, "answered")["agent_id"] == "A1"  # the agent with the skill, not A0
    wait(lambda: "ivr_session_recorded" in pbx.events_of(cid), what="session recorded on the contact")
    session = next(e for e in pbx.events_of(cid) if e.startswith("ivr"))
    assert session == "ivr_session_recorded"
    wait(lambda: caller in pbx.standin.bridges.get(f"hl-contact.{cid}", {}).get("channels", []), what="bridged to the agent")
    pbx.standin.hangup(caller)
    pbx.wait_status(cid, "closed")
    pbx.quiet()
    pbx.assert_valid()


def test_a_callback_from_the_menu_keeps_the_language_and_the_topic(ivr_pbx: Pbx) -> None:
    pbx = ivr_pbx
    driver = IvrDriver(pbx.hotline, time_scale=0.05)
    pbx.adapter(ivr=driver)
    caller = pbx.standin.call("+390655501234", "ivr", "main", channel_id="1700.78")
    english_general_topic(pbx, caller)
    pbx.standin.dtmf(caller, "2")  # call me back
    wait(lambda: caller not in pbx.standin.channels, what="call ended by the IVR")
    cid = str(contact_uuid_for(f"ivr-callback:{caller}"))
    pbx.wait_events(cid, "arrived", "callback_scheduled")
    arrived = pbx.event(cid, "arrived")
    assert (arrived["channel"], arrived["queue_id"], arrived["language"], arrived["skill"]) == ("callback", "general", "en", "general")
    pbx.quiet()
    pbx.assert_valid()


def test_a_caller_in_the_menu_is_taken_over_by_a_replacing_adapter(ivr_pbx: Pbx) -> None:
    """The adapter holding a caller's menu session is replaced (ApplicationReplaced): the
    new one finds the channel in ARI's list, starts the menu again from its greeting, and
    the caller goes on to a person through it."""
    pbx = ivr_pbx
    pbx.run(cc.LoginAgent(agent_id="A1", queues=["general"], skills={"general": 2}, languages=["it", "en"]), Actor("A1", "agent"))
    first = pbx.adapter("first", ivr=IvrDriver(pbx.hotline, time_scale=0.05))
    caller = pbx.standin.call("+390655501234", "ivr", "main", channel_id="1700.79")
    wait_prompt(pbx, caller, "sound:hotline/it/for-italian-press-1")
    pbx.standin.dtmf(caller, "2")  # English
    wait_prompt(pbx, caller, "sound:hotline/en/main-menu")
    greetings = sum("sound:hotline/it/for-italian-press-1" in m.split(",") for m in plays(pbx, caller))

    second = pbx.adapter("second", ivr=IvrDriver(pbx.hotline, time_scale=0.05))
    wait(lambda: first.stopped_because == "replaced", what="the first adapter stopped")
    wait(lambda: second.stats.resyncs == 1, what="the second adapter resynced")
    wait(
        lambda: (
            sum("sound:hotline/it/for-italian-press-1" in m.split(",") for m in plays(pbx, caller)) > greetings
            and not pbx.standin.playbacks
        ),
        what="the menu started again by the second adapter",
    )
    pbx.standin.dtmf(caller, "2")  # English again
    wait_prompt(pbx, caller, "sound:hotline/en/main-menu")
    pbx.standin.dtmf(caller, "2")  # a topic
    wait_prompt(pbx, caller, "sound:hotline/en/topic-menu")
    pbx.standin.dtmf(caller, "1")  # general
    wait_prompt(pbx, caller, "sound:hotline/en/wait-or-callback")
    pbx.standin.dtmf(caller, "1")  # wait for a person
    cid = pbx.contact_of(caller)
    pbx.wait_status(cid, "connected")
    assert pbx.event(cid, "answered")["agent_id"] == "A1"
    assert pbx.events_of(cid).count("arrived") == 1
    pbx.standin.hangup(caller)
    pbx.wait_status(cid, "closed")
    pbx.quiet()
    pbx.assert_valid()
