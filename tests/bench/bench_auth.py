"""What signing in costs the command path: HTTP commands with a bearer token (verified
on every request) against the same commands through a trusted gateway (no token),
alternated in one run so the machine's drift hits both alike. Goal: ≤ 5% at p50 with 32
clients.

    .venv/bin/python tests/bench/bench_auth.py [--clients 32] [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from infra.settings import Settings
from tests.bench.bench_commands import bench_http


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    p50: dict[str, list[float]] = {"gateway": [], "token": []}
    rate: dict[str, list[float]] = {"gateway": [], "token": []}
    for _ in range(args.rounds):
        for auth in ("gateway", "token"):
            settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="hotline-bench-auth-")))
            out = bench_http(settings, args.clients, args.seconds, auth=auth)
            p50[auth].append(out["p50_ms"])
            rate[auth].append(out["commands_per_s"])
            print(json.dumps({"auth": auth, "clients": args.clients, "p50_ms": out["p50_ms"], "commands_per_s": out["commands_per_s"]}))
    base, signed = statistics.median(p50["gateway"]), statistics.median(p50["token"])
    print("\n| clients | p50 no token (gateway) | p50 bearer JWT | slower by | commands/s gateway | commands/s token |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {args.clients} | {base:.2f} ms | {signed:.2f} ms | {100 * (signed - base) / base:+.1f}% "
        f"| {statistics.median(rate['gateway']):.0f} | {statistics.median(rate['token']):.0f} |"
    )


if __name__ == "__main__":
    main()
