"""The knowledge base's read model: articles, every revision, the search index, searches.

The index (``rm_knowledge_index``) holds one row per published article and language: the
text shown (title, body), the analysed tokens (``projections/knowledge_text.py``), each
wrapped in spaces, and the row's tf map (every distinct term with its weighted count). It
is a projection like any other, rebuilt by ``hotline replay knowledge``; the projection
also keeps what ranking needs about the whole collection: per language the number of
rows and their total lengths (``rm_knowledge_stats``) and per term the number of rows
holding it (``rm_knowledge_terms``: document frequencies). What finds rows differs by store:

* SQLite: an FTS5 table over the token columns (external content, kept in sync by
  triggers), created with the table;
* PostgreSQL: a GIN index on ``to_tsvector('simple', title_tokens || ' ' || body_tokens)``.

Both are given the same analysed terms and return exactly the rows containing any of
them. Ranking (BM25F: title and tags weigh more than the body) is max-score top-k: terms
are taken rarest first, the database scores the rows holding them with plain double
arithmetic on integers both stores hold alike (term counts from the tf map, lengths,
document frequencies), and the loop stops as soon as the terms left could not lift any
other row into the top k. SQLite and PostgreSQL therefore rank identically, and only a
bounded part of the candidates is ever scored (see :func:`rank`).
"""

from __future__ import annotations

import difflib
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.envelope import Envelope
from domain.knowledge.aggregate import CONTENT_FIELDS
from domain.knowledge.aggregate import KnowledgeArticle as KA
from domain.knowledge.aggregate import KnowledgeSearch as KS
from projections import knowledge_text as text
from projections.base import Projection, Rows, UtcDateTime

projection = Projection("knowledge", version=text.ANALYSIS_VERSION)

ARTICLES = projection.table(
    "knowledge_articles",
    sa.Column("article_id", sa.String(36), primary_key=True),
    sa.Column("status", sa.String(12), index=True),
    sa.Column("revision", sa.Integer),
    sa.Column("published_revision", sa.Integer),
    sa.Column("owner", sa.String(100)),
    sa.Column("titles", sa.JSON),  # the latest revision's titles by language
    sa.Column("indexed", sa.JSON),  # languages in the search index (published ones)
    sa.Column("created_at", UtcDateTime),
    sa.Column("updated_at", UtcDateTime),
)
REVISIONS = projection.table(
    "knowledge_revisions",
    sa.Column("article_id", sa.String(36), primary_key=True),
    sa.Column("revision", sa.Integer, primary_key=True),
    sa.Column("content", sa.JSON),
    sa.Column("note", sa.Text),
    sa.Column("actor_id", sa.String(100)),
    sa.Column("at", UtcDateTime),
)
INDEX = projection.table(
    "knowledge_index",
    sa.Column("article_id", sa.String(36), primary_key=True),
    sa.Column("language", sa.String(5), primary_key=True),
    sa.Column("revision", sa.Integer),
    # What ranking reads comes first: SQLite then stops reading a long row before its text.
    sa.Column("title_len", sa.Integer),
    sa.Column("body_len", sa.Integer),
    sa.Column("codes", sa.Text),  # problem codes and categories, each wrapped in spaces
    sa.Column("title", sa.Text),  # ties in score go by title
    sa.Column("tf", sa.LargeBinary),  # every distinct term and its weighted count (see TF_HEAD)
    sa.Column("title_tokens", sa.Text),  # title and tags, analysed
    sa.Column("body_tokens", sa.Text),
    sa.Column("body", sa.Text),
)
STATS = projection.table(
    "knowledge_stats",
    sa.Column("language", sa.String(5), primary_key=True),
    sa.Column("docs", sa.Integer),
    sa.Column("title_len", sa.BigInteger),
    sa.Column("body_len", sa.BigInteger),
)
TERMS = projection.table(  # document frequencies: in how many indexed rows of a language a term occurs
    "knowledge_terms",
    sa.Column("language", sa.String(5), primary_key=True),
    sa.Column("term", sa.Text, primary_key=True),
    sa.Column("docs", sa.Integer),
)
SEARCHES = projection.table(
    "knowledge_searches",
    sa.Column("search_id", sa.String(36), primary_key=True),
    sa.Column("at", UtcDateTime, index=True),
    sa.Column("query", sa.Text),
    sa.Column("language", sa.String(5)),
    sa.Column("channel", sa.String(12)),
    sa.Column("trigger", sa.String(12)),
    sa.Column("results", sa.Integer),
    sa.Column("shown", sa.JSON),
    sa.Column("outcome", sa.String(16)),
    sa.Column("article_id", sa.String(36)),
    sa.Column("revision", sa.Integer),
    sa.Column("contact_id", sa.String(36)),
    sa.Column("request_id", sa.String(36)),
)
USAGE = projection.table(
    "knowledge_usage",
    sa.Column("article_id", sa.String(36), primary_key=True),
    sa.Column("opened", sa.Integer),
    sa.Column("used", sa.Integer),
    sa.Column("deflected", sa.Integer),
)

