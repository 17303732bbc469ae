"""What recording metrics costs the write path: the README's domain-layer benchmark
(``bench_commands.py --layer domain --store postgres --projections off --clients 32``, one
process) run alternately with the command and group-commit metrics recorded, as always,
and with their recording replaced by no-ops in this process.

    python tests/bench/bench_metrics_cost.py --rounds 3 --seconds 8

Events/s moves with the machine's load; CPU µs per event (this process, and PostgreSQL's
backends) is the steadier figure, so both are printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import infra.bus
import infra.group_commit
from infra.settings import Settings
from tests.bench.bench_commands import bench_domain
from tests.conftest import create_pg_database, drop_pg_database


class _Off:
    def observe(self, *_: Any) -> None:
        pass


def _metrics(on: bool) -> None:
    import infra.metrics as m

    infra.bus.observe_command = m.observe_command if on else (lambda *_: None)  # type: ignore[assignment]
    infra.group_commit.GROUP_COMMIT_BATCH = m.GROUP_COMMIT_BATCH if on else _Off()  # type: ignore[assignment]
    infra.group_commit.GROUP_COMMIT_SECONDS = m.GROUP_COMMIT_SECONDS if on else _Off()  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            _metrics(mode == "on")
            url = create_pg_database("bench")
            try:
                settings = Settings(
                    data_dir=Path(tempfile.mkdtemp(prefix="hotline-bench-")), database_url=url, pg_pool_size=40, inprocess_projections=False
                )
                out = bench_domain(settings, args.clients, args.seconds, 1)
            finally:
                drop_pg_database(url)
            out.pop("latencies", None)
            row = {
                "metrics": mode,
                **{
                    k: out.get(k) for k in ("events_per_s", "commands_per_s", "p50_ms", "p99_ms", "cpu_us_per_event", "pg_cpu_us_per_event")
                },
            }
            results[mode].append(row)
            print(json.dumps(row), flush=True)
    for mode, rows in results.items():
        eps = [r["events_per_s"] for r in rows]
        cpu = [r["cpu_us_per_event"] for r in rows]
        print(f"metrics {mode}: events/s {eps} (median {statistics.median(eps)}), CPU µs/event {cpu} (median {statistics.median(cpu)})")


if __name__ == "__main__":
    main()
