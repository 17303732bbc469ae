"""The IVR engine, pure: menus, retries and what follows the last one, the language by the
number dialled or a menu, status read back, messages, callbacks, the flow's bounds; and
a property: whatever digits, silences and recordings come, no exception, and a terminal
action within the flow's bounds."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony_adapter.ivr.actions import TERMINAL, Collect, HandOver, Hangup, IvrAction, OfferCallback, Play, Record
from telephony_adapter.ivr.engine import INPUTS_PER_STEP, Flow, IvrSession, StatusInfo

MAIN = json.loads((Path(__file__).resolve().parents[2] / "infra" / "data" / "ivr" / "main.json").read_text("utf-8"))
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
REF = "261130000042"


@dataclass
class FakePorts:
    open_: bool = True
    known: dict[str, StatusInfo] = field(default_factory=dict)
    reference: str | None = "261130999999"
    messages: list[tuple[str, str, str, float]] = field(default_factory=list)
    fail: bool = False

    def status_of(self, reference: str) -> StatusInfo | None:
        if self.fail:
            raise ConnectionError("read model down")
        return self.known.get(reference)

    def is_open(self, now: datetime) -> bool:
        if self.fail:
            raise ConnectionError("calendar down")
        return self.open_

    def leave_message(self, caller: str, language: str, recording_name: str, duration_s: float, now: datetime) -> str | None:
        if self.fail:
            raise ConnectionError("bus down")
        self.messages.append((caller, language, recording_name, duration_s))
        return self.reference


def session(
    ports: FakePorts | None = None, *, dialled: str = "12345", caller: str = "+39 06 1234 5678", doc: dict[str, Any] | None = None
) -> IvrSession:
    return IvrSession(Flow.of(doc or MAIN, 3), caller, dialled, T0, ports or FakePorts())


def played(actions: list[IvrAction]) -> tuple[str, ...]:
    return tuple(m for a in actions if isinstance(a, Play) for m in a.media)


def keys(s: IvrSession, digits: str, at: datetime = T0) -> list[IvrAction]:
    out: list[IvrAction] = []
    for d in digits:
        out += s.on_digit(d, at)
    return out


def test_language_by_number_dialled_then_by_the_first_menu() -> None:
    s = session(dialled="1234502")
    first = s.start(T0)
    assert played(first)[0] == "sound:hotline/zh/welcome"  # the number dialled chose Chinese
    assert first[-1] == Collect(1, 4.0, None)
    assert played(s.on_timeout(T0))[0] == "sound:hotline/zh/main-menu"  # no choice: the dialled language stays
    s2 = session()
    s2.start(T0)
    assert played(keys(s2, "4")) == ("sound:hotline/ar/main-menu",)  # Arabic chosen in the first menu


def test_menu_retries_then_on_fail() -> None:
    s = session()
    s.start(T0)
    keys(s, "2")  # English, open: main menu
    again = keys(s, "7")
    assert played(again) == ("sound:hotline/en/invalid-choice", "sound:hotline/en/main-menu") and isinstance(again[-1], Collect)
    assert played(s.on_timeout(T0)) == ("sound:hotline/en/no-input", "sound:hotline/en/main-menu")
    last = s.on_timeout(T0)  # 1 + 2 retries used: on_fail, to the general queue
    assert played(last) == ("sound:hotline/en/no-input", "sound:hotline/en/transferring", "sound:hotline/en/connecting")
    assert last[-1] == HandOver("general", None, "en", 0)
    assert s.done and s.on_digit("1", T0) == [] and s.on_timeout(T0) == []


def test_the_topic_chooses_the_queue_and_skill() -> None:
    s = session()
    s.start(T0)
    out = keys(s, "123")  # Italian, main 2 (a person), topic 3 (environment)
    assert played(out)[-1] == "sound:hotline/it/wait-or-callback" and s.node_id == "wait-environment" and s.skill == "environment"
    out = s.on_timeout(T0)  # no answer to "wait or be called back": waits in the queue
    assert out[-1] == HandOver("environment", "environment", "it", 0)


def test_wait_in_queue_or_callback_keeping_the_place() -> None:
    s = session()
    s.start(T0)
    assert keys(s, "1221")[-1] == HandOver("tax", "tax", "it", 0)
    s = session()
    s.start(T0)
    out = keys(s, "1222")
    assert out[-2:] == [OfferCallback("tax", "+39 06 1234 5678"), Hangup()]
    assert played(out)[-1] == "sound:hotline/it/callback-confirmed"
    withheld = session(caller="")
    withheld.start(T0)
    out = keys(withheld, "1222")  # nobody to call back: told so, and put through
    assert played(out)[-2:] == ("sound:hotline/it/callback-no-number", "sound:hotline/it/connecting")
    assert out[-1] == HandOver("tax", "tax", "it", 0)


def test_status_lookup_found_unknown_and_unavailable() -> None:
    due = T0 + timedelta(days=2, hours=3)
    ports = FakePorts(known={REF: StatusInfo(REF, "in_progress", due)})
    s = session(ports)
    s.start(T0)
    keys(s, "21")
    assert s.node_id == "status"
    out = keys(s, "123")
    assert out == []  # still keying
    out = s.on_digit("#", T0)  # three digits and the terminator: too short to be a reference
    assert played(out) == ("sound:hotline/en/reference-unknown", "sound:hotline/en/enter-reference")
    assert out[-1] == Collect(12, 8.0, "#")
    out = keys(s, REF)
    assert played(out) == (
        "sound:hotline/en/request",
        f"digits:{REF}",
        "sound:hotline/en/status-in_progress",
        "sound:hotline/en/main-menu",
    )
    keys(s, "1")
    out = keys(s, "999999999999")
    assert played(out)[0] == "sound:hotline/en/reference-unknown" and s.looked_up == [REF, "999999999999"]
    ports.fail = True
    out = keys(s, REF)  # the read model cannot be reached: the caller is put through to people
    assert played(out) == ("sound:hotline/en/lookup-unavailable", "sound:hotline/en/connecting")
    assert out[-1] == HandOver("general", None, "en", 0)


def test_due_date_read_back_as_days() -> None:
    doc = copy.deepcopy(MAIN)
    doc["nodes"]["status"]["found"]["prompt"] = ["$reference", "$status", "$due_days"]
    ports = FakePorts(known={REF: StatusInfo(REF, "dispatched", T0 + timedelta(days=2, hours=1))})
    s = session(ports, doc=doc)
    s.start(T0)
    keys(s, "21")
    assert played(keys(s, REF))[:3] == (f"digits:{REF}", "sound:hotline/en/status-dispatched", "number:3")


def test_out_of_hours_message_and_the_retry_of_a_short_one() -> None:
    ports = FakePorts(open_=False)
    s = session(ports)
    first = s.start(T0)
    out = keys(s, "1")
    assert played(out) == ("sound:hotline/it/closed-now", "sound:hotline/it/closed-menu")
    out = keys(s, "2")
    record = out[-1]
    assert isinstance(record, Record) and record.max_seconds == 120 and record.beep
    assert played(out) == ("sound:hotline/it/leave-message",)
    assert s.on_digit("5", T0) == [] and s.on_recording_finished("someone-else", 9, T0) == []
    short = s.on_recording_finished(record.name, 0.4, T0)
    assert played(short) == ("sound:hotline/it/message-too-short", "sound:hotline/it/leave-message")
    second = short[-1]
    assert isinstance(second, Record) and second.name != record.name
    done = s.on_recording_finished(second.name, 17.5, T0)
    assert ports.messages == [("+39 06 1234 5678", "it", second.name, 17.5)]
    assert played(done) == ("sound:hotline/it/message-saved", "digits:261130999999", "sound:hotline/it/goodbye")
    assert done[-1] == Hangup() and s.record()["message_reference"] == "261130999999"
    assert first and s.record()["outcome"] == "hangup" and s.record()["flow_version"] == 3


def test_a_caller_who_hangs_up_while_recording_still_leaves_the_message() -> None:
    ports = FakePorts(open_=False)
    s = session(ports)
    s.start(T0)
    record = keys(s, "12")[-1]
    assert isinstance(record, Record)
    assert s.on_hangup(T0) == [] and not s.done
    assert s.on_recording_finished(record.name, 30, T0) == []  # nobody to play to
    assert len(ports.messages) == 1 and s.done and s.record()["outcome"] == "caller_hung_up"


def test_message_that_cannot_be_registered() -> None:
    ports = FakePorts(open_=False, reference=None)
    s = session(ports)
    s.start(T0)
    record = keys(s, "12")[-1]
    assert isinstance(record, Record)
    out = s.on_recording_finished(record.name, 10, T0)
    assert played(out) == ("sound:hotline/it/message-failed", "sound:hotline/it/goodbye") and out[-1] == Hangup()


def test_the_flow_bounds_end_the_call() -> None:
    doc = copy.deepcopy(MAIN)
    doc["limits"] = {"max_steps": 6, "max_seconds": 60}
    s = session(doc=doc)
    s.start(T0)
    out: list[IvrAction] = []
    for _ in range(10):  # "*" repeats the main menu: a step each time
        out = keys(s, "1*") if s.node_id == "language" else keys(s, "*")
        if s.done:
            break
    assert s.done and out[-1] == Hangup() and s.steps <= 6 and s.record()["outcome"] == "limit"
    late = session(doc=doc)
    late.start(T0)
    out = late.on_digit("1", T0 + timedelta(seconds=61))  # past max_seconds
    assert out[-1] == Hangup() and played(out) == ("sound:hotline/it/goodbye",)


def test_no_flow_and_no_port_makes_it_raise_opening_hours_unknown_means_open() -> None:
    s = session(FakePorts(fail=True))
    s.start(T0)
    assert played(keys(s, "1")) == ("sound:hotline/it/main-menu",)


# ---------------------------------------------------------------------- the property
LOOPY = {
    "flow_id": "loopy",
    "languages": ["en", "it"],
    "default_language": "en",
    "start": "m",
    "nodes": {
        "m": {
            "type": "menu",
            "prompt": {"en": ["m"], "it": ["m"]},
            "options": {
                "1": {"next": "m"},
                "2": {"next": "l"},
                "3": {"next": "r", "language": "it"},
                "4": {"next": "c"},
                "5": {"next": "s"},
            },
            "timeout_s": 1,
            "retries": 5,
            "on_fail": {"next": "m"},
        },
        "s": {"type": "say", "prompt": ["s"], "next": "h"},
        "h": {"type": "hours", "open": "m", "closed": "l"},
        "l": {
            "type": "lookup",
            "prompt": ["l"],
            "min_digits": 1,
            "max_digits": 32,
            "terminator": "#",
            "timeout_s": 1,
            "retries": 5,
            "found": {"next": "m", "prompt": ["$reference", "$status", "$due_days"]},
            "unknown": ["u"],
            "on_fail": {"next": "l"},
        },
        "r": {
            "type": "record",
            "prompt": ["r"],
            "max_seconds": 5,
            "retries": 5,
            "saved": {"next": "m", "prompt": ["$reference"]},
            "failed": {"next": "r"},
            "on_fail": {"next": "r"},
        },
        "c": {"type": "callback", "queue": "q", "prompt": ["c"], "no_number": {"next": "m"}},
        "x": {"type": "hangup"},
    },
}
INPUT = st.one_of(
    st.sampled_from(list("0123456789*#")),
    st.just("t"),
    st.just("p"),
    st.tuples(st.just("r"), st.one_of(st.floats(min_value=-5, max_value=700), st.just(float("nan")))),
)


@st.composite
def ports_strategy(draw: st.DrawFn) -> FakePorts:
    return FakePorts(
        open_=draw(st.booleans()),
        known={"1": StatusInfo("1", "closed"), "12": StatusInfo("12", "dispatched", T0 + timedelta(hours=5))},
        reference=draw(st.sampled_from([None, "261130000001"])),
        fail=draw(st.booleans()),
    )


def feed(s: IvrSession, item: Any, now: datetime) -> list[IvrAction]:
    if item == "t":
        return s.on_timeout(now)
    if item == "p":
        return s.on_playback_finished(now)
    if isinstance(item, tuple):
        return s.on_recording_finished(s.recording or "none", item[1], now)
    return s.on_digit(item, now)


@pytest.mark.parametrize("doc", [MAIN, LOOPY], ids=["shipped", "loopy"])
def test_any_input_sequence_ends_in_a_terminal_action_within_the_bounds(doc: dict[str, Any]) -> None:
    flow = Flow.of(doc, 1)
    bound = flow.document.get("limits", {}).get("max_steps", 60) * INPUTS_PER_STEP + 1

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        inputs=st.lists(INPUT, max_size=120), ports=ports_strategy(), caller=st.sampled_from(["", "+390612345678"]), dt=st.integers(0, 20)
    )
    def run(inputs: list[Any], ports: FakePorts, caller: str, dt: int) -> None:
        s = IvrSession(flow, caller, "12345", T0, ports)
        now = T0
        actions = list(s.start(now))
        count = 0
        for item in [*inputs, *(["t"] * bound)]:  # then silence until the end
            if s.ended:
                break
            now += timedelta(seconds=dt)
            actions += feed(s, item, now)
            count += 1
        assert s.ended, f"not ended after {count} inputs at {s.node_id}"
        assert count <= len(inputs) + bound
        assert s.steps <= flow.document.get("limits", {}).get("max_steps", 60)
        ends = [i for i, a in enumerate(actions) if isinstance(a, TERMINAL)]
        assert ends and isinstance(actions[-1], Hangup | HandOver)  # OfferCallback is followed by Hangup
        assert all(isinstance(a, Play) for a in actions[ends[0] + 1 : -1])
        assert all(isinstance(a, Play | Collect | Record | HandOver | OfferCallback | Hangup) for a in actions)
        assert s.on_digit("1", now) == [] and s.on_timeout(now) == [] and s.on_hangup(now) == []

    run()
