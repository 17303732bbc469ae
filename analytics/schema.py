"""The DuckDB schema analysts query.

Layers:

* ``events``: every event as it was published (type, stream, aggregate, version, global
  position, business time in UTC, data as JSON without the citizen's personal fields,
  actor and correlation). The audit trail for analysts, and the dedupe key (``event_id``).
* typed event tables, one per stream the KPIs need (``contact_events``, ``request_events``,
  ``agent_events``, ``knowledge_events``): the fields extracted once at ingest, so KPI
  queries never parse JSON.
* fact tables ``contact_facts`` / ``request_facts``: one row per contact / request, the
  aggregate of all its events (``_CONTACT_AGG`` / ``_REQUEST_AGG``), kept current by ingest
  in the same transaction as the events (:func:`refresh_facts`: only the contacts and
  requests a batch touched are recomputed). KPIs aggregate one row per contact instead
  of re-aggregating ten million events on every query.
* fact views (one row per contact / request / agent state interval) over them, and table
  macros ``contacts_between(a, b)`` / ``requests_between(a, b)`` for what started in a
  window (facts are appended in log order, so the time filter prunes by zone maps and a
  day out of a year reads about a day of rows).

Times are ``TIMESTAMP`` in UTC. Personal data (name, phone, email) never reaches DuckDB:
ingest keeps only ``citizen_key``, the citizen id or an MD5 of the phone number / email.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

# 3: knowledge_events carries the search's channel and trigger and its outcomes' article,
# revision and rank (added to an older file by :func:`create_schema`, filled from ``events``).
# 5: agent_events carries ``agent_code``, the agent's id as contacts name it (``agent_id``
# there); its ``agent_id`` is the agent's stream id, a UUID derived from that code.
# 6: request facts carry ``assigned_department_id``, the department a request is dispatched
# to now (the backlog's): the facts of an older file are computed again from its events.
SCHEMA_VERSION = 6

# Agent states that count as "not staffed" for occupancy (breaks and other aux work).
AUX_STATES = ("logged_out", "offline", "break", "away", "not_ready", "aux", "lunch", "training", "meeting", "paused")
# Agent states where the agent is working a contact.
BUSY_STATES = (
    "busy",
    "on_call",
    "talking",
    "in_call",
    "on_hold",
    "held",
    "ringing",
    "reserved",
    "wrap_up",
    "after_call_work",
    "wrapping_up",
)

TABLES = """
CREATE TABLE IF NOT EXISTS schema_info (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS ingest_positions (
    source VARCHAR NOT NULL,      -- 'store' (the event store log) or a Kafka topic
    partition INTEGER NOT NULL,   -- -1 for the whole log, else the Kafka partition
    position BIGINT NOT NULL,     -- the last applied global position / Kafka offset
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (source, partition)
);
CREATE TABLE IF NOT EXISTS events (
    event_id VARCHAR NOT NULL,    -- aggregate_id/version: the same event redelivered has the same id
    position BIGINT,
    type VARCHAR NOT NULL,
    stream VARCHAR NOT NULL,
    name VARCHAR NOT NULL,        -- 'arrived', 'registered' …
    aggregate_id VARCHAR NOT NULL,
    version BIGINT NOT NULL,
    time TIMESTAMP NOT NULL,
    data JSON,
    actor_id VARCHAR,
    actor_role VARCHAR,
    correlation_id VARCHAR,
    causation_id VARCHAR,
    ingested_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS contact_events (
    event_id VARCHAR NOT NULL,
    position BIGINT,
    contact_id VARCHAR NOT NULL,
    version BIGINT NOT NULL,
    time TIMESTAMP NOT NULL,
    name VARCHAR NOT NULL,
    channel VARCHAR,
    direction VARCHAR,
    language VARCHAR,
    priority INTEGER,
    queue_id VARCHAR,
    to_queue_id VARCHAR,
    agent_id VARCHAR,
    to_agent_id VARCHAR,
    mode VARCHAR,
    wait_seconds DOUBLE,
    talk_seconds DOUBLE,
    hold_seconds DOUBLE,
    wrap_seconds DOUBLE,
    disposition VARCHAR,
    request_id VARCHAR,
    citizen_key VARCHAR
);
CREATE TABLE IF NOT EXISTS request_events (
    event_id VARCHAR NOT NULL,
    position BIGINT,
    request_id VARCHAR NOT NULL,
    version BIGINT NOT NULL,
    time TIMESTAMP NOT NULL,
    name VARCHAR NOT NULL,
    reference VARCHAR,
    kind VARCHAR,
    subtype VARCHAR,
    channel VARCHAR,
    urgency VARCHAR,
    citizen_id VARCHAR,
    language VARCHAR,
    contact_id VARCHAR,
    problem_code VARCHAR,
    category_id VARCHAR,
    provider_id VARCHAR,
    department_id VARCHAR,
    due_at TIMESTAMP,
    on_time BOOLEAN,
    score INTEGER,
    status VARCHAR
);
CREATE TABLE IF NOT EXISTS agent_events (
    event_id VARCHAR NOT NULL,
    position BIGINT,
    agent_id VARCHAR NOT NULL,    -- the agent's stream (aggregate) id
    version BIGINT NOT NULL,
    time TIMESTAMP NOT NULL,
    name VARCHAR NOT NULL,
    state VARCHAR,
    reason VARCHAR,
    -- schema version 5
    agent_code VARCHAR            -- the agent's own id (login code): contacts' agent_id
);
CREATE TABLE IF NOT EXISTS knowledge_events (
    event_id VARCHAR NOT NULL,
    position BIGINT,
    aggregate_id VARCHAR NOT NULL,
    time TIMESTAMP NOT NULL,
    name VARCHAR NOT NULL,
    query VARCHAR,
    language VARCHAR,
    results INTEGER,
    answered BOOLEAN,             -- search_performed: something was shown (not: it answered)
    -- schema version 3 (appended: an older file gets them by ALTER TABLE, in this order)
    version BIGINT,
    channel VARCHAR,              -- agent | self_service | ivr
    trigger VARCHAR,              -- search | suggestion
    article_id VARCHAR,           -- article_opened, used_to_answer, deflected (may be null)
    revision INTEGER,
    rank INTEGER,
    contact_id VARCHAR,
    request_id VARCHAR
);
"""

_CONTACT_AGG = """
    contact_id,
    min(time) FILTER (name = 'arrived') AS arrived_at,
    coalesce(min(time) FILTER (name = 'arrived'), min(time)) AS started_at,
    arg_min(channel, version) FILTER (name = 'arrived') AS channel,
    coalesce(arg_min(direction, version) FILTER (name = 'arrived'), 'inbound') AS direction,
    arg_min(language, version) FILTER (name = 'arrived') AS language,
    arg_min(priority, version) FILTER (name = 'arrived') AS priority,
    arg_min(citizen_key, version) FILTER (name = 'arrived') AS citizen_key,
    arg_min(queue_id, version) FILTER (name IN ('arrived', 'queued') AND queue_id IS NOT NULL) AS queue_id,
    min(time) FILTER (name = 'queued') AS queued_at,
    count(*) FILTER (name IN ('queued', 'answered', 'abandoned')) > 0 AS offered,
    count(*) FILTER (name = 'offered') AS offers,
    count(*) FILTER (name = 'offer_timed_out') AS offers_timed_out,
    min(time) FILTER (name IN ('answered', 'callback_connected')) AS answered_at,
    arg_min(agent_id, version) FILTER (name IN ('answered', 'callback_connected')) AS agent_id,
    arg_min(queue_id, version) FILTER (name IN ('answered', 'callback_connected')) AS answered_queue_id,
    min(time) FILTER (name IN ('answered', 'callback_connected')) IS NOT NULL AS answered,
    min(time) FILTER (name = 'abandoned') AS abandoned_at,
    min(time) FILTER (name IN ('answered', 'callback_connected')) IS NULL
        AND min(time) FILTER (name = 'abandoned') IS NOT NULL AS abandoned,
    coalesce(
        arg_min(wait_seconds, version) FILTER (name IN ('answered', 'callback_connected')),
        epoch(min(time) FILTER (name IN ('answered', 'callback_connected'))
              - coalesce(min(time) FILTER (name = 'queued'), min(time) FILTER (name = 'arrived'))),
        arg_min(wait_seconds, version) FILTER (name = 'abandoned'),
        epoch(min(time) FILTER (name = 'abandoned')
              - coalesce(min(time) FILTER (name = 'queued'), min(time) FILTER (name = 'arrived')))
    ) AS wait_seconds,
    coalesce(sum(talk_seconds) FILTER (name IN ('ended', 'transferred')), 0) AS talk_seconds,
    coalesce(sum(hold_seconds) FILTER (name = 'ended'), 0) AS hold_seconds,
    coalesce(sum(wrap_seconds) FILTER (name = 'wrapped_up'), 0) AS wrap_seconds,
    coalesce(sum(talk_seconds) FILTER (name IN ('ended', 'transferred')), 0)
        + coalesce(sum(hold_seconds) FILTER (name = 'ended'), 0)
        + coalesce(sum(wrap_seconds) FILTER (name = 'wrapped_up'), 0) AS handle_seconds,
    count(*) FILTER (name = 'held') AS holds,
    count(*) FILTER (name = 'transferred') AS transfers,
    count(*) FILTER (name = 'overflowed') AS overflows,
    max(time) FILTER (name = 'ended') AS ended_at,
    max(time) FILTER (name = 'wrapped_up') AS wrapped_up_at,
    min(time) FILTER (name IN ('answered', 'callback_connected')) IS NOT NULL
        AND max(time) FILTER (name = 'ended') IS NOT NULL AS handled,
    arg_max(disposition, version) FILTER (name = 'wrapped_up') AS disposition,
    arg_max(request_id, version) FILTER (name = 'request_linked') AS request_id,
    count(*) FILTER (name LIKE 'callback%') > 0 AS callback
"""

# The department a request is with: its last dispatch's, unless it was returned to the
# dispatcher since (then none: the hotline holds it, as one never dispatched). Not the
# classification's suggestion: a request at the hotline is no department's backlog.
_ASSIGNED_DEPARTMENT = """CASE WHEN max(version) FILTER (name = 'dispatched')
            > coalesce(max(version) FILTER (name = 'returned_to_dispatcher'), 0)
        THEN arg_max(department_id, version) FILTER (name = 'dispatched') END AS assigned_department_id"""

_REQUEST_AGG = f"""
    request_id,
    min(time) FILTER (name = 'registered') AS registered_at,
    any_value(reference) FILTER (name = 'registered') AS reference,
    coalesce(arg_max(kind, version) FILTER (name = 'kind_changed'), any_value(kind) FILTER (name = 'registered')) AS kind,
    coalesce(arg_max(subtype, version) FILTER (name = 'kind_changed'), any_value(subtype) FILTER (name = 'registered')) AS subtype,
    any_value(channel) FILTER (name = 'registered') AS channel,
    any_value(urgency) FILTER (name = 'registered') AS urgency,
    any_value(citizen_id) FILTER (name = 'registered') AS citizen_id,
    any_value(language) FILTER (name = 'registered') AS language,
    any_value(contact_id) FILTER (name = 'registered') AS contact_id,
    arg_max(problem_code, version) FILTER (name = 'classified') AS problem_code,
    arg_max(category_id, version) FILTER (name = 'classified') AS category_id,
    coalesce(arg_max(department_id, version) FILTER (name = 'dispatched'),
             arg_max(department_id, version) FILTER (name = 'classified')) AS department_id,
    coalesce(arg_max(provider_id, version) FILTER (name = 'dispatched'),
             arg_max(provider_id, version) FILTER (name = 'classified')) AS provider_id,
    {_ASSIGNED_DEPARTMENT},
    min(time) FILTER (name = 'dispatched') AS dispatched_at,
    count(*) FILTER (name = 'dispatched') AS dispatches,
    count(*) FILTER (name = 'returned_to_dispatcher') AS returns,
    min(time) FILTER (name = 'accepted') AS acknowledged_at,
    min(time) FILTER (name IN ('interim_replied', 'final_replied')) AS first_response_at,
    max(time) FILTER (name = 'final_replied') AS final_replied_at,
    max(time) FILTER (name = 'resolved') AS resolved_at,
    max(time) FILTER (name = 'closed') AS closed_at,
    arg_max(on_time, version) FILTER (name = 'closed') AS closed_on_time,
    arg_max(due_at, version) FILTER (due_at IS NOT NULL) AS due_at,
    count(*) FILTER (name = 'reopened') AS reopened,
    count(*) FILTER (name = 'extension_approved') AS extensions,
    count(*) FILTER (name = 'supervision_started') > 0 AS supervised,
    arg_max(score, version) FILTER (name = 'rated') AS satisfaction,
    arg_max(name, version) FILTER (name IN ('registered', 'dispatched', 'accepted', 'returned_to_dispatcher',
        'sent_for_ruling', 'final_replied', 'resolved', 'closed', 'reopened')) AS last_step,
    max(time) AS last_event_at
"""

# Bookkeeping columns of the fact tables (not part of the fact views).
_FACT_EXTRA = "min(position) AS first_position, max(position) AS last_position, min(time) AS first_event_at"
_FACT_HIDDEN = "EXCLUDE (first_position, last_position, first_event_at)"


@dataclass(frozen=True)
class FactTable:
    """A fact table kept by ingest: one row per ``key`` of the typed event table ``events``."""

    name: str
    events: str
    key: str
    aggregate: str

    def select(self, source: str, where: str = "TRUE") -> str:
        return f"SELECT {self.aggregate}, {_FACT_EXTRA} FROM {source} WHERE {where} GROUP BY {self.key}"


CONTACT_FACTS = FactTable("contact_facts", "contact_events", "contact_id", _CONTACT_AGG)
REQUEST_FACTS = FactTable("request_facts", "request_events", "request_id", _REQUEST_AGG)
FACT_TABLES = (CONTACT_FACTS, REQUEST_FACTS)

# The knowledge searches: query text as grouped (NFC, case folded, whitespace collapsed).
QUERY_KEY = "lower(trim(regexp_replace(nfc_normalize(coalesce(query, '')), '\\s+', ' ', 'g')))"


def _knowledge_searches(where: str) -> str:
    """One row per search (its ``search_performed``) with its outcomes: ``resolved`` = an
    article was used to answer or the citizen deflected; ``unanswered`` = nothing was
    shown or someone said no good answer."""
    return f"""
SELECT *, used_to_answer OR deflected AS resolved, coalesce(results, 0) = 0 OR no_good_answer AS unanswered
FROM (
    SELECT aggregate_id AS search_id,
        min(time) FILTER (name = 'search_performed') AS time,
        any_value(query) FILTER (name = 'search_performed') AS query,
        any_value({QUERY_KEY}) FILTER (name = 'search_performed') AS query_key,
        any_value(language) FILTER (name = 'search_performed') AS language,
        any_value(channel) FILTER (name = 'search_performed') AS channel,
        any_value(trigger) FILTER (name = 'search_performed') AS trigger,
        any_value(results) FILTER (name = 'search_performed') AS results,
        any_value(answered) FILTER (name = 'search_performed') AS answered,
        any_value(contact_id) FILTER (name = 'search_performed') AS contact_id,
        coalesce(any_value(request_id) FILTER (name = 'search_performed'),
                 arg_max(request_id, time) FILTER (name = 'used_to_answer')) AS request_id,
        count(DISTINCT article_id) FILTER (name = 'article_opened') AS articles_opened,
        count(*) FILTER (name = 'used_to_answer') > 0 AS used_to_answer,
        arg_min(article_id, time) FILTER (name = 'used_to_answer') AS answered_from,
        arg_min(revision, time) FILTER (name = 'used_to_answer') AS answered_from_revision,
        count(*) FILTER (name = 'deflected') > 0 AS deflected,
        count(*) FILTER (name = 'no_good_answer') > 0 AS no_good_answer
    FROM knowledge_events WHERE {where}
    GROUP BY aggregate_id
) WHERE time IS NOT NULL"""


_SEARCHES_BETWEEN = """aggregate_id IN (SELECT aggregate_id FROM knowledge_events
        WHERE name = 'search_performed' AND time >= CAST(a AS TIMESTAMP) AND time < CAST(b AS TIMESTAMP))"""

VIEWS = f"""
CREATE OR REPLACE VIEW contacts AS
SELECT * {_FACT_HIDDEN} FROM contact_facts;

CREATE OR REPLACE MACRO contacts_between(a, b) AS TABLE
SELECT * {_FACT_HIDDEN} FROM contact_facts
WHERE started_at >= CAST(a AS TIMESTAMP) AND started_at < CAST(b AS TIMESTAMP);

CREATE OR REPLACE VIEW requests AS
SELECT * {_FACT_HIDDEN} FROM request_facts;

CREATE OR REPLACE MACRO requests_between(a, b) AS TABLE
SELECT * {_FACT_HIDDEN} FROM request_facts
WHERE registered_at >= CAST(a AS TIMESTAMP) AND registered_at < CAST(b AS TIMESTAMP);

-- The status of every request as of a moment: its last status-changing event by then.
-- A request whose events all happened by t is in that state now (its facts row); only
-- those with events on both sides of t (in flight at t) are replayed from their events.
CREATE OR REPLACE MACRO requests_open_at(t) AS TABLE
SELECT request_id, registered_at, last_step, due_at, department_id, assigned_department_id, category_id, problem_code, urgency
FROM (
    SELECT request_id, registered_at, last_step, due_at, department_id, assigned_department_id, category_id, problem_code, urgency
    FROM request_facts WHERE last_event_at <= CAST(t AS TIMESTAMP)
    UNION ALL
    SELECT request_id,
        min(time) FILTER (name = 'registered') AS registered_at,
        arg_max(name, version) FILTER (name IN ('registered', 'dispatched', 'accepted', 'returned_to_dispatcher',
            'sent_for_ruling', 'final_replied', 'resolved', 'closed', 'reopened')) AS last_step,
        arg_max(due_at, version) FILTER (due_at IS NOT NULL) AS due_at,
        coalesce(arg_max(department_id, version) FILTER (name = 'dispatched'),
                 arg_max(department_id, version) FILTER (name = 'classified')) AS department_id,
        {_ASSIGNED_DEPARTMENT},
        arg_max(category_id, version) FILTER (name = 'classified') AS category_id,
        arg_max(problem_code, version) FILTER (name = 'classified') AS problem_code,
        any_value(urgency) FILTER (name = 'registered') AS urgency
    FROM request_events
    WHERE time <= CAST(t AS TIMESTAMP) AND request_id IN (
        SELECT request_id FROM request_facts
        WHERE first_event_at <= CAST(t AS TIMESTAMP) AND last_event_at > CAST(t AS TIMESTAMP))
    GROUP BY request_id
) WHERE registered_at IS NOT NULL AND last_step NOT IN ('resolved', 'closed');

-- One row per agent state: from one agent event to the next (open if still current).
-- ``agent_code`` is the agent as contacts name it (their ``agent_id``); ``agent_id`` its stream.
CREATE OR REPLACE VIEW agent_states AS
SELECT agent_id, agent_code, state, reason, started_at, ended_at,
    epoch(coalesce(ended_at, started_at) - started_at) AS seconds,
    state NOT IN {AUX_STATES} AS staffed,
    state IN {BUSY_STATES} AS busy
FROM (
    SELECT agent_id, agent_code,
        CASE name WHEN 'logged_out' THEN 'logged_out'
                  WHEN 'logged_in' THEN coalesce(state, 'available')
                  ELSE coalesce(state, 'unknown') END AS state,
        reason,
        time AS started_at,
        lead(time) OVER (PARTITION BY agent_id ORDER BY time, version) AS ended_at
    FROM agent_events
    -- Only these change the state (the Agent emits state_changed for every derived change,
    -- except that a reservation carries the state it leads to; older ones carry none).
    WHERE name IN ('logged_in', 'state_changed', 'logged_out') OR (name = 'reserved' AND state IS NOT NULL)
);

CREATE OR REPLACE VIEW knowledge_searches AS
{_knowledge_searches("TRUE")};

-- The searches performed in a window, with all their outcomes (whenever they came).
CREATE OR REPLACE MACRO knowledge_searches_between(a, b) AS TABLE
{_knowledge_searches(_SEARCHES_BETWEEN)};

-- One row per article opened in a search: did that search end with it (the article used
-- to answer, or named by the citizen's deflection)? ``time`` is the search's.
CREATE OR REPLACE VIEW knowledge_article_reads AS
SELECT s.aggregate_id AS search_id, s.time, s.language, s.channel, r.article_id, r.revision, r.opened_at, r.opens,
    r.used_to_answer, r.deflected, r.used_to_answer OR r.deflected AS resolved
FROM (
    SELECT aggregate_id, article_id,
        arg_max(revision, time) FILTER (name = 'article_opened') AS revision,
        min(time) FILTER (name = 'article_opened') AS opened_at,
        count(*) FILTER (name = 'article_opened') AS opens,
        count(*) FILTER (name = 'used_to_answer') > 0 AS used_to_answer,
        count(*) FILTER (name = 'deflected') > 0 AS deflected
    FROM knowledge_events
    WHERE article_id IS NOT NULL AND name IN ('article_opened', 'used_to_answer', 'deflected')
    GROUP BY aggregate_id, article_id
) r JOIN knowledge_events s ON s.aggregate_id = r.aggregate_id AND s.name = 'search_performed'
WHERE r.opens > 0;
"""

FACT_VIEWS = ("contacts", "requests", "agent_states", "knowledge_searches", "knowledge_article_reads")
TABLE_NAMES = ("events", "contact_events", "request_events", "agent_events", "knowledge_events")


# Columns added to a typed table after its first version: (table, column, type, since).
ADDED_COLUMNS = (
    ("knowledge_events", "version", "BIGINT", 3),
    ("knowledge_events", "channel", "VARCHAR", 3),
    ("knowledge_events", "trigger", "VARCHAR", 3),
    ("knowledge_events", "article_id", "VARCHAR", 3),
    ("knowledge_events", "revision", "INTEGER", 3),
    ("knowledge_events", "rank", "INTEGER", 3),
    ("knowledge_events", "contact_id", "VARCHAR", 3),
    ("knowledge_events", "request_id", "VARCHAR", 3),
    ("agent_events", "agent_code", "VARCHAR", 5),
)
# Version 3 fills the columns it adds from each event's data (kept in ``events``).
_KNOWLEDGE_BACKFILL = """
UPDATE knowledge_events k SET version = e.version, channel = json_extract_string(e.data, '$.channel'),
    trigger = json_extract_string(e.data, '$.trigger'), article_id = json_extract_string(e.data, '$.article_id'),
    revision = TRY_CAST(json_extract_string(e.data, '$.revision') AS INTEGER),
    rank = TRY_CAST(json_extract_string(e.data, '$.rank') AS INTEGER),
    contact_id = json_extract_string(e.data, '$.contact_id'), request_id = json_extract_string(e.data, '$.request_id')
FROM events e WHERE e.event_id = k.event_id
"""
# Version 5 fills ``agent_code`` from each agent event's data (or its stream id, as before).
_AGENT_CODE_BACKFILL = """
UPDATE agent_events a SET agent_code = coalesce(json_extract_string(e.data, '$.agent_id'), a.agent_id)
FROM events e WHERE e.event_id = a.event_id
"""


# The schema version each fact table was last defined in: an older file computes it again.
_FACTS_SINCE = {CONTACT_FACTS.name: 4, REQUEST_FACTS.name: 6}


def stored_schema_version(conn: duckdb.DuckDBPyConnection) -> int | None:
    """The schema version an analytics file was last opened with (None: a new file)."""
    row = conn.execute("SELECT value FROM schema_info WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None


def create_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Creates what is missing and upgrades an older file in place: tables are created if
    they do not exist, columns of a later version added (``ADDED_COLUMNS``) and filled
    from ``events``, views and macros replaced."""
    conn.execute(TABLES)
    previous = stored_schema_version(conn)
    for table, column, type_, _since in ADDED_COLUMNS:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {type_}")
    if previous is not None and previous < 3:
        conn.execute(_KNOWLEDGE_BACKFILL)
    if previous is not None and previous < 5:
        conn.execute(_AGENT_CODE_BACKFILL)
    for f in FACT_TABLES:
        if previous is not None and previous < _FACTS_SINCE[f.name]:
            # Version 4 orders a stream's events by their version (not their time, which
            # ties), version 6 adds a column to the request facts: the facts are computed
            # again from the events.
            conn.execute(f"DROP TABLE IF EXISTS {f.name} CASCADE")
        # A database from schema version 1 gets its facts computed once from its events.
        conn.execute(f"CREATE TABLE IF NOT EXISTS {f.name} AS {f.select(f.events)} ORDER BY first_position")
    conn.execute(VIEWS)
    conn.execute(
        "INSERT OR REPLACE INTO schema_info VALUES ('schema_version', ?)",
        [str(SCHEMA_VERSION)],
    )


# Facts rows are looked up among the newest ones first: a contact or request a batch
# continues almost always began a little earlier in the log.
RECENT_POSITIONS = 2_000_000


def refresh_facts(conn: duckdb.DuckDBPyConnection, f: FactTable, new_events: str) -> int:
    """Brings ``f`` up to date with the typed rows of one batch (table ``new_events``,
    already inserted into ``f.events``), inside the caller's transaction.

    Keys the batch starts (first seen) get a row aggregated from the batch alone. Keys
    that already have a row are recomputed from all their events: their rows are found
    among the recent facts (positions) and, for a batch continuing an older key (its
    first version here is above 1), in the whole table; their events are read from the
    first position of the oldest such key on, a few row groups. Returns the keys touched.
    """
    k = f.key
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE fact_touched AS
        SELECT {k} AS id, min(version) AS min_version, min(position) AS lo, count(position) = count(*) AS positioned
        FROM {new_events} GROUP BY {k}"""
    )
    lo, touched, positioned = conn.execute("SELECT min(lo), count(*), bool_and(positioned) FROM fact_touched").fetchall()[0]
    if not touched:
        return 0
    # Events without a position (CloudEvents lacking ``sequence``) cannot use the position
    # bounds: look everywhere.
    recent = (lo - RECENT_POSITIONS) if positioned and lo is not None else None
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE fact_matched AS
        SELECT {k} AS id, first_position FROM {f.name}
        WHERE {"TRUE" if recent is None else f"first_position >= {int(recent)}"}
          AND {k} IN (SELECT id FROM fact_touched)"""
    )
    if recent is not None:
        older = conn.execute(
            """SELECT count(*) FROM fact_touched
               WHERE min_version > 1 AND id NOT IN (SELECT id FROM fact_matched)"""
        ).fetchall()[0][0]
        if older:
            conn.execute(
                f"""INSERT INTO fact_matched SELECT {k}, first_position FROM {f.name}
                WHERE (first_position < {int(recent)} OR first_position IS NULL) AND {k} IN (
                    SELECT id FROM fact_touched WHERE min_version > 1 AND id NOT IN (SELECT id FROM fact_matched))"""
            )
    first, matched, all_positioned = conn.execute(
        "SELECT min(first_position), count(*), count(first_position) = count(*) FROM fact_matched"
    ).fetchall()[0]
    if matched:
        bounded = recent is not None and all_positioned and first is not None
        # The batch's own events of a key may come before its stored ones (out of order).
        bound = f"position >= {min(int(first), int(lo))}" if bounded else "TRUE"
        conn.execute(f"DELETE FROM {f.name} WHERE {'first_' + bound if bounded else 'TRUE'} AND {k} IN (SELECT id FROM fact_matched)")
        conn.execute(
            f"""INSERT INTO {f.name}
            {f.select(f.events, f"{bound} AND {k} IN (SELECT id FROM fact_matched)")}
            UNION ALL
            {f.select(new_events, f"{k} NOT IN (SELECT id FROM fact_matched)")}
            ORDER BY first_position"""
        )
    else:
        conn.execute(f"INSERT INTO {f.name} {f.select(new_events)} ORDER BY first_position")
    return int(touched)
