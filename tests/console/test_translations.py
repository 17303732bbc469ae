"""Every label of the console is translated into each of its languages.

The messages are extracted the way a translator's tool would (Babel's extractors: the
Jinja2 templates, and ``N_``/``_`` in the console's Python), then looked up in each
language's catalogues. A screen area (``desk``: ``desk.py`` and ``templates/desk/``)
reads its own catalogue (``locales/<lang>/desk.po``) first, then ``common.po``: each of
its labels must be in one of the two. A missing or empty translation fails with the list
of what is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from api.console.web import HERE, LANGUAGES

METHODS = [("templates/**.html", "jinja2"), ("**.py", "python")]
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def console_messages() -> dict[str, str]:
    """msgid → where it is used first."""
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        HERE, method_map=METHODS, keywords=KEYWORDS, options_map=OPTIONS
    ):
        for text in message if isinstance(message, tuple) else (message,):
            if text:
                found.setdefault(text, f"{filename}:{lineno}")
    return found


def area_of(where: str) -> str:
    """``templates/desk/_x.html:3`` and ``desk.py:10`` → desk; the rest is common."""
    path = where.split(":", 1)[0]
    if path.startswith("templates/") and path.count("/") >= 2:
        return path.split("/")[1]
    stem = path.removesuffix(".py")
    return stem if (HERE / "templates" / stem).is_dir() else "common"


def translated(language: str, *areas: str) -> dict[str, str]:
    known: dict[str, str] = {}
    for area in areas:
        po = HERE / "locales" / language / f"{area}.po"
        if not po.is_file():
            continue
        with po.open("rb") as f:
            for message in read_po(f, locale=language):
                if message.id and isinstance(message.id, str) and message.string:
                    known.setdefault(message.id, str(message.string))
                elif isinstance(message.id, tuple) and isinstance(message.string, tuple) and all(message.string):
                    for text in message.id:  # a plural: every form translated
                        known.setdefault(text, str(message.string[0]))
    return known


def console_messages_by_area() -> dict[str, dict[str, str]]:
    """area → {msgid: where}, every place a message is used counting for its area."""
    found: dict[str, dict[str, str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        HERE, method_map=METHODS, keywords=KEYWORDS, options_map=OPTIONS
    ):
        for text in message if isinstance(message, tuple) else (message,):
            if text:
                where = f"{filename}:{lineno}"
                found.setdefault(area_of(where), {}).setdefault(text, where)
    return found


def test_messages_are_found() -> None:
    messages = console_messages()
    assert "Sign in" in messages and "Wallboard" in messages, "the extraction no longer sees the templates"


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_every_message_is_translated_for_its_area(language: str) -> None:
    missing: dict[str, str] = {}
    for area, messages in console_messages_by_area().items():
        known = translated(language, area, "common")
        missing.update({m: where for m, where in messages.items() if m not in known})
    listing = "\n".join(f"  {where}: {m!r}" for m, where in sorted(missing.items(), key=lambda kv: kv[1]))
    assert not missing, f"{len(missing)} labels have no {language} translation (api/console/locales/{language}/):\n{listing}"


def test_catalogues_parse_and_name_their_language() -> None:
    for language in LANGUAGES:
        for po in (HERE / "locales" / language).glob("*.po"):
            with po.open("rb") as f:
                catalog = read_po(f, locale=language)
            assert Path(po).stem, po
            assert str(catalog.locale).startswith(language), po


def test_no_two_scripts_share_a_translation() -> None:
    """Chinese and Arabic are written in scripts of their own: a label translated the same
    in both is a copy slip (once, a Python dict of every language pasted as each one's)."""
    areas = {po.stem for po in (HERE / "locales" / "zh").glob("*.po")}
    zh, ar = (translated(language, *areas) for language in ("zh", "ar"))
    same = {m: t for m, t in zh.items() if ar.get(m) == t and any(ch.isalpha() for ch in t)}
    assert not same, same