TITLE_WEIGHT = 3  # a title (or tag) term counts as this many body terms (BM25F)
# The tf map of an index row, bytes: ``TF_HEAD`` then ``|term:c`` for every distinct term,
# ``c`` the weighted count (title x TITLE_WEIGHT + body) as the byte ``ord("0") + count``.
# Bytes, so that both stores find a term's position and read the byte after it without
# decoding UTF-8 (SQLite: instr / substr on a BLOB; PostgreSQL: position / get_byte on bytea).
# The head is zeros: for an absent term (position 0) the byte read falls in it, count 0.
TF_HEAD = b"0" * 48 + b"|"
MAX_TF = ord("|") - 1 - ord("0")  # 75: counts stay below "|" (ASCII, one byte)
K1, B = 1.2, 0.75
FTS = f"{INDEX.name}_fts"
_TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* N* Co M*'"


# ------------------------------------------------------------------ the index's DDL
@sa.event.listens_for(sa.Table, "after_create")
def _text_index(table: sa.Table, connection: Connection, **kw: Any) -> None:
    """FTS5 (SQLite) or GIN (PostgreSQL) on the index table, and on its replay copy
    (``rm_knowledge_index__rebuild``: PostgreSQL renames it and its index into place;
    SQLite copies its rows into the original table, whose triggers index them)."""
    if table.name not in (INDEX.name, INDEX.name + "__rebuild"):
        return
    name = table.name
    if connection.dialect.name == "sqlite":
        if name != INDEX.name:
            return
        fts = f"{name}_fts"
        columns = "rowid, title_tokens, body_tokens"
        forget = f'INSERT INTO "{fts}"("{fts}", {columns}) VALUES (\'delete\', old.rowid, old.title_tokens, old.body_tokens);'
        for sql in (
            f'DROP TABLE IF EXISTS "{fts}"',
            f"CREATE VIRTUAL TABLE \"{fts}\" USING fts5(title_tokens, body_tokens, content='{name}', content_rowid='rowid', "
            f'tokenize="{_TOKENIZER}")',
            f'CREATE TRIGGER IF NOT EXISTS "{name}_ai" AFTER INSERT ON "{name}" BEGIN '
            f'INSERT INTO "{fts}"(rowid, title_tokens, body_tokens) VALUES (new.rowid, new.title_tokens, new.body_tokens); END',
            f'CREATE TRIGGER IF NOT EXISTS "{name}_ad" AFTER DELETE ON "{name}" BEGIN {forget} END',
            f'CREATE TRIGGER IF NOT EXISTS "{name}_au" AFTER UPDATE ON "{name}" BEGIN '
            f"{forget} "
            f'INSERT INTO "{fts}"(rowid, title_tokens, body_tokens) VALUES (new.rowid, new.title_tokens, new.body_tokens); END',
            f'INSERT INTO "{fts}"("{fts}") VALUES (\'rebuild\')',
        ):
            connection.exec_driver_sql(sql)
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS \"{name}_tsv\" ON \"{name}\" USING gin (to_tsvector('simple', title_tokens || ' ' || body_tokens))"
        )
        # Ranking reads the tf map of every candidate, several times per row: kept in the row
        # uncompressed (the long texts are compressed or moved out of line first), or every
        # reading decompresses it again (3x slower at 10,000 articles).
        connection.exec_driver_sql(f'ALTER TABLE "{name}" ALTER COLUMN tf SET STORAGE MAIN')


