"""Text analysis of the knowledge base: ONE module, used to index articles and to read queries.

Whatever store holds the index (SQLite FTS5 in embedded mode, a PostgreSQL GIN index in
distributed mode), it only ever sees the tokens made here, joined by spaces, so both
stores find the same articles for the same query.

Every word goes through:

1. Unicode NFKC (full-width forms, ligatures, presentation forms) and case folding.
2. Mark removal (NFD, drop combining marks, NFC): accents (``città`` → ``citta``) and
   Arabic vowel marks (tashkeel); hamza carried on alef/waw/yeh decomposes into a mark, so
   ``أ إ آ`` → ``ا``, ``ؤ`` → ``و``, ``ئ`` → ``ي`` with it. Tatweel is dropped.
3. Per script:
   * Arabic: alef wasla → alef, alef maksura → yeh, teh marbuta → heh, then a light
     stemmer (Light10: the conjunction و, the article ال and its prefixed forms, and the
     common suffixes) so ``البطاقة`` / ``بطاقة`` / ``بطاقه`` meet.
   * Latin: Snowball stemming (PyStemmer) in the document's or query's language, English
     for Latin words inside Chinese or Arabic text.
   * Chinese (Han): traditional → simplified (OpenCC ``t2s``), then rjieba's search-mode
     segmentation *and* every character bigram of the run, so a two-character query
     (``路灯``, ``停水``) finds its word however the sentence around it was segmented.
4. Stop words (a few per language) are dropped: they would only make every article a
   candidate.

Tokens only contain letters and digits (``str.isalnum``), which both FTS5's ``unicode61``
tokenizer and PostgreSQL's default parser keep whole.
"""

# ruff: noqa: SIM905
from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Iterator

import rjieba
import Stemmer

try:  # OpenCC's wheel carries its dictionaries; without it traditional text is kept as is.
    import opencc

    _T2S = opencc.OpenCC("t2s")

    def to_simplified(text: str) -> str:
        return str(_T2S.convert(text))

except Exception:  # pragma: no cover

    def to_simplified(text: str) -> str:
        return text


LANGUAGES = ("zh", "ar", "it", "en")
# Bumped whenever the analysis changes: the index must then be rebuilt (hotline replay knowledge).
ANALYSIS_VERSION = 1

_STEMMERS = {"it": "italian", "en": "english"}

_STOP = {
    "en": set(
        "a an the and or of to in on at for by with from is are was were be been am do does did i you he she it we they me my "
        "your our their this that these those what which who how when where why can could should would will not no yes there "
        "here about as if so than then too very please hi hello".split()
    ),
    "it": set(
        "il lo la i gli le un uno una l un di a da in con su per tra fra e ed o od del dello della dei degli delle al allo alla "
        "ai agli alle dal dallo dalla dai dagli dalle nel nello nella nei negli nelle sul sullo sulla sui sugli sulle dell all "
        "dall nell sull che chi cui non si mi ti ci vi ne io tu lui lei noi voi loro mio mia miei mie è e sono ho ha hanno come "
        "cosa dove quando perché perche quale quali questo questa quello quella buongiorno salve".split()
    ),
    "ar": set("في من على الى إلى عن مع او أو ثم هل ما ماذا كيف اين أين متى لا نعم هذا هذه ذلك تلك التي الذي انا أنا انت هو هي نحن".split()),
    "zh": set(
        "的 了 是 我 你 他 她 它 们 我们 在 吗 呢 吧 啊 和 与 及 或 就 都 也 还 有 没 没有 这 那 个 "
        "请问 请 一下 怎么 怎么办 什么 如何 哪里 为什么".split()
    ),
}

# Particles that make a character bigram noise (的路 in 门口的路灯).
_PARTICLES = set("的了吗呢吧啊")

# A "word" of the source text: letters, digits and the marks inside them (tashkeel, accents).
_WORD = re.compile(r"[^\W_]+(?:[\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]+[^\W_]*)*")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]+")
_ARABIC_LETTER = re.compile(r"[\u0600-\u06ff\u0750-\u077f]")
_ARABIC_FOLD = str.maketrans({"ٱ": "ا", "ى": "ي", "ة": "ه", "\u0640": None, "ی": "ي", "ک": "ك"})
_AR_PREFIXES = ("وال", "بال", "كال", "فال", "لل", "ال")
_AR_SUFFIXES = ("ها", "ان", "ات", "ون", "ين", "يه", "ه", "ي")


def _normalize(word: str) -> str:
    word = unicodedata.normalize("NFKC", word).casefold()
    decomposed = unicodedata.normalize("NFD", word)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", stripped).translate(_ARABIC_FOLD)


def _arabic_stem(word: str) -> str:
    """Light10 (Larkey et al.): light prefix and suffix stripping, no root extraction."""
    if len(word) >= 4 and word.startswith("و"):
        word = word[1:]
    for p in _AR_PREFIXES:
        if word.startswith(p) and len(word) - len(p) >= 2:
            word = word[len(p) :]
            break
    for s in _AR_SUFFIXES:
        if word.endswith(s) and len(word) - len(s) >= 2:
            word = word[: -len(s)]
    return word


