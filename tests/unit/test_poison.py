"""One bad command never hurts another: a command whose events cannot be stored (an
integer beyond 64 bits, nesting deeper than JSON allows, a lone surrogate) fails alone
with a 422, while the honest commands committed in the same group-commit batch succeed."""

from __future__ import annotations

import threading
import time
from typing import Any

from domain.base import Actor, InvalidCommand
from domain.requests import commands as c
from infra.runtime import Hotline

AGENT = Actor("op", "agent")


def _deep(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels):
        node["n"] = {}
        node = node["n"]
    return root


POISON: list[dict[str, Any]] = [{"size": 10**31}, {"size": _deep(300)}, {"size": "\ud800"}]


def _register(hotline: Hotline, i: int, collected: dict[str, Any] | None) -> dict[str, Any]:
    cmd = c.RegisterRequest(
        kind="action",
        subtype="complaint",
        channel="phone",
        description=f"Pothole {i}",
        contact=c.Contact(name=f"Citizen {i}", phone=f"+39 06 {10_000_000 + i}"),
        problem_code="pothole",
        collected=collected,
    )
    return hotline.bus.execute(cmd, AGENT).result


def test_poison_fails_alone_and_honest_neighbours_commit(hotline: Hotline) -> None:
    honest_ok, honest_failed, poison_refused, poison_stored = [0], [], [0], []
    stop = time.monotonic() + 3
    lock = threading.Lock()

    def honest(n: int) -> None:
        i = 0
        while time.monotonic() < stop:
            i += 1
            try:
                _register(hotline, n * 10_000 + i, {"size": "large"})
                with lock:
                    honest_ok[0] += 1
            except Exception as exc:
                honest_failed.append(repr(exc))

    def poisonous(n: int) -> None:
        i = 0
        while time.monotonic() < stop:
            i += 1
            try:
                _register(hotline, 900_000 + n * 10_000 + i, POISON[i % len(POISON)])
                poison_stored.append(i)
            except InvalidCommand as exc:
                # Refused by the problem code's field definitions (a number too large, an
                # object where a choice is due) or, what passes them, by the transcoder.
                assert exc.code in ("invalid_collected", "unstorable_value"), exc
                with lock:
                    poison_refused[0] += 1

    threads = [threading.Thread(target=honest, args=(n,)) for n in range(8)]
    threads += [threading.Thread(target=poisonous, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"\nhonest committed {honest_ok[0]}, failed {len(honest_failed)}; poison refused {poison_refused[0]}")
    assert honest_failed == [] and honest_ok[0] > 20
    assert poison_stored == [] and poison_refused[0] > 3
    assert hotline.committer.batches < hotline.committer.commands  # the commands did share batches