# ------------------------------------------------------------------ handlers
def _wrap(values: Sequence[str]) -> str:
    return "".join(f" {v} " for v in values)


def _stats(rows: Rows, language: str, docs: int, title_len: int, body_len: int) -> None:
    row = rows.get(STATS.name, language) or {"language": language, "docs": 0, "title_len": 0, "body_len": 0}
    row["docs"] += docs
    row["title_len"] += title_len
    row["body_len"] += body_len
    rows.put(STATS.name, row)


def _document_frequencies(rows: Rows, row: dict[str, Any], change: int) -> None:
    """Counts the index row's distinct terms in (``change`` = 1) or out (-1) of TERMS."""
    language = row["language"]
    terms = sorted(set(row["title_tokens"].split()) | set(row["body_tokens"].split()))
    rows.read_ahead(TERMS.name, [(language, term) for term in terms])
    for term in terms:
        known = rows.get(TERMS.name, language, term)
        docs = (known["docs"] if known else 0) + change
        if docs > 0:
            rows.put(TERMS.name, {"language": language, "term": term, "docs": docs})
        elif known is not None:
            rows.delete(TERMS.name, language, term)


def _unindex(rows: Rows, article_id: str, language: str) -> None:
    old = rows.get(INDEX.name, article_id, language)
    if old is not None:
        rows.delete(INDEX.name, article_id, language)
        _stats(rows, language, -1, -old["title_len"], -old["body_len"])
        _document_frequencies(rows, old, -1)


def index_row(article_id: str, language: str, revision: int, content: dict[str, Any]) -> dict[str, Any]:
    """The index row of one language of one revision (also what the benchmark measures)."""
    t = content["translations"][language]
    title = text.analyze(t["title"], language) + text.analyze(" ".join(content.get("tags") or ()), language)
    body = text.analyze(t["body"], language)
    counts = Counter(body)
    for term in title:
        counts[term] += TITLE_WEIGHT
    return {
        "article_id": article_id,
        "language": language,
        "revision": revision,
        "title": t["title"],
        "body": t["body"],
        "codes": _wrap([*(content.get("problem_codes") or ()), *(content.get("categories") or ())]),
        "tf": TF_HEAD + b"|".join(f"{term}:{chr(ord('0') + min(n, MAX_TF))}".encode() for term, n in counts.items()) + b"|",
        "title_tokens": text.joined(title),
        "body_tokens": text.joined(body),
        "title_len": len(title),
        "body_len": len(body),
    }


def _index(rows: Rows, article: dict[str, Any], revision: int, content: dict[str, Any]) -> None:
    article_id = article["article_id"]
    languages = sorted(content["translations"])
    for language in set(article.get("indexed") or ()) - set(languages):
        _unindex(rows, article_id, language)
    for language in languages:
        _unindex(rows, article_id, language)
        row = index_row(article_id, language, revision, content)
        rows.put(INDEX.name, row)
        _stats(rows, language, 1, row["title_len"], row["body_len"])
        _document_frequencies(rows, row, 1)
    article["indexed"] = languages


def _titles(content: dict[str, Any]) -> dict[str, str]:
    return {lang: t["title"] for lang, t in content["translations"].items()}


def _revision(env: Envelope, rows: Rows, revision: int, note: str | None) -> dict[str, Any]:
    content = {f: env.data[f] for f in CONTENT_FIELDS}
    rows.put(
        REVISIONS.name,
        {
            "article_id": env.aggregate_id,
            "revision": revision,
            "content": content,
            "note": note,
            "actor_id": env.meta.get("actor_id"),
            "at": env.time,
        },
    )
    return content


