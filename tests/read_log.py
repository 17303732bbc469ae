"""The personal-data read log lines (api/read_log.py) as the project's log handler writes
them, for tests: through the stdlib logging the JSON handler formats, not structlog's
capture (which misses loggers cached before it starts, as in a whole-suite run)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from infra.logging import configure_logging
from infra.settings import Settings


class ReadLog:
    def __init__(self, caplog: pytest.LogCaptureFixture, settings: Settings) -> None:
        configure_logging(settings.model_copy(update={"log_level": "info", "log_format": "json"}))
        caplog.set_level(logging.INFO, logger="hotline.audit.personal_data")
        self.caplog = caplog
        self.seen = 0

    def new_lines(self) -> list[dict[str, Any]]:
        handler = next(h for h in logging.getLogger().handlers if h.get_name() == "hotline")
        records = [r for r in self.caplog.records if r.name == "hotline.audit.personal_data"]
        fresh, self.seen = records[self.seen :], len(records)
        return [json.loads(handler.format(r)) for r in fresh]
