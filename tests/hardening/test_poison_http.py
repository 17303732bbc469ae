"""Poison in the batch, over HTTP (issue 18): honest clients and poisonous ones together
against the real server (``hotline serve``) on SQLite and PostgreSQL. Every poisonous
request is a 4xx with the API's JSON error; not one honest request fails, although their
commands share group-commit batches with the poison that reaches the event store."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hardening.bounds_server import Server, hotline_server

HONEST_CLIENTS, POISONOUS_CLIENTS, SECONDS = 16, 6, 3.0
HONEST_EACH = 3  # at least, however slow the machine: then until SECONDS have passed
BODY: dict[str, Any] = {
    "kind": "action",
    "subtype": "complaint",
    "channel": "web",
    "description": "Deep pothole in front of number 12",
    "contact": {"name": "Mario Rossi", "phone": "+39 06 1234 5678"},
    "problem_code": "pothole",
    "collected": {"size": "large"},
}
CALLBACK = {"queue_id": "voice", "phone": "+39 06 1234 5678", "due_at": "2026-11-30T09:00:00Z"}


def _deep(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels):
        node["n"] = {}
        node = node["n"]
    return root


# (path, raw JSON body): what the attacker sent, and a lone surrogate in a text
# field, which passes validation and is refused only when its batch is encoded.
POISON: list[tuple[str, bytes]] = [
    ("/requests", json.dumps({**BODY, "collected": {"size": 10**31}}).encode()),
    ("/requests", json.dumps({**BODY, "collected": {"size": _deep(300)}}).encode()),
    ("/requests", json.dumps({**BODY, "collected": _deep(300)}).encode()),
    ("/requests", json.dumps({**BODY, "problem_code": "streetlight-out", "collected": {"pole_number": 10**31}}).encode()),
    ("/requests", json.dumps({**BODY, "description": "broken \ud800 lamp"}).encode()),  # \\ud800 in the JSON
    ("/callbacks", json.dumps({**CALLBACK, "retry_seconds": 10**31}).encode()),
    ("/queues", json.dumps({"queue_id": "poison", "sl_seconds": 10**31}).encode()),
]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_honest_clients_never_fail_beside_poison(store: str, tmp_path: Path) -> None:
    with hotline_server(store, tmp_path) as server:
        outcome = _run(server)
    print(
        f"\n{store}: honest {outcome['honest_ok']} committed, {len(outcome['honest_failed'])} failed; "
        f"poison {outcome['poison_refused']} refused, {len(outcome['poison_wrong'])} answered otherwise"
    )
    assert outcome["honest_failed"] == [] and outcome["honest_ok"] >= HONEST_CLIENTS * HONEST_EACH
    assert outcome["poison_wrong"] == [] and outcome["poison_refused"] >= len(POISON)
    assert outcome["kinds"] == set(range(len(POISON)))  # every kind of poison was sent and refused


def _run(server: Server) -> dict[str, Any]:
    stop = [0.0]
    # The clock starts when every client is ready (set before any of them goes on).
    ready = threading.Barrier(HONEST_CLIENTS + POISONOUS_CLIENTS, action=lambda: stop.__setitem__(0, time.monotonic() + SECONDS))
    lock = threading.Lock()
    out: dict[str, Any] = {"honest_ok": 0, "honest_failed": [], "poison_refused": 0, "poison_wrong": [], "kinds": set()}
    headers = {**server.auth, "Content-Type": "application/json"}

    def honest() -> None:
        with httpx.Client(base_url=server.base, headers=headers, timeout=60) as client:
            ready.wait()
            done = 0
            while done < HONEST_EACH or time.monotonic() < stop[0]:
                done += 1
                try:
                    r = client.post("/requests", json=BODY)
                    ok = r.status_code == 201
                    failure = None if ok else f"{r.status_code} {r.text[:200]}"
                except httpx.HTTPError as exc:
                    failure = repr(exc)
                with lock:
                    if failure is None:
                        out["honest_ok"] += 1
                    else:
                        out["honest_failed"].append(failure)

    def poisonous(n: int) -> None:
        i = n
        with httpx.Client(base_url=server.base, headers=headers, timeout=60) as client:
            ready.wait()
            while i - n < len(POISON) or time.monotonic() < stop[0]:  # every kind at least once
                kind = i % len(POISON)
                path, body = POISON[kind]
                i += 1
                try:
                    r = client.post(path, content=body)
                    error = r.json().get("error") if r.headers.get("content-type", "").startswith("application/json") else None
                    right = 400 <= r.status_code < 500 and isinstance(error, dict) and error.get("status") == r.status_code
                    wrong = None if right else f"{path} poison {kind}: {r.status_code} {r.text[:200]}"
                except (httpx.HTTPError, ValueError) as exc:
                    wrong = f"{path} poison {kind}: {exc!r}"
                with lock:
                    if wrong is None:
                        out["poison_refused"] += 1
                        out["kinds"].add(kind)
                    else:
                        out["poison_wrong"].append(wrong)

    threads = [threading.Thread(target=honest) for _ in range(HONEST_CLIENTS)]
    threads += [threading.Thread(target=poisonous, args=(n,)) for n in range(POISONOUS_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out