@projection.on(KA.Drafted)
def drafted(env: Envelope, rows: Rows) -> None:
    content = _revision(env, rows, 1, None)
    rows.put(
        ARTICLES.name,
        {
            "article_id": env.aggregate_id,
            "status": "draft",
            "revision": 1,
            "published_revision": None,
            "owner": env.data["owner"],
            "titles": _titles(content),
            "indexed": [],
            "created_at": env.time,
            "updated_at": env.time,
        },
    )


def _article(env: Envelope, rows: Rows) -> dict[str, Any] | None:
    row = rows.get(ARTICLES.name, env.aggregate_id)
    if row is not None:
        row["updated_at"] = env.time
    return row


@projection.on(KA.Reviewed)
def reviewed(env: Envelope, rows: Rows) -> None:
    if (a := _article(env, rows)) is not None:
        a["status"] = "reviewed"
        rows.put(ARTICLES.name, a)


@projection.on(KA.Published)
def published(env: Envelope, rows: Rows) -> None:
    a = _article(env, rows)
    rev = rows.get(REVISIONS.name, env.aggregate_id, env.data["revision"])
    if a is None or rev is None:
        return
    a["status"], a["published_revision"] = "published", env.data["revision"]
    _index(rows, a, env.data["revision"], rev["content"])
    rows.put(ARTICLES.name, a)


@projection.on(KA.Revised)
def revised(env: Envelope, rows: Rows) -> None:
    revision = env.data["revision"]
    content = _revision(env, rows, revision, env.data.get("note"))
    a = _article(env, rows)
    if a is None:
        return
    a["revision"], a["titles"] = revision, _titles(content)
    if a["status"] == "published":
        a["published_revision"] = revision
        _index(rows, a, revision, content)
    else:
        a["status"] = "draft"
    rows.put(ARTICLES.name, a)


@projection.on(KA.Retired)
def retired(env: Envelope, rows: Rows) -> None:
    a = _article(env, rows)
    if a is None:
        return
    for language in a.get("indexed") or ():
        _unindex(rows, env.aggregate_id, language)
    a["status"], a["indexed"] = "retired", []
    rows.put(ARTICLES.name, a)


@projection.on(KS.SearchPerformed)
def search_performed(env: Envelope, rows: Rows) -> None:
    d = env.data
    rows.put(
        SEARCHES.name,
        {
            "search_id": env.aggregate_id,
            "at": env.time,
            "query": d["query"],
            "language": d["language"],
            "channel": d["channel"],
            "trigger": d["trigger"],
            "results": d["results"],
            "shown": d["shown"],
            "outcome": None,
            "article_id": None,
            "revision": None,
            "contact_id": d["contact_id"],
            "request_id": d["request_id"],
        },
    )


def _usage(rows: Rows, article_id: str | None, field: str) -> None:
    if not article_id:
        return
    row = rows.get(USAGE.name, article_id) or {"article_id": article_id, "opened": 0, "used": 0, "deflected": 0}
    row[field] += 1
    rows.put(USAGE.name, row)


def _outcome(env: Envelope, rows: Rows, outcome: str) -> None:
    row = rows.get(SEARCHES.name, env.aggregate_id)
    if row is not None:
        row.update(outcome=outcome, article_id=env.data.get("article_id"), revision=env.data.get("revision"))
        rows.put(SEARCHES.name, row)


@projection.on(KS.ArticleOpened)
def article_opened(env: Envelope, rows: Rows) -> None:
    _usage(rows, env.data["article_id"], "opened")


@projection.on(KS.UsedToAnswer)
def used_to_answer(env: Envelope, rows: Rows) -> None:
    _usage(rows, env.data["article_id"], "used")
    _outcome(env, rows, "answered")


@projection.on(KS.Deflected)
def deflected(env: Envelope, rows: Rows) -> None:
    _usage(rows, env.data.get("article_id"), "deflected")
    _outcome(env, rows, "deflected")


