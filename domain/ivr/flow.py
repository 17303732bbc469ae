"""An IVR flow document: checked against its JSON Schema, then for what a schema cannot say.

The schema (``telephony_adapter/ivr/flow.schema.json``, the contract of the document the
PBX side runs) says the shape; :func:`check_flow` adds the rules between parts: every
node named exists, prompts given per language name every language of the flow, the
automatic nodes (``say``, ``hours``) never loop without the caller keying something, the
limit node ends the call, and (when the publisher passes the queues that exist) every
queue a handover or callback node names is a defined voice queue. A problem is an :class:`InvalidCommand` naming where it is
(``field``: a JSON pointer-like path such as ``nodes/main/options/9/next``), which the
API answers with 422.

The schema is read once, at import, from the package data of the engine: it is a
constant of the code, not input.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from domain.base import InvalidCommand

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "telephony_adapter" / "ivr" / "flow.schema.json"
# Node types that move on at once, without input: a cycle of them would never end.
AUTOMATIC = ("say", "hours")
ENDING = ("handover", "hangup")
TERMINAL_TYPES = ("handover", "callback", "hangup")
DEFAULT_LIMITS = {"max_steps": 60, "max_seconds": 900}


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text("utf-8"))
    return loaded


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema())
    cls.check_schema(schema())
    return cls(schema())  # type: ignore[no-any-return]


def flow_hash(document: dict[str, Any]) -> str:
    """SHA-256 of the document's canonical JSON (sorted keys, no spaces, UTF-8): the same
    flow hashes alike however it was formatted."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _path(parts: Any) -> str:
    return "/".join(str(p) for p in parts) or "(document)"


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """The most specific of nested errors (an if/then's inner error says what is wrong)."""
    best = error
    while best.context:
        best = max(best.context, key=lambda e: len(e.absolute_path))
    return best


def check_schema(document: Any) -> None:
    """Refuses a document that does not match the schema, naming the first problem."""
    errors = sorted(_validator().iter_errors(document), key=lambda e: (len(e.absolute_path), _path(e.absolute_path)))
    if not errors:
        return
    error = _deepest(jsonschema.exceptions.best_match(errors))
    where = _path(error.absolute_path)
    raise InvalidCommand(
        f"the flow does not match its schema at {where}: {error.message}",
        field=f"document/{where}" if error.absolute_path else "document",
        code="ivr_flow_invalid",
        schema_path=_path(error.absolute_schema_path),
        problems=len(errors),
    )


def _fail(message: str, where: str) -> InvalidCommand:
    return InvalidCommand(f"{message} (at {where})", field=f"document/{where}", code="ivr_flow_invalid")


