"""Request search benchmark: GET /requests's query (``request_status.find``) over 1,000,000 requests.

1. Fill the read model directly (no events: this measures the search, not the projection):
   1,000,000 rows over two years in the proportions of a city hotline (85 % closed, the
   rest in every open state, 12 departments, 40 providers, 60 problem codes, urgencies
   10/20/70 %, seven channels, 2 % supervised), each with its search tokens made by the
   projection's own functions: a description from 40 complaint templates × 2,000 streets ×
   house numbers, the caller's name (300 given names × 1,000 surnames) and mobile number.
   Bulk insert (PostgreSQL: COPY), then the indexes and the FTS5 / GIN text index, as the
   projection declares them.
2. Run a mix of typical screens' queries, each with its total count, ``--rounds`` times with
   varying parameters, and print p50 / p95 / max in ms per query.

Run:  python tests/bench/bench_search.py [--store sqlite|postgres|both] [--rows 1000000] [--rounds 40]
      (PostgreSQL: a scratch database on the local server, ``bash infra/postgres.sh start``)
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from consumers.replay import _bulk_load  # noqa: E402
from domain.catalogue.aggregate import URGENCIES  # noqa: E402
from domain.requests.aggregate import CHANNELS, OPEN_STATES, SUBTYPES  # noqa: E402
from infra.read_store import ReadStore, make_engine  # noqa: E402
from projections import knowledge_text as text  # noqa: E402
from projections import request_status as rs  # noqa: E402

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
TEMPLATES = [
    "Streetlight out at the bus stop in",
    "Deep pothole in front of the school in",
    "Rubbish bins overflowing for three days in",
    "Water leak from a broken pipe in",
    "Noise from a bar every night in",
    "Abandoned car blocking the pavement in",
    "Traffic light not working at the crossing of",
    "Fallen tree branch on the road in",
    "Graffiti on the walls of the underpass in",
    "Broken bench in the park of",
    "Sewer smell from the drains in",
    "Illegal parking on the cycle lane in",
    "No bus for an hour at the stop in",
    "Stray dogs near the playground in",
    "Blocked drain flooding the street in",
    "Missing manhole cover in",
    "Damaged road sign in",
    "Bulky waste left on the pavement in",
    "Street not cleaned for weeks in",
    "Construction noise before seven in",
    "Lampione spento davanti al civico di",
    "Buca profonda sulla carreggiata di",
    "Cassonetti pieni da giorni in",
    "Perdita d'acqua dal marciapiede in",
    "Rumore notturno dal locale in",
    "Auto abbandonata sul marciapiede in",
    "Semaforo guasto all'incrocio di",
    "Albero caduto sulla strada in",
    "Scritte sui muri del sottopasso in",
    "Panchina rotta nel parco di",
    "路灯不亮 位于",
    "路面坑洼 位于",
    "垃圾桶满了 位于",
    "水管漏水 位于",
    "夜间噪音扰民 位于",
    "车辆乱停放 位于",
    "交通信号灯故障 位于",
    "树枝倒在路上 位于",
    "井盖丢失 位于",
    "排水沟堵塞 位于",
]
LANG = ["en"] * 20 + ["it"] * 10 + ["zh"] * 10
STREET_NAMES = [
    "Roma", "Appia", "Tuscolana", "Nomentana", "Cassia", "Flaminia", "Aurelia", "Salaria", "Prenestina", "Casilina",
    "Ostiense", "Portuense", "Tiburtina", "Labicana", "Merulana", "Cavour", "Nazionale", "Veneto", "Garibaldi", "Mazzini",
]  # fmt: skip
STREET_KINDS = ["Via", "Viale", "Piazza", "Largo", "Vicolo"]
GIVEN = [
    f"{a}{b}"
    for a in ("Mar", "Giu", "Lu", "An", "Fra", "Ste", "Ale", "Pa", "Ro", "Da")
    for b in ("io", "lia", "ca", "na", "nco", "fano", "ssandro", "olo", "berto", "niele")
]
SURNAME_STEMS = ["Ross", "Bianch", "Verd", "Ner", "Russ", "Ferr", "Espos", "Roman", "Colomb", "Ricc", "Marin", "Gallo", "Conti"]


def streets() -> list[str]:
    """2,000 streets: ``Via Roma 7``, ``Largo Cavour 12`` …"""
    return [f"{kind} {name} {n}" for kind in STREET_KINDS for name in STREET_NAMES for n in range(1, 21)]


def surnames() -> list[str]:
    return [f"{stem}{suffix}" for stem in SURNAME_STEMS for suffix in [f"i{k}" if k else "i" for k in range(67)]][:1000]


def generate(n: int, seed: int = 17) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """``n`` request rows, their search rows, and samples to query with."""
    rng = random.Random(seed)
    all_streets, all_surnames = streets(), surnames()
    departments = [f"dept-{i}" for i in range(12)]
    providers = [f"prov-{i}" for i in range(40)]
    codes = [f"code-{i}" for i in range(60)]
    subtypes = list(SUBTYPES)
    finished = ["closed"] * 9 + ["resolved"]
    open_states = [*OPEN_STATES, "in_progress", "in_progress", "dispatched"]
    urgencies = ["urgent"] * 10 + ["control"] * 20 + ["normal"] * 70
    channels = ["phone"] * 50 + ["web"] * 20 + ["email"] * 10 + ["sms"] * 5 + ["chat"] * 10 + ["walk_in"] * 3 + ["social"] * 2
    analysed: dict[tuple[int, str], list[str]] = {}
    names: dict[str, list[str]] = {}
    span = timedelta(days=730).total_seconds()
    rows, search = [], []
    samples: dict[str, list[Any]] = {"street": [], "surname": [], "phone": [], "reference": []}
    for i in range(n):
        registered = NOW - timedelta(seconds=span * (1 - i / n)) + timedelta(seconds=rng.random() * 30)
        t = rng.randrange(len(TEMPLATES))
        street = rng.choice(all_streets)
        number = rng.randint(1, 200)
        language = LANG[t]
        # Recent requests are mostly open, old ones almost all finished.
        age = (NOW - registered).days
        p_open = 0.9 if age < 2 else 0.5 if age < 7 else 0.2 if age < 30 else 0.003
        status = rng.choice(open_states) if rng.random() < p_open else rng.choice(finished)
        subtype = rng.choice(subtypes)
        dept = rng.choice(departments) if status != "registered" else None
        urgency = rng.choice(urgencies)
        due = registered + timedelta(hours={"urgent": 24, "control": 48, "normal": 120}[urgency])
        reference = f"{registered.year}-{i:07d}"
        request_id = f"00000000-0000-4000-8000-{i:012d}"
        key = (t, street)
        tokens = analysed.get(key)
        if tokens is None:
            tokens = analysed[key] = text.analyze(f"{TEMPLATES[t]} {street}", language)
        given, surname = rng.choice(GIVEN), rng.choice(all_surnames)
        name = f"{given} {surname}"
        name_tokens = names.get(name)
        if name_tokens is None:
            name_tokens = names[name] = text.analyze(name, "it")
        mobile = f"3{rng.randint(10, 99)}{rng.randint(0, 9_999_999):07d}"
        rows.append(
            {
                "id": request_id,
                "reference": reference,
                "kind": SUBTYPES[subtype],
                "subtype": subtype,
                "channel": rng.choice(channels),
                "status": status,
                "urgency": urgency,
                "urgency_rank": URGENCIES.index(urgency),
                "clock_running": status in OPEN_STATES and status != "waiting_citizen",
                "description": f"{TEMPLATES[t]} {street} {number}",
                "location": None,
                "language": language,
                "citizen_id": f"10000000-0000-4000-8000-{rng.randrange(n // 3 + 1):012d}",
                "contact_hidden": False,
                "reply_channel": "sms",
                "problem_code": rng.choice(codes) if status != "registered" else None,
                "category_id": None,
                "department_id": dept,
                "provider_id": rng.choice(providers) if dept else None,
                "registered_at": registered,
                "due_at": due,
                "return_count": 0,
                "reopen_count": 0,
                "supervised": rng.random() < 0.02,
                "escalated": False,
                "extension_pending": False,
                "version": 5,
                "position": i + 1,
                "updated_at": registered,
                "serial": i + 1,
            }
        )
        # +39 mobile: E.164 digits, and the national number (the same as its NSN in Italy).
        search.append(
            {
                "serial": i + 1,
                "tokens": text.joined([*rs._reference_tokens(reference), *tokens, str(number)]),
                "contact": text.joined([*name_tokens, f"39{mobile}", mobile]),
            }
        )
        if i % 997 == 0:
            samples["street"].append(street)
            samples["surname"].append(surname)
            samples["phone"].append(f"+39 {mobile[:3]} {mobile[3:]}")
            samples["reference"].append(reference)
    return rows, search, samples


def load(engine: sa.Engine, rows: list[dict[str, Any]], search: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    store = ReadStore(engine, [rs.projection])
    store.create_tables()
    with engine.begin() as conn:
        # Secondary indexes and the text index are built after the load (one sort each).
        for index in rs.REQUESTS.indexes:
            index.drop(conn)
        if conn.dialect.name == "sqlite":
            for trigger in ("ai", "ad", "au"):
                conn.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{rs.SEARCH.name}_{trigger}"')
        else:
            for suffix in ("tsv", "tsv_all"):
                conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{rs.SEARCH.name}_{suffix}"')
                conn.exec_driver_sql(f'ALTER TABLE "{rs.SEARCH.name}" DROP COLUMN IF EXISTS {suffix}')
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            conn.exec_driver_sql(f'ALTER TABLE "{rs.TERMS.name}" DROP CONSTRAINT "{rs.TERMS.name}_pkey"')
        for i in range(0, len(rows), 100_000):
            _bulk_load(conn, rs.REQUESTS, rows[i : i + 100_000])
            _bulk_load(conn, rs.SEARCH, search[i : i + 100_000])
            if postgres:  # SQLite's search reads FTS5 only: its terms would only lengthen the load
                terms = [t for r in search[i : i + 100_000] for t in rs.term_rows(r["serial"], r["tokens"].split(), r["contact"].split())]
                _bulk_load(conn, rs.TERMS, terms)
        if postgres:
            conn.exec_driver_sql(f'ALTER TABLE "{rs.TERMS.name}" ADD PRIMARY KEY (term, personal, serial)')
        counts = Counter((r["status"], r["department_id"] or "") for r in rows)
        _bulk_load(conn, rs.COUNTS, [{"status": k[0], "department_id": k[1], "count": n} for k, n in counts.items()])
        for index in rs.REQUESTS.indexes:
            index.create(conn)
        rs._text_index(rs.SEARCH, conn)  # FTS5 table and its triggers (SQLite, rebuilt from the rows) or GIN
    # What autovacuum does soon after a load (PostgreSQL: statistics and the visibility map
    # that index-only scans need); SQLite: statistics for the planner.
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM ANALYZE" if conn.dialect.name == "postgresql" else "ANALYZE"
        )
    return time.perf_counter() - started


def queries(samples: dict[str, Any], rng: random.Random, engine: sa.Engine) -> dict[str, Callable[[], dict[str, Any]]]:
    F = rs.Filters

    def first_page_cursor() -> str | None:
        with engine.connect() as conn:
            return rs.find(conn, F(), now=NOW, with_total=False, limit=50)["next_cursor"]

    cursor = first_page_cursor()
    day = lambda: NOW - timedelta(days=rng.randint(1, 700))  # noqa: E731
    pick = rng.choice
    return {
        "newest (no filter)": lambda: {"filters": F()},
        "newest, page 2 (cursor)": lambda: {"filters": F(), "cursor": cursor},
        "status in_progress": lambda: {"filters": F(status=("in_progress",))},
        "open states": lambda: {"filters": F(status=tuple(s for s in OPEN_STATES))},
        "department inbox (dept + dispatched)": lambda: {"filters": F(department_id=f"dept-{rng.randrange(12)}", status=("dispatched",))},
        "overdue, by deadline": lambda: {"filters": F(overdue=True), "sort": "due_at"},
        "due within a day, not late": lambda: {"filters": F(due_before=NOW + timedelta(days=1), overdue=False), "sort": "due_at"},
        "urgent, by urgency": lambda: {"filters": F(urgency="urgent"), "sort": "urgency"},
        "registered on one day": lambda: {"filters": F(registered_from=(d := day()), registered_to=d + timedelta(days=1))},
        "problem code, last 30 days": lambda: {
            "filters": F(problem_code=f"code-{rng.randrange(60)}", registered_from=NOW - timedelta(days=30))
        },
        "channel + urgency + kind": lambda: {"filters": F(channel=pick(CHANNELS), urgency=pick(URGENCIES), kind="action")},
        "supervised": lambda: {"filters": F(supervised=True)},
        "provider, open": lambda: {"filters": F(provider_id=f"prov-{rng.randrange(40)}", status=("in_progress",))},
        "q: reference": lambda: {"filters": F(text=pick(samples["reference"]), personal=True)},
        "q: street (public)": lambda: {"filters": F(text=pick(samples["street"]))},
        "q: street + status": lambda: {"filters": F(text=pick(samples["street"]), status=("closed",))},
        "q: two words": lambda: {"filters": F(text=f"pothole {pick(samples['street'])}")},
        "q: common word (pothole)": lambda: {"filters": F(text="pothole")},
        "q: caller surname (staff)": lambda: {"filters": F(text=pick(samples["surname"]), personal=True)},
        "q: caller phone (staff)": lambda: {"filters": F(text=pick(samples["phone"]), personal=True)},
        "q: 路灯 (Chinese)": lambda: {"filters": F(text="路灯")},
    }


def run(store: str, n: int, rounds: int) -> None:
    rows, search, samples = generate(n)
    url = None
    tmp = tempfile.TemporaryDirectory()
    if store == "postgres":
        from tests.conftest import create_pg_database

        url = create_pg_database("bench_search")
    engine = make_engine(url or f"sqlite:///{tmp.name}/read.db")
    try:
        seconds = load(engine, rows, search)
        del rows, search
        print(f"\n{store}: {n:,} requests loaded and indexed in {seconds:.1f} s")
        rng = random.Random(3)
        mix = queries(samples, rng, engine)
        print(f"{'query':42} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'total (last)':>13}")
        worst = []
        with engine.connect() as conn:
            for name, make in mix.items():
                took, total = [], 0
                for _ in range(rounds + 3):
                    args = make()
                    started = time.perf_counter()
                    page = rs.find(conn, args["filters"], now=NOW, sort=args.get("sort", "-registered_at"), cursor=args.get("cursor"))
                    took.append((time.perf_counter() - started) * 1000)
                    total = page["total"]
                took = sorted(took[3:])  # the first rounds warm the cache
                p95 = took[max(0, int(len(took) * 0.95) - 1)]
                worst.append(p95)
                print(f"{name:42} {statistics.median(took):8.1f} {p95:8.1f} {took[-1]:8.1f} {total:>13,}")
        print(f"{store}: worst p95 {max(worst):.1f} ms; queries with p95 >= 50 ms: {sum(p >= 50 for p in worst)} of {len(worst)}")
    finally:
        engine.dispose()
        tmp.cleanup()
        if url:
            from tests.conftest import drop_pg_database

            drop_pg_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    for store in ["sqlite", "postgres"] if args.store == "both" else [args.store]:
        run(store, args.rows, args.rounds)


if __name__ == "__main__":
    main()
