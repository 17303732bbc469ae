"""Scratch stores: where a command may run with a clock other than the real one.

A clock injected by the CLI (``--clock``, a simulation) writes events stamped with the
time it is told. On the live store that is the future (or the past) for everybody else:
once an agent or a request has an event at 14:00, a real command at 09:00 is refused.
So an injected clock only ever runs on a scratch store: a data folder that the command
creates (empty, or a copy of the embedded store) and reports, marked by a file so that a
later command with ``--clock`` on it knows it is not live.

PostgreSQL is always treated as live: a scratch store is an embedded data folder.
"""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from infra.settings import Settings

MARK = "SCRATCH"
# The embedded store's files that a copy carries (the analytics file is rebuilt by ingest).
STORE_FILES = ("events.sqlite", "read_models.sqlite")


class LiveStore(Exception):
    """An injected clock was asked for on the live store."""


def is_scratch(settings: Settings) -> bool:
    return settings.database_url is None and settings.kafka_bootstrap_servers is None and (settings.data_dir / MARK).exists()


def mark(data_dir: Path, purpose: str) -> None:
    """Declare a data folder a scratch store (tests and tools that build one by hand)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARK).write_text(
        f"A scratch store for {purpose}, made {datetime.now(UTC).isoformat(timespec='seconds')}.\n"
        "Its events may carry simulated times: never serve it as a live hotline.\n",
        "utf-8",
    )


def embedded(settings: Settings, data_dir: Path) -> Settings:
    """The same settings on an embedded store in ``data_dir`` (no PostgreSQL, no Kafka)."""
    return settings.model_copy(update={"data_dir": data_dir, "database_url": None, "kafka_bootstrap_servers": None})


def new(settings: Settings, purpose: str) -> Settings:
    """An empty scratch store in a new temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix=f"hotline-{purpose}-"))
    mark(folder, purpose)
    return embedded(settings, folder)


def copy_of(settings: Settings, purpose: str) -> Settings:
    """A scratch copy of the embedded store (a consistent snapshot, taken with SQLite's
    backup API while the live store may be in use)."""
    if settings.database_url is not None or settings.kafka_bootstrap_servers is not None:
        raise LiveStore("a copy can only be taken of the embedded store; with PostgreSQL, restore a backup into a scratch database")
    scratch = new(settings, purpose)
    for name in STORE_FILES:
        source = settings.data_dir / name
        if not source.exists():
            continue
        with sqlite3.connect(source) as src, sqlite3.connect(scratch.data_dir / name) as dst:
            src.backup(dst)
    return scratch


def for_injected_clock(settings: Settings, purpose: str, *, copy: bool) -> Settings:
    """The store a command with an injected clock runs on: the current one if it is
    already a scratch store, else a scratch copy (``copy``), else refused."""
    if is_scratch(settings):
        return settings
    if copy:
        return copy_of(settings, purpose)
    where = (settings.database_url and "PostgreSQL") or str(settings.data_dir)
    raise LiveStore(
        f"an injected clock never runs on the live store ({where}): its events would be stamped with a time "
        "that is not now for everybody else. Add --copy to run on a scratch copy of the embedded store, "
        f"or point HOTLINE_DATA_DIR at a scratch store (a folder holding a {MARK} file)."
    )
