"""Run the ``hotline`` CLI with every Prometheus recording replaced by a no-op, for the
benchmarks that compare a process with metrics against the same process without them.

    python -m tests.bench.without_metrics relay
    python -m tests.bench.without_metrics consume projections

:func:`switch_off` patches prometheus_client's metric classes, so it reaches every
metric of the process (the command bus's, the group committer's, the relay's, the
consumers' …) without the product carrying a switch only benchmarks would use. The
``/metrics`` endpoint still answers, with the series never moving.
"""

from __future__ import annotations

import sys
from typing import Any


def _nothing(*_: Any, **__: Any) -> None:
    return None


def switch_off() -> None:
    from prometheus_client import metrics

    for cls, names in (
        (metrics.Counter, ("inc",)),
        (metrics.Gauge, ("inc", "dec", "set")),
        (metrics.Histogram, ("observe",)),
        (metrics.Summary, ("observe",)),
    ):
        for name in names:
            setattr(cls, name, _nothing)


if __name__ == "__main__":
    switch_off()
    from api.cli import main

    sys.argv = ["hotline", *sys.argv[1:]]
    main()
