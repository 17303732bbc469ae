"""The relay's and replay's fast decoder gives exactly the envelopes of the library's mapper."""

from __future__ import annotations

from pathlib import Path

from consumers.fast_decode import decoder_for
from domain.base import SystemClock
from infra.runtime import Hotline
from infra.settings import Settings
from tests.conftest import load_catalogue
from tests.kafka.harness import Workload


def test_fast_decoder_equals_mapper(tmp_path: Path) -> None:
    h = Hotline.start(Settings(data_dir=tmp_path), SystemClock())
    try:
        load_catalogue(h)
        work = Workload(h, seed=2)
        for _ in range(150):
            work.step()
        notifications = h.store.notifications(0, 100_000)
        decoder = decoder_for(h.store)
        fast = decoder.envelopes(notifications)
        slow = [h.store.to_envelope(n) for n in notifications]
        assert len(fast) > 300
        assert fast == slow
        assert len({e.type for e in fast}) >= 8
    finally:
        h.close()
