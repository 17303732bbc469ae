"""Analytics spells event names in SQL (``name = 'arrived'``); nothing else checks them.

* every event name in the analytics SQL (and in the ingest mapping) is an event of the
  stream whose table the statement reads, checked against the aggregates' event classes;
* every published event (each event class of each aggregate the relay publishes) is
  either mapped by analytics ingest (copied to a typed table) or listed as deliberately
  ignored;
* a stream awaited by the SQL before its aggregate exists stops being awaited once the
  aggregate does (its classes are then checked like any other).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import pytest

import infra.wiring  # noqa: F401  (every context, so every aggregate class is defined)
from analytics import charts, erlang, ingest, kpis, reports, schema
from consumers.kafka_contract import INTERNAL_STREAMS, public_aggregates
from domain.base import HotlineAggregate, event_name
from domain.events import EVENT_CLASSES, aggregates, events_of

ANALYTICS_MODULES: tuple[ModuleType, ...] = (schema, kpis, ingest, reports, charts, erlang)

# A column holding event names: ``name`` of the typed tables, and ``last_step`` of the
# request facts (the name of the request's last status-changing event).
_COLUMN = r"\b(?:\w+\.)?(?:name|last_step)\b"
_LITERAL = re.compile(r"'([^']*)'")
_COMPARED = re.compile(_COLUMN + r"\s*(?:=|<>|!=)\s*'([^']*)'", re.I)
_IN_LIST = re.compile(_COLUMN + r"\s+(?:NOT\s+)?IN\s*\(([^)]*)\)", re.I)
_LIKE = re.compile(_COLUMN + r"\s+(?:NOT\s+)?LIKE\s*'([^']*)'", re.I)
_CASE = re.compile(r"\bCASE\s+" + _COLUMN + r"(.*?)\bEND\b", re.I | re.S)
_WHEN = re.compile(r"\bWHEN\s+'([^']*)'", re.I)


def _names_in(sql: str) -> set[str]:
    """The event names (or LIKE patterns) a SQL text compares an event-name column with."""
    found = set(_COMPARED.findall(sql)) | set(_LIKE.findall(sql))
    for listed in _IN_LIST.findall(sql):
        found |= set(_LITERAL.findall(listed))
    for body in _CASE.findall(sql):
        found |= set(_WHEN.findall(body))
    return found


def _table_streams() -> dict[str, str]:
    """Which stream's events each analytics table or view holds (one stream each)."""
    streams = {table: aggregate.STREAM for aggregate, table in ingest.TYPED_TABLES.items()}
    streams.update({a.table: a.stream for a in ingest.AWAITING_AGGREGATE})
    for facts in schema.FACT_TABLES:
        streams[facts.name] = streams[facts.events]
    # The views and table macros over them (schema.VIEWS), named after what they read.
    streams.update(contacts="contact", contacts_between="contact", requests="request", requests_between="request")
    streams.update(requests_open_at="request", agent_states="agent", knowledge_searches="knowledge")
    return streams


def _sql_texts(module: ModuleType) -> list[str]:
    """The module's string literals, f-strings with their placeholders blanked, one SQL
    statement each (split at ``;``)."""
    texts, parts = [], set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.JoinedStr):
            texts.append("".join(str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values))
            parts |= {id(v) for v in node.values}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts:
            texts.append(node.value)
    return [statement for text in texts for statement in re.sub(r"--[^\n]*", "", text).split(";")]


def _claimed(sql: str) -> set[str]:
    """The streams whose tables a SQL statement reads."""
    streams = _table_streams()
    for facts in schema.FACT_TABLES:
        # A fact table's select list, or a piece of it (an f-string's text with its
        # placeholders, a fragment it includes): reads the fact table's events table.
        pieces = [re.escape(piece) for piece in sql.split("{}")]
        if sql in facts.aggregate or re.fullmatch(".*".join(pieces), facts.aggregate, re.S):
            return {streams[facts.events]}
    return {stream for table, stream in streams.items() if re.search(rf"\b{table}\b", sql)}