def _targets(node_id: str, node: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, node id) of every node this one can lead to."""
    found: list[tuple[str, str]] = []
    base = f"nodes/{node_id}"
    for key in ("next", "open", "closed"):
        if key in node:
            found.append((f"{base}/{key}", node[key]))
    for key in ("on_fail", "found", "unavailable", "saved", "failed", "no_number"):
        if key in node:
            found.append((f"{base}/{key}/next", node[key]["next"]))
    for digit, option in (node.get("options") or {}).items():
        found.append((f"{base}/options/{digit}/next", option["next"]))
    return found


def _prompts(node_id: str, node: dict[str, Any]) -> list[tuple[str, Any]]:
    base = f"nodes/{node_id}"
    found = [(f"{base}/{k}", node[k]) for k in ("prompt", "invalid_prompt", "timeout_prompt", "too_short_prompt", "unknown") if k in node]
    for key in ("on_fail", "found", "unavailable", "saved", "failed", "no_number"):
        if key in node and "prompt" in node[key]:
            found.append((f"{base}/{key}/prompt", node[key]["prompt"]))
    return found


def queues_named(document: Any) -> list[tuple[str, str]]:
    """(node id, queue id) of every handover and callback node; tolerant of a document
    that does not match the schema (the publisher asks before :func:`check_flow`)."""
    nodes = document.get("nodes") if isinstance(document, dict) else None
    if not isinstance(nodes, dict):
        return []
    return [
        (node_id, node["queue"])
        for node_id, node in nodes.items()
        if isinstance(node, dict) and node.get("type") in ("handover", "callback") and isinstance(node.get("queue"), str)
    ]


def check_flow(document: Any, queues: Mapping[str, str] | None = None) -> None:
    """The schema, then the rules between the document's parts (see the module).

    ``queues``: the defined queues among those the flow names, id → media (``voice``,
    ``chat`` …); when given, a handover or callback to a queue not in it, or not a voice
    queue, is refused (a caller handed to it would be hung up). None: not checked (the
    aggregate's own re-check, which cannot read the queues)."""
    check_schema(document)
    nodes: dict[str, dict[str, Any]] = document["nodes"]
    languages = set(document["languages"])
    if document["default_language"] not in languages:
        raise _fail(f"default language {document['default_language']} is not one of the flow's languages", "default_language")
    for number, language in (document.get("dialled_languages") or {}).items():
        if language not in languages:
            raise _fail(f"language {language} of number {number} is not one of the flow's languages", f"dialled_languages/{number}")
    for key in ("start", "on_limit"):
        if key in document and document[key] not in nodes:
            raise _fail(f"{key} names no node: {document[key]!r}", key)
    if "on_limit" in document and nodes[document["on_limit"]]["type"] not in ENDING:
        raise _fail("on_limit must name a handover or hangup node (the call ends there)", "on_limit")
    for node_id, node in nodes.items():
        for where, target in _targets(node_id, node):
            if target not in nodes:
                raise _fail(f"no node {target!r}", where)
        for where, prompt in _prompts(node_id, node):
            if isinstance(prompt, dict) and set(prompt) != languages:
                missing = sorted(languages - set(prompt))
                extra = sorted(set(prompt) - languages)
                what = f"lacks {', '.join(missing)}" if missing else f"has languages the flow does not speak: {', '.join(extra)}"
                raise _fail(f"the prompt {what}", where)
        for digit, option in (node.get("options") or {}).items():
            if "language" in option and option["language"] not in languages:
                raise _fail(
                    f"language {option['language']} is not one of the flow's languages", f"nodes/{node_id}/options/{digit}/language"
                )
        if node["type"] == "lookup" and node["min_digits"] > node["max_digits"]:
            raise _fail("min_digits is more than max_digits", f"nodes/{node_id}/min_digits")
        if queues is not None and node["type"] in ("handover", "callback"):
            _check_queue(node_id, node, queues)
    _check_no_silent_loop(nodes)


def _check_queue(node_id: str, node: dict[str, Any], queues: Mapping[str, str]) -> None:
    queue_id, where = node["queue"], f"nodes/{node_id}/queue"
    what = "hands callers over to" if node["type"] == "handover" else "schedules callbacks in"
    if queue_id not in queues:
        raise InvalidCommand(
            f"node {node_id} {what} queue {queue_id!r}, which is not defined (at {where})",
            field=f"document/{where}",
            code="ivr_flow_invalid",
            node=node_id,
            queue=queue_id,
        )
    if queues[queue_id] != "voice":
        raise InvalidCommand(
            f"node {node_id} {what} queue {queue_id!r}, a {queues[queue_id]} queue: a voice menu needs a voice queue (at {where})",
            field=f"document/{where}",
            code="ivr_flow_invalid",
            node=node_id,
            queue=queue_id,
        )


def _check_no_silent_loop(nodes: dict[str, dict[str, Any]]) -> None:
    """A cycle of say/hours nodes would run forever without the caller: refused."""
    automatic = {nid: [t for _, t in _targets(nid, n)] for nid, n in nodes.items() if n["type"] in AUTOMATIC}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(nid: str, trail: list[str]) -> None:
        state[nid] = 1
        for target in automatic[nid]:
            if target not in automatic:
                continue
            if state.get(target) == 1:
                loop = [*trail[trail.index(target) :], target] if target in trail else [nid, target]
                raise _fail(f"the nodes {' → '.join(loop)} loop without waiting for the caller", f"nodes/{target}")
            if state.get(target) is None:
                visit(target, [*trail, target])
        state[nid] = 2

    for nid in automatic:
        if state.get(nid) is None:
            visit(nid, [nid])


def limits(document: dict[str, Any]) -> dict[str, int]:
    return {**DEFAULT_LIMITS, **(document.get("limits") or {})}
