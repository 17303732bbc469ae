"""The DuckDB schema analysts query.

Layers:

* ``events``: every event as it was published (type, stream, aggregate, version, global
  position, business time in UTC, data as JSON without the citizen's personal fields,
  actor and correlation). The audit trail for analysts, and the dedupe key (``event_id``).
* typed event tables, one per stream the KPIs need (``contact_events``, ``request_events``,
  ``agent_events``, ``knowledge_events``): the fields extracted once at ingest, so KPI
  queries never parse JSON.
* fact views (one row per contact / request / agent state interval) and table macros
  ``contacts_between(a, b)`` / ``requests_between(a, b)`` that compute the same rows only
  for what started in a window (the time filter reaches the scan, so a day out of a
  year reads a day of data).

Times are ``TIMESTAMP`` in UTC. Personal data (name, phone, email) never reaches DuckDB:
ingest keeps only ``citizen_key``, the citizen id or an MD5 of the phone number / email.
"""

from __future__ import annotations

import duckdb

SCHEMA_VERSION = 1

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
# A contact's events are looked up this far on either side of a window.
CONTACT_MARGIN = "INTERVAL 2 DAY"

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
    agent_id VARCHAR NOT NULL,
    version BIGINT NOT NULL,
    time TIMESTAMP NOT NULL,
    name VARCHAR NOT NULL,
    state VARCHAR,
    reason VARCHAR
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
    answered BOOLEAN
);
"""

_CONTACT_AGG = """
    contact_id,
    min(time) FILTER (name = 'arrived') AS arrived_at,
    coalesce(min(time) FILTER (name = 'arrived'), min(time)) AS started_at,
    arg_min(channel, time) FILTER (name = 'arrived') AS channel,
    coalesce(arg_min(direction, time) FILTER (name = 'arrived'), 'inbound') AS direction,
    arg_min(language, time) FILTER (name = 'arrived') AS language,
    arg_min(priority, time) FILTER (name = 'arrived') AS priority,
    arg_min(citizen_key, time) FILTER (name = 'arrived') AS citizen_key,
    arg_min(queue_id, time) FILTER (name IN ('arrived', 'queued') AND queue_id IS NOT NULL) AS queue_id,
    min(time) FILTER (name = 'queued') AS queued_at,
    count(*) FILTER (name IN ('queued', 'answered', 'abandoned')) > 0 AS offered,
    count(*) FILTER (name = 'offered') AS offers,
    count(*) FILTER (name = 'offer_timed_out') AS offers_timed_out,
    min(time) FILTER (name IN ('answered', 'callback_connected')) AS answered_at,
    arg_min(agent_id, time) FILTER (name IN ('answered', 'callback_connected')) AS agent_id,
    arg_min(queue_id, time) FILTER (name IN ('answered', 'callback_connected')) AS answered_queue_id,
    min(time) FILTER (name IN ('answered', 'callback_connected')) IS NOT NULL AS answered,
    min(time) FILTER (name = 'abandoned') AS abandoned_at,
    min(time) FILTER (name IN ('answered', 'callback_connected')) IS NULL
        AND min(time) FILTER (name = 'abandoned') IS NOT NULL AS abandoned,
    coalesce(
        arg_min(wait_seconds, time) FILTER (name IN ('answered', 'callback_connected')),
        epoch(min(time) FILTER (name IN ('answered', 'callback_connected'))
              - coalesce(min(time) FILTER (name = 'queued'), min(time) FILTER (name = 'arrived'))),
        arg_min(wait_seconds, time) FILTER (name = 'abandoned'),
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
    arg_max(disposition, time) FILTER (name = 'wrapped_up') AS disposition,
    arg_max(request_id, time) FILTER (name = 'request_linked') AS request_id,
    count(*) FILTER (name LIKE 'callback%') > 0 AS callback
"""

_REQUEST_AGG = """
    request_id,
    min(time) FILTER (name = 'registered') AS registered_at,
    any_value(reference) FILTER (name = 'registered') AS reference,
    coalesce(arg_max(kind, time) FILTER (name = 'kind_changed'), any_value(kind) FILTER (name = 'registered')) AS kind,
    coalesce(arg_max(subtype, time) FILTER (name = 'kind_changed'), any_value(subtype) FILTER (name = 'registered')) AS subtype,
    any_value(channel) FILTER (name = 'registered') AS channel,
    any_value(urgency) FILTER (name = 'registered') AS urgency,
    any_value(citizen_id) FILTER (name = 'registered') AS citizen_id,
    any_value(language) FILTER (name = 'registered') AS language,
    any_value(contact_id) FILTER (name = 'registered') AS contact_id,
    arg_max(problem_code, time) FILTER (name = 'classified') AS problem_code,
    arg_max(category_id, time) FILTER (name = 'classified') AS category_id,
    coalesce(arg_max(department_id, time) FILTER (name = 'dispatched'),
             arg_max(department_id, time) FILTER (name = 'classified')) AS department_id,
    coalesce(arg_max(provider_id, time) FILTER (name = 'dispatched'),
             arg_max(provider_id, time) FILTER (name = 'classified')) AS provider_id,
    min(time) FILTER (name = 'dispatched') AS dispatched_at,
    count(*) FILTER (name = 'dispatched') AS dispatches,
    count(*) FILTER (name = 'returned_to_dispatcher') AS returns,
    min(time) FILTER (name = 'accepted') AS acknowledged_at,
    min(time) FILTER (name IN ('interim_replied', 'final_replied')) AS first_response_at,
    max(time) FILTER (name = 'final_replied') AS final_replied_at,
    max(time) FILTER (name = 'resolved') AS resolved_at,
    max(time) FILTER (name = 'closed') AS closed_at,
    arg_max(on_time, time) FILTER (name = 'closed') AS closed_on_time,
    arg_max(due_at, time) FILTER (due_at IS NOT NULL) AS due_at,
    count(*) FILTER (name = 'reopened') AS reopened,
    count(*) FILTER (name = 'extension_approved') AS extensions,
    count(*) FILTER (name = 'supervision_started') > 0 AS supervised,
    arg_max(score, time) FILTER (name = 'rated') AS satisfaction,
    arg_max(name, time) FILTER (name IN ('registered', 'dispatched', 'accepted', 'returned_to_dispatcher',
        'sent_for_ruling', 'final_replied', 'resolved', 'closed', 'reopened')) AS last_step,
    max(time) AS last_event_at
"""

VIEWS = f"""
CREATE OR REPLACE VIEW contacts AS
SELECT {_CONTACT_AGG} FROM contact_events GROUP BY contact_id;

CREATE OR REPLACE MACRO contacts_between(a, b) AS TABLE
SELECT * FROM (
    SELECT {_CONTACT_AGG} FROM contact_events
    WHERE time >= CAST(a AS TIMESTAMP) - {CONTACT_MARGIN} AND time < CAST(b AS TIMESTAMP) + {CONTACT_MARGIN}
    GROUP BY contact_id
) WHERE started_at >= CAST(a AS TIMESTAMP) AND started_at < CAST(b AS TIMESTAMP);

CREATE OR REPLACE VIEW requests AS
SELECT {_REQUEST_AGG} FROM request_events GROUP BY request_id;

CREATE OR REPLACE MACRO requests_between(a, b) AS TABLE
SELECT {_REQUEST_AGG} FROM request_events
WHERE request_id IN (
    SELECT request_id FROM request_events
    WHERE name = 'registered' AND time >= CAST(a AS TIMESTAMP) AND time < CAST(b AS TIMESTAMP)
)
GROUP BY request_id;

-- The status of every request as of a moment: its last status-changing event by then.
CREATE OR REPLACE MACRO requests_open_at(t) AS TABLE
SELECT request_id, registered_at, last_step, due_at, department_id, category_id, problem_code, urgency
FROM (
    SELECT request_id,
        min(time) FILTER (name = 'registered') AS registered_at,
        arg_max(name, time) FILTER (name IN ('registered', 'dispatched', 'accepted', 'returned_to_dispatcher',
            'sent_for_ruling', 'final_replied', 'resolved', 'closed', 'reopened')) AS last_step,
        arg_max(due_at, time) FILTER (due_at IS NOT NULL) AS due_at,
        coalesce(arg_max(department_id, time) FILTER (name = 'dispatched'),
                 arg_max(department_id, time) FILTER (name = 'classified')) AS department_id,
        arg_max(category_id, time) FILTER (name = 'classified') AS category_id,
        arg_max(problem_code, time) FILTER (name = 'classified') AS problem_code,
        any_value(urgency) FILTER (name = 'registered') AS urgency
    FROM request_events WHERE time <= CAST(t AS TIMESTAMP)
    GROUP BY request_id
) WHERE registered_at IS NOT NULL AND last_step NOT IN ('resolved', 'closed');

-- One row per agent state: from one agent event to the next (open if still current).
CREATE OR REPLACE VIEW agent_states AS
SELECT agent_id, state, reason, started_at, ended_at,
    epoch(coalesce(ended_at, started_at) - started_at) AS seconds,
    state NOT IN {AUX_STATES} AS staffed,
    state IN {BUSY_STATES} AS busy
FROM (
    SELECT agent_id,
        CASE name WHEN 'logged_out' THEN 'logged_out'
                  WHEN 'logged_in' THEN coalesce(state, 'available')
                  ELSE coalesce(state, 'unknown') END AS state,
        reason,
        time AS started_at,
        lead(time) OVER (PARTITION BY agent_id ORDER BY time, version) AS ended_at
    FROM agent_events
    -- Only these change the state (the Agent emits state_changed for every derived change).
    WHERE name IN ('logged_in', 'state_changed', 'logged_out')
);

CREATE OR REPLACE VIEW knowledge_searches AS
SELECT aggregate_id AS search_id, time, query, language, results, answered
FROM knowledge_events WHERE name = 'search_performed';
"""

FACT_VIEWS = ("contacts", "requests", "agent_states", "knowledge_searches")
TABLE_NAMES = ("events", "contact_events", "request_events", "agent_events", "knowledge_events")


def create_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(TABLES)
    conn.execute(VIEWS)
    conn.execute(
        "INSERT OR REPLACE INTO schema_info VALUES ('schema_version', ?)",
        [str(SCHEMA_VERSION)],
    )
