"""Reading and playing recordings, the edges: a recording linked to an id that is not a
UUID is still readable (never a 500), a playback link is never longer than the configured
lifetime, and the audio answers single byte ranges (206, 416) as media players need."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import pytest

from api.routers.recordings import byte_range, recording_access
from domain.recordings.aggregate import Recording
from infra.runtime import Hotline
from tests.auth import SignedInClient, actor
from tests.telephony.test_recordings import client, day_of_recordings

__all__ = ["client"]
SUP = actor("sup1", "supervisor")


def test_a_link_that_is_not_a_uuid_is_skipped_not_a_500(
    hotline: Hotline, client: SignedInClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Links written before they were checked (``link-request`` took any string): the
    recording's rule is decided without them, and the read succeeds."""
    day = day_of_recordings(hotline)
    r1, r2 = day["r1"], day["r2"]
    real = hotline.store.read_reference

    def with_bad_links(aggregate_id: Any, previous: Any = None) -> Any:
        found = real(aggregate_id, previous)
        if isinstance(found, Recording) and str(found.id) in (r1, r2):
            found.request_ids = [*found.request_ids, "REQ-2026-00001"]
            found.contact_id = found.contact_id if str(found.id) == r1 else "ari:chan-9"
        return found

    monkeypatch.setattr(hotline.store, "read_reference", with_bad_links)
    with caplog.at_level(logging.WARNING, logger="hotline.recordings"):
        assert client.get(f"/recordings/{r1}", headers=SUP).status_code == 200
        assert client.get(f"/recordings/{r2}", headers=SUP).status_code == 200
        # The department still sees its case's recording through the good link; the bad one grants nothing.
        assert client.get(f"/recordings/{r1}", headers=actor("roads", "department", ["transport"])).status_code == 200
        assert client.get(f"/recordings/{r2}", headers=actor("roads", "department", ["transport"])).status_code == 403
        assert client.get(f"/recordings/{r2}", headers=actor("op1", "agent")).status_code == 200
    assert any("'REQ-2026-00001' is not a UUID" in r.getMessage() for r in caplog.records)
    assert any("'ari:chan-9' is not a UUID" in r.getMessage() for r in caplog.records)
    recording = hotline.store.read_reference(uuid.UUID(r2))
    assert recording_access(hotline, recording).departments == frozenset()


def test_a_playback_link_is_never_longer_than_the_setting(hotline: Hotline, client: SignedInClient) -> None:
    day = day_of_recordings(hotline)
    longest = hotline.settings.recordings_link_seconds
    too_long = client.post(f"/recordings/{day['r1']}/playback", json={"purpose": "check", "seconds": 3600}, headers=SUP)
    assert too_long.status_code == 422, too_long.text
    error = too_long.json()["error"]
    assert error["code"] == "link_too_long" and str(longest) in error["message"] and error["details"]["maximum"] == longest
    now = hotline.clock.now()
    for body in ({"purpose": "check", "seconds": longest}, {"purpose": "check", "seconds": 60}, {"purpose": "check"}):
        link = client.post(f"/recordings/{day['r1']}/playback", json=body, headers=SUP)
        assert link.status_code == 200, link.text
        seconds = (datetime.fromisoformat(link.json()["expires_at"]) - now).total_seconds()
        assert seconds == body.get("seconds", longest)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=999-999", (999, 999)),
        ("bytes=1000-", "unsatisfiable"),
        ("bytes=-0", "unsatisfiable"),
        ("bytes=5-3", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=x-1", None),
    ],
)
def test_byte_ranges(header: str | None, expected: object) -> None:
    assert byte_range(header, 1000) == expected


def test_the_audio_answers_byte_ranges(hotline: Hotline, client: SignedInClient) -> None:
    day = day_of_recordings(hotline)
    link = client.post(f"/recordings/{day['r1']}/playback", json={"purpose": "listen"}, headers=SUP).json()
    whole = client.get(link["url"], headers=SUP)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    audio, size = whole.content, len(whole.content)
    assert int(whole.headers["content-length"]) == size > 100
    first = client.get(link["url"], headers={**SUP, "Range": "bytes=0-99"})
    assert first.status_code == 206 and first.content == audio[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{size}" and first.headers["content-length"] == "100"
    assert first.headers["content-type"].startswith("audio/")
    middle = client.get(link["url"], headers={**SUP, "Range": f"bytes={size - 10}-{size + 10}"})
    assert middle.status_code == 206 and middle.content == audio[-10:]
    assert middle.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"
    tail = client.get(link["url"], headers={**SUP, "Range": "bytes=-7"})
    assert tail.status_code == 206 and tail.content == audio[-7:]
    beyond = client.get(link["url"], headers={**SUP, "Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    assert beyond.json()["error"]["code"] == "range_not_satisfiable"
    several = client.get(link["url"], headers={**SUP, "Range": "bytes=0-1,4-5"})
    assert several.status_code == 200 and several.content == audio
    # A range is still the link's owner's only.
    assert client.get(link["url"], headers={**actor("omar", "auditor"), "Range": "bytes=0-99"}).status_code == 403
