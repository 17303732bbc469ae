"""The relay's and replay's fast paths: the fast decoder gives exactly the envelopes of the
library's mapper, and Kafka's record checksums are computed in C."""

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


def test_kafka_record_checksums_are_computed_in_c() -> None:
    """kafka-python falls back to a pure-Python CRC-32C, silently, when the ``crc32c``
    package is missing: once it was dropped as "unused" and the relay spent a third of its
    CPU on checksums (the Kafka lag at 500 commands/s tripled)."""
    from crc32c import crc32c
    from kafka.record import util

    assert util.calc_crc32c.__defaults__ == (crc32c,)
    assert util.calc_crc32c(memoryview(b"123456789")) == 0xE3069283  # the CRC-32C check value
