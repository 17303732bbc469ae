"""Every label of the console is translated into each of its languages.

The messages are extracted the way a translator's tool would (Babel's extractors: the
Jinja2 templates, and ``N_``/``_`` in the console's Python), then looked up in each
language's catalogues (``api/console/locales/<lang>/*.po``). A missing or empty
translation fails with the list of what is missing, per language.
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


def translated(language: str) -> dict[str, str]:
    known: dict[str, str] = {}
    for po in sorted((HERE / "locales" / language).glob("*.po")):
        with po.open("rb") as f:
            for message in read_po(f, locale=language):
                if message.id and isinstance(message.id, str):
                    known.setdefault(message.id, message.string if isinstance(message.string, str) else "")
    return known


def test_messages_are_found() -> None:
    messages = console_messages()
    assert "Sign in" in messages and "Wallboard" in messages, "the extraction no longer sees the templates"


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_every_message_is_translated(language: str) -> None:
    known = translated(language)
    missing = {m: where for m, where in console_messages().items() if not known.get(m)}
    listing = "\n".join(f"  {where}: {m!r}" for m, where in sorted(missing.items(), key=lambda kv: kv[1]))
    assert not missing, f"{len(missing)} labels have no {language} translation (api/console/locales/{language}/):\n{listing}"


def test_catalogues_parse_and_name_their_language() -> None:
    for language in LANGUAGES:
        for po in (HERE / "locales" / language).glob("*.po"):
            with po.open("rb") as f:
                catalog = read_po(f, locale=language)
            assert Path(po).stem, po
            assert str(catalog.locale).startswith(language), po
