"""The orjson transcoder writes what the library's transcoder reads, and the other way round."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError
from hypothesis import given
from hypothesis import strategies as st

from infra.transcoder import FastJSONTranscoder


def _pair() -> tuple[JSONTranscoder, FastJSONTranscoder]:
    library, fast = JSONTranscoder(), FastJSONTranscoder()
    Application.register_transcodings(None, library)  # type: ignore[arg-type]
    Application.register_transcodings(None, fast)  # type: ignore[arg-type]
    return library, fast


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.uuids(),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))])),
    st.decimals(allow_nan=False, allow_infinity=False),
)
states = st.dictionaries(
    st.text(), st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4))
)


@given(states)
def test_each_reads_what_the_other_wrote(state: dict[str, Any]) -> None:
    library, fast = _pair()
    assert fast.decode(library.encode(state)) == library.decode(library.encode(state))
    assert library.decode(fast.encode(state)) == library.decode(library.encode(state))
    assert fast.decode(fast.encode(state)) == library.decode(library.encode(state))


def test_typed_values_come_back_typed() -> None:
    _, fast = _pair()
    state = {"id": uuid.uuid4(), "at": datetime(2026, 11, 22, 9, 30, tzinfo=UTC), "amount": Decimal("1.50"), "tags": ("a", "b")}
    back = fast.decode(fast.encode(state))
    assert back == {**state, "tags": ["a", "b"]}
    assert type(back["id"]) is uuid.UUID and type(back["at"]) is datetime


def test_enum_values_are_written_as_their_value_and_unknown_types_are_refused() -> None:
    class Channel(StrEnum):
        PHONE = "phone"

    _, fast = _pair()
    assert fast.decode(fast.encode({"channel": Channel.PHONE})) == {"channel": "phone"}
    with pytest.raises(TranscodingNotRegisteredError):
        fast.encode({"x": object()})
    with pytest.raises(TranscodingNotRegisteredError):
        fast.encode({"d": datetime(2026, 1, 1).date()})