def names_used_by_analytics(extra_sql: tuple[str, ...] = ()) -> dict[str, set[str]]:
    """stream -> the event names analytics SQL reads from it. A statement that compares
    event names must read the tables of exactly one stream (else: fails, to be split)."""
    used: dict[str, set[str]] = defaultdict(set)
    unattributed = []
    statements = [(m.__name__, sql) for m in ANALYTICS_MODULES for sql in _sql_texts(m)]
    for where, sql in [*statements, *(("extra", sql) for sql in extra_sql)]:
        names = _names_in(sql)
        if not names:
            continue
        claimed = _claimed(sql)
        if len(claimed) != 1:
            unattributed.append((where, sorted(claimed), sql.strip()[:200]))
            continue
        used[claimed.pop()] |= names
    for aggregate, table in ingest.TYPED_TABLES.items():
        used[aggregate.STREAM] |= {event_name(cls) for cls, t in ingest.EVENT_TABLES.items() if t == table}
    for awaited in ingest.AWAITING_AGGREGATE:
        used[awaited.stream].add(awaited.name)
    assert not unattributed, f"SQL comparing event names must read the tables of one stream: {unattributed}"
    return used


def _domain_aggregates() -> list[type[HotlineAggregate]]:
    """Every aggregate class defined in the domain (whatever registered it or not)."""
    found, todo = [], list(HotlineAggregate.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("domain."):
            found.append(cls)
    return found


def _stream_names() -> dict[str, set[str]]:
    """stream -> the short names of its event classes (those the domain registers)."""
    names: dict[str, set[str]] = defaultdict(set)
    for aggregate in aggregates():
        names[aggregate.STREAM] |= {event_name(cls) for cls in events_of(aggregate)}
    return names


def _matches(pattern: str, names: set[str]) -> bool:
    """``pattern`` is a name, or a LIKE pattern (``callback%``) that some name matches."""
    if "%" not in pattern:
        return pattern in names
    regex = re.compile("".join({"%": ".*", "_": "."}.get(ch, re.escape(ch)) for ch in pattern) + r"\Z")
    return any(regex.match(n) for n in names)


def wrong_names(used: dict[str, set[str]]) -> dict[str, list[str]]:
    """stream -> the names read from it that are not events of it (nor awaited ones)."""
    known = _stream_names()
    awaited = {(a.stream, a.name) for a in ingest.AWAITING_AGGREGATE}
    wrong = {
        stream: sorted(p for p in patterns if (stream, p) not in awaited and not _matches(p, known.get(stream, set())))
        for stream, patterns in used.items()
    }
    return {stream: names for stream, names in wrong.items() if names}


def test_the_extractor_sees_the_analytics_sql() -> None:
    """Guards the check below: it finds the names analytics is known to read."""
    used = names_used_by_analytics()
    assert {"arrived", "queued", "answered", "abandoned", "wrapped_up", "callback%"} <= used["contact"]
    assert {"registered", "classified", "dispatched", "closed", "reopened", "rated", "resolved"} <= used["request"]
    assert {"logged_in", "state_changed", "logged_out", "reserved"} <= used["agent"]
    assert "search_performed" in used["knowledge"]
    assert sum(len(v) for v in used.values()) >= 60


def test_every_event_name_in_analytics_is_an_event_of_its_stream() -> None:
    wrong = wrong_names(names_used_by_analytics())
    assert not wrong, f"analytics reads events its streams do not have: {wrong}"


def test_a_misspelt_name_is_caught() -> None:
    """The check above fails on a name that is not an event of the stream it claims, and
    on a statement that mixes streams."""
    extra = (
        "SELECT count(*) FILTER (name = 'arived') FROM contact_events",
        "SELECT min(time) FILTER (e.name IN ('registered', 'arrived')) FROM request_events e",
        "SELECT CASE name WHEN 'logged_in' THEN 1 WHEN 'loged_out' THEN 0 END FROM agent_events",
        "SELECT count(*) FROM contacts WHERE name LIKE 'calback%'",
    )
    assert wrong_names(names_used_by_analytics(extra)) == {
        "contact": ["arived", "calback%"],
        "request": ["arrived"],
        "agent": ["loged_out"],
    }
    with pytest.raises(AssertionError, match="one stream"):
        names_used_by_analytics(("SELECT * FROM request_events JOIN contact_events USING (x) WHERE name = 'arrived'",))


def _aggregate(stream: str) -> type[HotlineAggregate]:
    return next(a for a in aggregates() if stream == a.STREAM)


def test_every_published_event_reaches_a_typed_table_or_its_stream_view() -> None:
    mapped = set(ingest.EVENT_TABLES)
    views = ingest.stream_views()
    in_views = {cls for stream, aggregate in public_aggregates().items() if f"{stream}_events" in views for cls in events_of(aggregate)}
    assert not mapped & in_views, f"both in a typed table and a view: {sorted(c.__qualname__ for c in mapped & in_views)}"
    published = {cls for aggregate in public_aggregates().values() for cls in events_of(aggregate)}
    missing = sorted(c.__qualname__ for c in published - mapped - in_views)
    assert not missing, f"published events analytics shows nowhere: {missing}"
    # Every ingest table mapping names the tables the SQL reads, one stream each.
    assert set(ingest.TYPED_TABLES.values()) <= set(schema.TABLE_NAMES)
    assert len(set(ingest.TYPED_TABLES.values())) == len(ingest.TYPED_TABLES)
    assert not set(views) & set(schema.TABLE_NAMES)


def test_stream_views_show_each_events_fields(tmp_path: Path) -> None:
    """The generated views exist in a real analytics file, with a column per event field,
    and show what was ingested (a work order's events in ``workorder_events``)."""
    conn = ingest.connect_writer(tmp_path / "analytics.duckdb")
    try:
        for view in ingest.stream_views():
            columns = {row[0] for row in conn.execute(f"DESCRIBE {view}").fetchall()}
            aggregate = _aggregate(view.removesuffix("_events"))
            for cls in events_of(aggregate):
                for field in dataclasses.fields(cls):
                    if field.name not in {"originator_id", "originator_version", "timestamp", "originator_topic", "meta", "personal"}:
                        assert field.name in columns or f"data_{field.name}" in columns, (view, field.name)
        conn.execute(
            "INSERT INTO events (event_id, position, type, stream, name, aggregate_id, version, time, data) "
            "VALUES ('w/1', 1, 'hotline.workorder.created.v1', 'workorder', 'created', 'w', 1, now(), "
            '\'{"problem_code": "pothole", "department_id": "transport"}\')'
        )
        assert conn.execute("SELECT name, problem_code, department_id FROM workorder_events").fetchall() == [
            ("created", "pothole", "transport")
        ]
    finally:
        conn.close()


def test_the_ingest_mapping_is_by_class_and_matches_the_published_names() -> None:
    for cls, table in ingest.EVENT_TABLES.items():
        type_name = next(t for t, c in EVENT_CLASSES.items() if c is cls)
        stream, name, typed = ingest.event_types()[type_name]
        assert (name, typed) == (event_name(cls), table)
        assert stream == next(a.STREAM for a, t in ingest.TYPED_TABLES.items() if t == table)


def test_awaited_streams_have_no_aggregate_yet() -> None:
    """Names listed as awaiting their aggregate are checked against classes as soon as
    those exist: then the entry must go and the classes be mapped or ignored."""
    defined = {a.STREAM for a in _domain_aggregates()}
    for awaited in ingest.AWAITING_AGGREGATE:
        assert awaited.type not in EVENT_CLASSES, f"{awaited.type} has its class now: map it in TYPED_TABLES"
        assert awaited.stream not in defined, f"the {awaited.stream} stream has its aggregate now: map its events, drop {awaited}"
        assert awaited.table in schema.TABLE_NAMES


def test_the_event_registry_knows_every_domain_aggregate() -> None:
    """An aggregate registers itself by being defined; every one in domain/ is known once
    the contexts are wired, and the Kafka contract publishes all but the internal ones."""
    missing = sorted(a.__qualname__ for a in _domain_aggregates() if a not in aggregates())
    assert not missing, f"aggregates defined but not registered (is their context in infra/wiring.py?): {missing}"
    assert set(public_aggregates().values()) == {a for a in aggregates() if a.STREAM not in INTERNAL_STREAMS}
    assert {a.STREAM for a in aggregates() if not a.PUBLISHED} == INTERNAL_STREAMS


@pytest.mark.parametrize("stream", sorted({a.STREAM for a in aggregates()} - INTERNAL_STREAMS))
def test_each_public_stream_has_one_place(stream: str) -> None:
    aggregate = _aggregate(stream)
    assert (aggregate in ingest.TYPED_TABLES) != (f"{stream}_events" in ingest.stream_views()), stream
