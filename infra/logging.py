"""Logging for every Hotline process: one JSON object a line on stderr, configured once
from ``Settings`` (``HOTLINE_LOG_LEVEL``, ``HOTLINE_LOG_FORMAT``).

The code logs with the standard library (``logging.getLogger("hotline.relay")``) or with
structlog; both end in structlog's ``ProcessorFormatter``, so a line from the relay, from
uvicorn, from kafka-python or from a warning looks the same. Whatever is bound with
``structlog.contextvars`` is on every line of the thread that bound it: the command bus
binds the command, its correlation and causation ids and the actor while it runs one.

    {"event": "command done", "command": "RegisterRequest", "correlation_id": "…",
     "actor_id": "op-anna", "actor_role": "agent", "level": "debug", "logger": "hotline.bus", …}

Call :func:`configure_logging` once, where the process starts (the ``hotline`` CLI does,
for every subcommand; so does ``api/main.py`` for uvicorn's worker processes).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from infra.settings import Settings

_HANDLER = "hotline"  # the name of the root handler installed here (replaced, never doubled)
_configured: tuple[str, str] | None = None  # (level, format) last installed


def _processors() -> list[Any]:
    """What every line gets, whether it came from the standard library or from structlog."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(settings: Settings) -> None:
    """Route the root logger (and so every standard-library logger) and structlog through
    one formatter: JSON lines (or console lines) at the configured level, on stderr, so
    that stdout stays for what a command prints. Calling it again with the same settings
    does nothing (``hotline serve`` then uvicorn's ``api.main``); with others, it replaces
    the handler."""
    global _configured
    wanted = (settings.log_level, settings.log_format)
    root = logging.getLogger()
    if wanted == _configured and any(h.get_name() == _HANDLER for h in root.handlers):
        return
    _configured = wanted
    shared = _processors()
    renderer: Any
    if settings.log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        final = [structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]
    else:
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
        final = [structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.processors.format_exc_info, renderer]
    # A standard-library line's ``extra=`` fields become fields of the line (not dropped).
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()], processors=final)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER)
    handler.setFormatter(formatter)

    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    logging.captureWarnings(True)

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