@functools.lru_cache(maxsize=8)
def _stemmer(language: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(_STEMMERS.get(language, "english"))


@functools.lru_cache(maxsize=200_000)
def _word_token(word: str, language: str) -> str | None:
    """The token of one non-Han word, or None for a stop word."""
    w = _normalize(word)
    w = "".join(ch for ch in w if ch.isalnum())
    if not w:
        return None
    if _ARABIC_LETTER.search(w):
        if w in _STOP["ar"]:
            return None
        return _arabic_stem(w)
    if w in _STOP.get(language, ()) or (w in _STOP["en"] and language not in ("it",)):
        return None
    if w.isdigit():
        return w
    return str(_stemmer(language if language in _STEMMERS else "en").stemWord(w))


def _han_tokens(run: str) -> list[str]:
    run = to_simplified(run)
    tokens = [w for w in rjieba.cut_for_search(run) if w not in _STOP["zh"] and w.strip()]
    tokens.extend(b for i in range(len(run) - 1) if not (_PARTICLES & set(b := run[i : i + 2])))
    if len(run) == 1 and run not in _STOP["zh"] and run not in tokens:
        tokens.append(run)
    return tokens


def _segments(text: str) -> Iterator[tuple[int, int, bool]]:
    """(start, end, is_han) of the text's words, Han runs kept whole."""
    for m in _WORD.finditer(text):
        start = m.start()
        word = m.group()
        pos = 0
        for h in _HAN.finditer(word):
            if h.start() > pos:
                yield start + pos, start + h.start(), False
            yield start + h.start(), start + h.end(), True
            pos = h.end()
        if pos < len(word):
            yield start + pos, start + len(word), False


def analyze(text: str, language: str) -> list[str]:
    """The tokens of ``text`` (in ``language``), in order, repeated as often as they occur."""
    tokens: list[str] = []
    for start, end, is_han in _segments(text):
        piece = text[start:end]
        if is_han:
            tokens.extend(_han_tokens(piece))
        else:
            t = _word_token(piece, language)
            if t:
                tokens.append(t)
    return tokens


def query_terms(text: str, language: str) -> list[str]:
    """A query's distinct tokens, in first-seen order (short queries' analysis is cached:
    hotline callers ask the same few hundred questions again and again)."""
    if len(text) > 200:
        return list(dict.fromkeys(analyze(text, language)))
    return list(_query_terms(text, language))


@functools.lru_cache(maxsize=4096)
def _query_terms(text: str, language: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(analyze(text, language)))


def joined(tokens: list[str]) -> str:
    """How tokens are stored: each wrapped in its own spaces (`` a  b ``), so the number of
    times a term occurs is ``(len(s) - len(s.replace(" t ", ""))) / len(" t ")`` in SQL too."""
    return "".join(f" {t} " for t in tokens)


# ------------------------------------------------------------------------- highlighting
def _matches(piece: str, is_han: bool, language: str, terms: set[str]) -> bool:
    if is_han:
        return any(t in terms for t in _han_tokens(piece))
    t = _word_token(piece, language)
    return t is not None and t in terms


def _han_marks(piece: str, terms: set[str]) -> list[tuple[int, int]]:
    """Spans of a Han run (offsets in the run) that a query term covers."""
    simple = to_simplified(piece)
    if len(simple) != len(piece):  # OpenCC changed the length: mark the whole run
        return [(0, len(piece))] if any(t in terms for t in _han_tokens(piece)) else []
    spans = []
    for t in sorted(terms, key=len, reverse=True):
        if not _HAN.fullmatch(t):
            continue
        i = simple.find(t)
        while i >= 0:
            spans.append((i, i + len(t)))
            i = simple.find(t, i + 1)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def highlight(text: str, language: str, terms: list[str], width: int = 160, mark: tuple[str, str] = ("<mark>", "</mark>")) -> str:
    """An HTML snippet of ``text`` around the densest group of query terms, the terms marked."""
    wanted = set(terms)
    hits: list[tuple[int, int]] = []
    for start, end, is_han in _segments(text):
        piece = text[start:end]
        if is_han:
            hits.extend((start + s, start + e) for s, e in _han_marks(piece, wanted))
        elif _matches(piece, False, language, wanted):
            hits.append((start, end))
    if not hits:
        begin, stop = 0, min(len(text), width)
    else:
        best, best_count = hits[0][0], 0
        for i, (s, _) in enumerate(hits):
            count = sum(1 for h in hits[i:] if h[1] <= s + width)
            if count > best_count:
                best, best_count = s, count
        begin = max(0, best - width // 4)
        stop = min(len(text), begin + width)
        # Start at a word boundary (not for Chinese, which has none).
        if begin > 0 and text[begin - 1].isalnum() and not _HAN.match(text[begin]):
            space = text.find(" ", begin, best)
            if space >= 0:
                begin = space + 1
    out: list[str] = ["…" if begin > 0 else ""]
    pos = begin
    for s, e in hits:
        if e <= begin or s >= stop:
            continue
        s, e = max(s, begin), min(e, stop)
        out.append(html.escape(text[pos:s]))
        out.append(mark[0] + html.escape(text[s:e]) + mark[1])
        pos = e
    out.append(html.escape(text[pos:stop]))
    if stop < len(text):
        out.append("…")
    return "".join(out)


def guess_language(text: str) -> str | None:
    """The query's language from its script, when the caller did not say (None: Latin, unknown)."""
    if _HAN.search(text):
        return "zh"
    if _ARABIC_LETTER.search(text):
        return "ar"
    return None
