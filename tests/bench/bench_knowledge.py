"""Knowledge-base benchmark: search latency and indexing rate with 10,000 published articles.

1. Generate N articles in zh, ar, it and en: each is one of the 30 labelled topics'
   sentences reshuffled with words drawn from every article of its language, plus a
   unique serial word, so terms have realistic document frequencies (the hotline words
   occur in hundreds of articles, the rare ones in a few).
2. Write them through the command bus (draft, review, publish: three commands each), the
   projection indexing them in-process (embedded) — the write path's articles/s.
3. Indexing rate proper: ``hotline replay knowledge`` rebuilds the whole index from the
   events (analysis, rows, FTS5 / GIN) — articles/s.
4. Search: the labelled queries (254, four languages) run repeatedly against the index
   (max-score top-5: rarest terms first, rows found by FTS5 or GIN and scored by the
   database, snippets): p50 / p95 / p99 in ms. ``postings`` is how many (term, row) pairs
   the query's terms have in the index (what scoring every candidate would read);
   ``scored`` the postings of the terms taken before the top 5 was certain (at most that
   many rows scored). The search endpoint also records the search (one command): timed
   separately, with the part spent applying it to the in-process projections.

Run:  python tests/bench/bench_knowledge.py [--store sqlite|postgres] [--articles 10000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from consumers.replay import replay_projection  # noqa: E402
from domain.base import SystemClock  # noqa: E402
from domain.knowledge import commands as c  # noqa: E402
from infra.runtime import Hotline  # noqa: E402
from infra.settings import Settings  # noqa: E402
from infra.wiring import projection_named as by_name  # noqa: E402
from projections import knowledge as kb  # noqa: E402
from projections import knowledge_text as text  # noqa: E402
from tests.knowledge.articles import ARTICLES  # noqa: E402
from tests.knowledge.evaluation import EDITOR, LANGUAGES  # noqa: E402
from tests.knowledge.queries import QUERIES  # noqa: E402

SEPARATOR = {"zh": "", "ar": " ", "it": " ", "en": " "}


def _words(body: str, lang: str) -> list[str]:
    if lang == "zh":
        import rjieba

        return [w for w in rjieba.cut(body) if w.strip()]
    return body.split()


def generate(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    keys = sorted(ARTICLES)
    vocab = {lang: [w for k in keys for w in _words(ARTICLES[k][lang][1], lang)] for lang in LANGUAGES}
    out = []
    for i in range(n):
        key = keys[i % len(keys)]
        a = ARTICLES[key]
        translations = {}
        for lang in LANGUAGES:
            title, body = a[lang]
            own = _words(body, lang)
            rng.shuffle(own)
            extra = rng.sample(vocab[lang], 25)
            serial = f"kb{i}"
            sep = SEPARATOR[lang]
            translations[lang] = c.Translation(title=f"{title} {serial}", body=sep.join(own[: len(own) * 2 // 3] + extra) + f" {serial}")
        out.append({"translations": translations, "problem_codes": a["codes"], "tags": a["tags"][:2]})
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(store: str, n: int, rounds: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-kb-"))
    url = None
    if store == "postgres":
        from tests.conftest import create_pg_database

        url = create_pg_database("bench_kb")
    settings = Settings(data_dir=tmp, database_url=url, pg_pool_size=8)
    h = Hotline.start(settings, SystemClock())
    report: dict[str, Any] = {"store": store, "articles": n}
    try:
        docs = generate(n)
        started = time.perf_counter()

        def write(d: dict[str, Any]) -> None:
            aid = h.bus.execute(c.DraftArticle(**d), EDITOR).result["id"]
            h.bus.execute(c.ReviewArticle(article_id=aid), EDITOR)
            h.bus.execute(c.PublishArticle(article_id=aid), EDITOR)

        # 16 writers at once: the bus commits them in shared transactions (group commit).
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(write, docs))
        if h.projector is not None:
            h.projector.catch_up(until=h.store.max_position())
        report["write_path_articles_per_s"] = n / (time.perf_counter() - started)

        stats = replay_projection(settings, by_name("knowledge"))
        report["replay_seconds"] = stats["seconds"]
        report["index_articles_per_s"] = n / stats["seconds"]

        t0 = time.perf_counter()
        for d in docs[:1000]:
            for lang, t in d["translations"].items():
                kb.index_row("x", lang, 1, {"translations": {lang: t.model_dump()}, "tags": d["tags"], "problem_codes": d["problem_codes"]})
        report["analysis_articles_per_s"] = 1000 / (time.perf_counter() - t0)

        queries = [(q, lang) for lang in LANGUAGES for q, _ in QUERIES[lang]]
        latencies: list[float] = []
        candidates: list[int] = []
        postings: list[int] = []
        with h.read_store.engine.connect() as conn:
            found = {(q, lang): kb.search(conn, q, lang, 5)[0] for q, lang in queries}  # warm up; what is shown
            for _ in range(rounds):
                for q, lang in queries:
                    t = time.perf_counter()
                    kb.search(conn, q, lang, 5)
                    latencies.append((time.perf_counter() - t) * 1000)
            for q, lang in queries:
                trace: dict[str, int] = {}
                kb.rank(conn, text.query_terms(q, lang), lang, (), 5, trace)
                postings.append(trace.get("postings", 0))
                candidates.append(trace.get("scored", 0))
        report.update(
            searches=len(latencies),
            search_p50_ms=statistics.median(latencies),
            search_p95_ms=percentile(latencies, 95),
            search_p99_ms=percentile(latencies, 99),
            postings_median=statistics.median(postings),
            postings_max=max(postings),
            scored_median=statistics.median(candidates),
            scored_max=max(candidates),
        )
        # Recording a search: the commit, then (embedded mode) the bus applies the new event
        # to every in-process projection before it returns (read-your-writes): timed apart.
        record: list[float] = []
        catch_up: list[float] = []
        after_commit = h.bus.after_commit

        def timed_catch_up(position: int) -> None:
            t = time.perf_counter()
            if after_commit is not None:
                after_commit(position)
            catch_up.append((time.perf_counter() - t) * 1000)

        h.bus.after_commit = timed_catch_up
        for q, lang in queries[:100]:
            shown = [
                c.ShownArticle(article_id=r["id"], revision=r["revision"], rank=i + 1, score=r["score"])
                for i, r in enumerate(found[q, lang])
            ]
            t = time.perf_counter()
            h.bus.execute(c.RecordSearch(query=q, language=lang, channel="agent", shown=shown), EDITOR)  # type: ignore[arg-type]
            record.append((time.perf_counter() - t) * 1000)
        h.bus.after_commit = after_commit
        report["record_search_p50_ms"] = statistics.median(record)
        report["record_search_p95_ms"] = percentile(record, 95)
        report["record_catch_up_p95_ms"] = percentile(catch_up, 95)
    finally:
        h.close()
        if url:
            from tests.conftest import drop_pg_database

            drop_pg_database(url)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    for store in stores:
        r = run(store, args.articles, args.rounds)
        print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()), flush=True)


def test_bench_knowledge_small() -> None:
    r = run("sqlite", 300, 1)
    assert r["search_p95_ms"] < 200


if __name__ == "__main__":
    main()