@projection.on(KS.NoGoodAnswer)
def no_good_answer(env: Envelope, rows: Rows) -> None:
    _outcome(env, rows, "no_good_answer")


# ------------------------------------------------------------------ queries
# Terms are scored in batches, rarest first, while their document frequencies add up to this.
BATCH_DOCS = 200


def _found(conn: Connection, terms: Sequence[str], exclude: Sequence[str], params: dict[str, Any]) -> str:
    """The SQL condition "the row holds one of ``terms`` and none of ``exclude``": FTS5 on
    SQLite, the GIN index on PostgreSQL; both only ever see whole analysed tokens."""
    if conn.dialect.name == "postgresql":
        wanted, unwanted = (" | ".join(f"'{t}'" for t in ts) for ts in (terms, exclude))
        params["m"] = f"({wanted}) & !({unwanted})" if exclude else wanted
        return "to_tsvector('simple', i.title_tokens || ' ' || i.body_tokens) @@ to_tsquery('simple', :m)"
    wanted, unwanted = (" OR ".join(f'"{t}"' for t in ts) for ts in (terms, exclude))
    params["m"] = f"({wanted}) NOT ({unwanted})" if exclude else wanted
    return f'i.rowid IN (SELECT rowid FROM "{FTS}" WHERE "{FTS}" MATCH :m)'


def _top(
    conn: Connection,
    weights: dict[str, float],
    batch: Sequence[str],
    done: Sequence[str],
    language: str,
    codes: Sequence[str],
    limit: int,
    norm: tuple[float, float],
) -> list[tuple[str, float, str]]:
    """(article id, score, title) of the best ``limit`` rows of ``language`` holding a term of
    ``batch`` and none of ``done``, scored by the database (BM25F over every query term).

    The score is plain IEEE double arithmetic (+, -, *, / on the same operands in the same
    order), which SQLite and PostgreSQL evaluate bit for bit alike: a term's weighted count
    ``f`` (title ×TITLE_WEIGHT + body: the byte after ``|term:`` in the row's tf map),
    its weight ``w = idf × (K1 + 1)``, the row's length norm ``n = K1 (1 - B + B len / avg)``,
    and ``w × (1 - n / (f + n))`` (= ``w f / (f + n)``, with ``f`` evaluated once)."""
    postgres = conn.dialect.name == "postgresql"
    find = "strpos" if postgres else "instr"  # the same function on text: 1-based position, 0 if absent
    params: dict[str, Any] = {"lang": language, "k": limit, "c1": norm[0], "c2": norm[1]}
    n = f"(:c1 + :c2 * ({TITLE_WEIGHT} * i.title_len + i.body_len))"
    parts = []
    for j, (term, weight) in enumerate(weights.items()):
        key = f"|{term}:".encode()
        params[f"p{j}"], params[f"w{j}"] = key, weight
        # The weighted count: the byte after "|term:" in the row's tf map (in TF_HEAD if absent).
        at = f"position(:p{j} in i.tf)" if postgres else f"instr(i.tf, :p{j})"
        if postgres:
            f = f"(get_byte(i.tf, {at} + {len(key) - 1}) - 48)"
        else:
            f = f"(unicode(CAST(substr(i.tf, {at} + {len(key)}, 1) AS TEXT)) - 48)"
        if len(key) >= len(TF_HEAD):  # a very long term: the head is too short to catch it
            f = f"CASE WHEN {at} > 0 THEN {f} ELSE 0 END"
        parts.append(f":w{j} * (1 - {n} / ({f} + {n}))")
    score = f"({' + '.join(parts)})"
    if codes:
        params.update({f"x{j}": f" {c} " for j, c in enumerate(codes)})
        score += f" * CASE WHEN {' OR '.join(f'{find}(i.codes, :x{j}) > 0' for j in range(len(codes)))} THEN 1.5 ELSE 1 END"
    holding = _found(conn, batch, done, params)
    # Ties: by title, then id, compared as code points on both stores.
    order = 'i.title COLLATE "C", i.article_id COLLATE "C"' if postgres else "i.title, i.article_id"
    # PostgreSQL: "language || ''" keeps the planner from AND-ing the GIN bitmap with a scan
    # of the primary key for the language (a quarter of the table: 3 ms at 10,000 articles).
    language_is = "i.language || '' = :lang" if postgres else "i.language = :lang"
    sql = (
        f"SELECT i.article_id, {score} AS s, i.title FROM {INDEX.name} i "
        f"WHERE {holding} AND {language_is} ORDER BY s DESC, {order} LIMIT :k"
    )
    return [(r[0], float(r[1]), r[2] or "") for r in conn.execute(sa.text(sql), params)]


