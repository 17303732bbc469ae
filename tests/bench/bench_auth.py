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
import time
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
    # Each round's pair ran back to back: the median of the pairs' ratios drifts least.
    paired = statistics.median(t / g for g, t in zip(p50["gateway"], p50["token"], strict=True))
    verify = verification_cost()
    slower, slower_paired = 100 * (signed - base) / base, 100 * (paired - 1)
    rate_g, rate_t = statistics.median(rate["gateway"]), statistics.median(rate["token"])
    print("\n| clients | rounds | p50 gateway | p50 bearer JWT | slower (medians) | slower (paired) | cmd/s gateway | cmd/s token |")
    print("|---|---|---|---|---|---|---|---|")
    cells = [
        args.clients,
        args.rounds,
        f"{base:.2f} ms",
        f"{signed:.2f} ms",
        f"{slower:+.1f}%",
        f"{slower_paired:+.1f}%",
        f"{rate_g:.0f}",
        f"{rate_t:.0f}",
    ]
    print("| " + " | ".join(str(c) for c in cells) + " |")
    first, cached = verify["first_us"], verify["cached_us"]
    print(f"\ntoken verification per request: first sight {first:.0f} µs (RS256 signature), then {cached:.1f} µs (cached)")


def verification_cost(n: int = 2000) -> dict[str, float]:
    """What verifying a token costs, apart from everything else a request does."""
    from infra.identity.service import Identity
    from infra.runtime import Hotline
    from tests.auth import token_for

    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="hotline-bench-verify-")))
    hotline = Hotline.start(settings)
    try:
        identity: Identity = hotline.identity
        tokens = [token_for(settings, f"agent-{i}", "agent") for i in range(n)]
        started = time.perf_counter()
        for token in tokens:
            identity.verify_token(token)
        first = (time.perf_counter() - started) / n
        started = time.perf_counter()
        for token in tokens:
            identity.verify_token(token)
        cached = (time.perf_counter() - started) / n
    finally:
        hotline.close()
    return {"first_us": first * 1e6, "cached_us": cached * 1e6}


if __name__ == "__main__":
    main()
