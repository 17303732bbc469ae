"""Run the ``hotline`` CLI with every Prometheus recording replaced by a no-op, for the
benchmarks that compare a process with metrics against the same process without them.

    python -m tests.bench.without_metrics relay
    python -m tests.bench.without_metrics consume projections
    python -m tests.bench.without_metrics --switch FILE relay   # on or off as FILE says, live

:func:`switch_off` patches prometheus_client's metric classes, so it reaches every
metric of the process (the command bus's, the group committer's, the relay's, the
consumers' …) without the product carrying a switch only benchmarks would use. The
``/metrics`` endpoint still answers, with the series never moving. :func:`follow` turns
recording off and on while the process runs, as a file says (``bench_kafka.py lag
--metrics switchback``: the same processes, metrics on and off in short blocks).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any


def _nothing(*_: Any, **__: Any) -> None:
    return None


def _recordings() -> list[tuple[type, str]]:
    from prometheus_client import metrics

    return [
        (cls, name)
        for cls, names in (
            (metrics.Counter, ("inc",)),
            (metrics.Gauge, ("inc", "dec", "set")),
            (metrics.Histogram, ("observe",)),
            (metrics.Summary, ("observe",)),
        )
        for name in names
    ]


_ORIGINAL: dict[tuple[type, str], Any] = {}


def switch_off() -> None:
    for cls, name in _recordings():
        _ORIGINAL.setdefault((cls, name), cls.__dict__[name])
        setattr(cls, name, _nothing)


def switch_on() -> None:
    """Undoes :func:`switch_off` (a class attribute set is atomic: a recording in flight
    on another thread takes one or the other)."""
    for (cls, name), method in _ORIGINAL.items():
        setattr(cls, name, method)


def follow(path: Path, every: float = 0.01) -> threading.Thread:
    """Keeps recording on or off as ``path`` says ("on" / "off"), checked every ``every``
    seconds on a daemon thread, from now on."""

    def read() -> str:
        try:
            return path.read_text().strip()
        except OSError:
            return "on"

    def run(state: str) -> None:
        while True:
            wanted = read()
            if wanted != state:
                (switch_off if wanted == "off" else switch_on)()
                state = wanted
            stop.wait(every)

    stop = threading.Event()  # never set: the thread lives as long as the process
    state = read()
    if state == "off":
        switch_off()
    thread = threading.Thread(target=run, args=(state,), name="metrics-switch", daemon=True)
    thread.start()
    return thread


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv[:1] == ["--switch"]:
        follow(Path(argv[1]))
        argv = argv[2:]
    else:
        switch_off()
    from api.cli import main

    sys.argv = ["hotline", *argv]
    main()