def rank(
    conn: Connection, terms: list[str], language: str, codes: Sequence[str] = (), limit: int = 5, trace: dict[str, int] | None = None
) -> list[tuple[str, float]]:
    """(article id, score) of the best ``limit`` articles of ``language``, best first (ties: by
    title, then id): BM25F, an article answering one of ``codes`` (problem codes, categories) ×1.5.

    Max-score top-k, as search engines do it: the document frequencies kept by the
    projection (TERMS, STATS) give every term its weight, and a term can add less than its
    weight to any score. Terms are taken rarest first; the database scores the rows holding
    them (and none of the terms already taken) and returns the best ``limit``; once the
    ``limit``-th best score exceeds what the terms not yet taken could add together, no
    other row can enter and the common terms' long lists are never read. The result is
    exact (the same top ``limit`` as scoring every candidate)."""
    if not terms or limit <= 0:
        return []
    # One statement: the language's totals (term "") and the query terms' document frequencies.
    zero = sa.literal(0, sa.BigInteger)
    known = conn.execute(
        sa.union_all(
            sa.select(sa.literal("", sa.Text), STATS.c.docs, STATS.c.title_len, STATS.c.body_len).where(STATS.c.language == language),
            sa.select(TERMS.c.term, TERMS.c.docs, zero, zero).where(TERMS.c.language == language, TERMS.c.term.in_(terms)),
        )
    ).all()
    stats = next((r[1:] for r in known if r[0] == ""), None)
    df = {r[0]: int(r[1]) for r in known if r[0]}
    present = sorted((df[t], t) for t in terms if df.get(t))
    if stats is None or not stats[0] or not present:
        return []
    n_docs = max(int(stats[0]), present[-1][0])
    avg_len = (TITLE_WEIGHT * stats[1] + stats[2]) / stats[0] or 1.0
    norm = (K1 * (1 - B), K1 * B / avg_len)
    # In the query's order, so that every batch sums the same terms in the same order.
    weights = {t: math.log(1 + (n_docs - df[t] + 0.5) / (df[t] + 0.5)) * (K1 + 1) for t in terms if df.get(t)}
    boost = 1.5 if codes else 1.0
    best: list[tuple[str, float, str]] = []
    done: list[str] = []
    i = scored = batches = 0
    while i < len(present):
        batches += 1
        batch, docs = [present[i][1]], present[i][0]
        i += 1
        while i < len(present) and docs + present[i][0] <= BATCH_DOCS:
            batch.append(present[i][1])
            docs += present[i][0]
            i += 1
        top = _top(conn, weights, batch, done, language, codes, limit, norm)
        best = sorted([*best, *top], key=lambda s: (-s[1], s[2], s[0]))[:limit]
        done.extend(batch)
        scored += docs
        rest = boost * sum(weights[t] for _, t in present[i:])
        if len(best) == limit and best[-1][1] > rest * (1 + 1e-9) + 1e-12:
            break
    if trace is not None:
        trace["postings"] = sum(d for d, _ in present)  # what scoring every candidate would read
        trace["scored"] = scored  # the postings of the terms taken: at most this many rows scored
        trace["statements"] = 1 + batches
    return [(article_id, score) for article_id, score, _ in best]


def search(
    conn: Connection, query: str, language: str | None, limit: int = 5, codes: Sequence[str] = ()
) -> tuple[list[dict[str, Any]], str | None]:
    """The best ``limit`` published articles for ``query``, with a highlighted snippet; and the
    language searched (guessed from the script when not given; Latin text tries it and en)."""
    languages = [language] if language else ([g] if (g := text.guess_language(query)) else ["it", "en"])
    ranked: list[tuple[float, str, str, list[str]]] = []
    for lang in languages:
        terms = text.query_terms(query, lang)
        ranked.extend((score, article_id, lang, terms) for article_id, score in rank(conn, terms, lang, codes, limit))
    if not ranked:
        # Nothing at all: perhaps a typo. Retry with each unknown word replaced by the
        # closest word of the index (cheap: only now, and among words of its first letters).
        for lang in languages:
            fixed = corrected_terms(conn, text.query_terms(query, lang), lang)
            if fixed is not None:
                ranked.extend((score, article_id, lang, fixed) for article_id, score in rank(conn, fixed, lang, codes, limit))
    ranked.sort(key=lambda r: -r[0])  # stable: ties keep each language's order
    seen: set[str] = set()
    top = []
    for r in ranked:
        if r[1] not in seen:
            seen.add(r[1])
            top.append(r)
        if len(top) == limit:
            break
    if not top:
        return [], languages[0] if len(languages) == 1 else language
    # By article id (the primary key's first column): a tuple IN scanned the whole table on SQLite.
    found = {
        (row["article_id"], row["language"]): row
        for row in conn.execute(
            sa.select(INDEX.c.article_id, INDEX.c.language, INDEX.c.revision, INDEX.c.title, INDEX.c.body).where(
                INDEX.c.article_id.in_([r[1] for r in top]), INDEX.c.language.in_(languages)
            )
        ).mappings()
    }
    results = []
    for score, article_id, lang, terms in top:
        row = found.get((article_id, lang))
        if row is None:  # retired between the two statements
            continue
        results.append(
            {
                "id": article_id,
                "language": lang,
                "revision": row["revision"],
                "title": row["title"],
                "snippet": text.highlight(row["body"], lang, terms),
                "score": round(score, 9),
            }
        )
    return results, top[0][2] if len(languages) > 1 else languages[0]


TYPO_LANGUAGES = ("it", "en", "ar")  # alphabetic scripts; a Chinese "typo" is another character
TYPO_MIN_LENGTH = 4  # shorter words have too many neighbours to guess from
TYPO_CUTOFF = 0.79  # difflib's ratio a correction needs (one slip in a word of five or more)


def corrected_terms(conn: Connection, terms: list[str], language: str) -> list[str] | None:
    """``terms`` with each word the index does not know replaced by the index's closest word
    with the same first two letters; None when nothing changes.

    Terms are stems, and a misspelt word often keeps its ending (``riscaldamneto`` stems to
    ``riscaldamnet``, the index has ``riscald``): a candidate is compared with the whole
    term and with the term's start of the candidate's length (plus two), the better counts."""
    if language not in TYPO_LANGUAGES or not terms:
        return None
    known = set(conn.execute(sa.select(TERMS.c.term).where(TERMS.c.language == language, TERMS.c.term.in_(terms))).scalars())
    fixed, changed = [], False
    for term in terms:
        if term in known or len(term) < TYPO_MIN_LENGTH:
            fixed.append(term)
            continue
        head = term[:2]
        # The primary key (language, term) serves this range; the length bound keeps it small.
        candidates = conn.execute(
            sa.select(TERMS.c.term).where(
                TERMS.c.language == language,
                TERMS.c.term >= head,
                TERMS.c.term < head + "\U0010ffff",
                sa.func.length(TERMS.c.term).between(TYPO_MIN_LENGTH, len(term) + 2),
            )
        ).scalars()
        best, best_score = None, TYPO_CUTOFF
        for candidate in sorted(candidates):  # sorted: the same choice on both stores
            score = max(_similarity(term, candidate), _similarity(term[: len(candidate) + 2], candidate))
            if score > best_score or (score == best_score and best is not None and len(candidate) > len(best)):
                best, best_score = candidate, score
        fixed.append(best or term)
        changed = changed or best is not None
    return fixed if changed else None


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def article(conn: Connection, article_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(ARTICLES).where(ARTICLES.c.article_id == article_id)).mappings().first()
    return dict(row) if row is not None else None


def revision(conn: Connection, article_id: str, number: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(REVISIONS).where(REVISIONS.c.article_id == article_id, REVISIONS.c.revision == number)).mappings().first()
    return dict(row) if row is not None else None


def revisions(conn: Connection, article_id: str) -> list[dict[str, Any]]:
    q = sa.select(REVISIONS.c.revision, REVISIONS.c.note, REVISIONS.c.actor_id, REVISIONS.c.at).where(REVISIONS.c.article_id == article_id)
    return [dict(r) for r in conn.execute(q.order_by(REVISIONS.c.revision)).mappings()]


def by_codes(conn: Connection, codes: Sequence[str], language: str | None, limit: int) -> list[dict[str, Any]]:
    """Published articles answering any of ``codes`` (problem codes or categories): the first
    ``limit`` by id, each in its first language (or ``language``)."""
    if not codes or limit <= 0:
        return []
    q = sa.select(INDEX.c.article_id, INDEX.c.language).where(sa.or_(*[INDEX.c.codes.contains(f" {c} ") for c in codes]))
    if language:
        q = q.where(INDEX.c.language == language)
    # An article has at most one row per language: its first ``limit`` lie in these rows.
    q = q.order_by(INDEX.c.article_id, INDEX.c.language).limit(limit * (1 if language else len(text.LANGUAGES)))
    chosen: dict[str, str] = {}
    for article_id, lang in conn.execute(q):
        chosen.setdefault(article_id, lang)
    chosen = dict(list(chosen.items())[:limit])
    if not chosen:
        return []
    rows = {
        r["article_id"]: r
        for r in conn.execute(
            sa.select(INDEX.c.article_id, INDEX.c.language, INDEX.c.revision, INDEX.c.title, INDEX.c.body).where(
                INDEX.c.article_id.in_(list(chosen)), INDEX.c.language.in_(set(chosen.values()))
            )
        ).mappings()
        if chosen[r["article_id"]] == r["language"]
    }
    return [
        {
            "id": r["article_id"],
            "language": r["language"],
            "revision": r["revision"],
            "title": r["title"],
            "snippet": text.highlight(r["body"], r["language"], []),
            "score": 0.0,
        }
        for article_id in chosen
        if (r := rows.get(article_id)) is not None
    ]


def unanswered(conn: Connection, language: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The queries most often left without an answer (nothing shown, or "no good answer")."""
    q = sa.select(SEARCHES.c.language, SEARCHES.c.query, sa.func.count().label("searches")).where(
        sa.or_(SEARCHES.c.results == 0, SEARCHES.c.outcome == "no_good_answer")
    )
    if language:
        q = q.where(SEARCHES.c.language == language)
    q = q.group_by(SEARCHES.c.language, SEARCHES.c.query).order_by(sa.desc("searches"), SEARCHES.c.query).limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def usage(conn: Connection, article_id: str) -> dict[str, Any]:
    row = conn.execute(sa.select(USAGE).where(USAGE.c.article_id == article_id)).mappings().first()
    return dict(row) if row is not None else {"article_id": article_id, "opened": 0, "used": 0, "deflected": 0}


def suggest(
    conn: Connection, text_: str, language: str | None, limit: int, codes: Sequence[str] = ()
) -> tuple[list[dict[str, Any]], str | None]:
    """Articles for a case or a contact: a search of its text favouring its categories,
    else the articles that answer its problem code or category."""
    results, searched = search(conn, text_, language, limit, codes) if text_.strip() else ([], language)
    if not results:
        results = by_codes(conn, codes, language, limit)
    return results, searched
