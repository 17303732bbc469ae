"""The hotline's catalogue and requests as GeoReport v2 services, definitions and requests.

A problem code is a service (``service_code``); its category is the ``group``; the
fields it collects (``fields_to_collect``) are the service definition's attributes, and
``metadata`` says whether there are any. Names are in the language asked for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, tzinfo
from typing import Any
from urllib.parse import urlsplit

from api.open311.formats import Open311Error
from domain.catalogue.aggregate import LANGUAGES, Catalogue

# The catalogue's field types as Open311 datatypes. A choice or a yes/no is a list of one
# value; a photo is the URL of one, a location an address, both strings.
DATATYPES = {
    "text": "string",
    "number": "number",
    "date": "datetime",
    "choice": "singlevaluelist",
    "boolean": "singlevaluelist",
    "photo": "string",
    "location": "string",
}
DATATYPE_HELP = {
    "number": "a number, e.g. 3 or 2.5",
    "date": "an ISO 8601 date or date-time with its time zone, e.g. 2026-11-30T09:00:00+01:00",
    "photo": "the URL (http or https) of a photo",
    "location": "an address",
}
BOOLEAN_VALUES = {"en": ("Yes", "No"), "it": ("Sì", "No"), "zh": ("是", "否"), "ar": ("نعم", "لا")}
DESCRIPTION_LIMIT = 4000  # the schema's maxLength of a request's description
_ATTRIBUTE = re.compile(r"^attribute\[([^\]]+)\](\[\])?$")


def language_of(locale: str | None, accept_language: str | None, default: str) -> str:
    """The language of the names: ``locale`` (``it``, ``it_IT``, ``zh-CN``), else the
    first of the Accept-Language header's the catalogue has, else the hotline's default."""
    candidates = [locale] if locale else []
    if accept_language:
        ranked = []
        for n, part in enumerate(accept_language.split(",")):
            tag, _, weight = part.strip().partition(";q=")
            try:
                q = float(weight) if weight else 1.0
            except ValueError:
                q = 0.0
            ranked.append((-q, n, tag.strip()))
        candidates += [tag for _, _, tag in sorted(ranked)]
    for candidate in candidates:
        lang = re.split(r"[-_]", candidate.strip().lower(), maxsplit=1)[0]
        if lang in LANGUAGES:
            return lang
    return default if default in LANGUAGES else "en"


def active_codes(catalogue: Catalogue) -> Iterable[tuple[str, dict[str, Any]]]:
    """The problem codes a client may report: active, under an active category."""
    for code, problem in catalogue.problem_codes.items():
        category = catalogue.categories.get(problem["category_id"])
        if problem["active"] and category is not None and category["active"]:
            yield code, problem


def service_of(catalogue: Catalogue, code: str | None) -> dict[str, Any] | None:
    if code is None:
        return None
    return dict(active_codes(catalogue)).get(code)


def services(catalogue: Catalogue, lang: str) -> list[dict[str, Any]]:
    found = []
    for code, problem in active_codes(catalogue):
        category = catalogue.categories[problem["category_id"]]
        found.append(
            {
                "service_code": code,
                "service_name": problem["names"][lang],
                "description": f"{category['names'][lang]}: {problem['names'][lang]}",
                "metadata": bool(problem["fields_to_collect"]),
                "type": "realtime",  # answered with its service_request_id at once
                "keywords": None,
                "group": category["names"][lang],
            }
        )
    return found


def _attribute(field: dict[str, Any], order: int, lang: str) -> dict[str, Any]:
    datatype = DATATYPES[field["type"]]
    attribute: dict[str, Any] = {
        "variable": True,
        "code": field["name"],
        "datatype": datatype,
        "required": field["required"],
        "datatype_description": DATATYPE_HELP.get(field["type"]),
        "order": order,
        "description": field["labels"][lang],
    }
    if field["type"] == "choice":
        attribute["values"] = [{"key": str(choice), "name": str(choice)} for choice in field["choices"]]
    elif field["type"] == "boolean":
        yes, no = BOOLEAN_VALUES[lang]
        attribute["values"] = [{"key": "true", "name": yes}, {"key": "false", "name": no}]
    return attribute


def definition(code: str, problem: dict[str, Any], lang: str) -> dict[str, Any]:
    return {"service_code": code, "attributes": [_attribute(f, n, lang) for n, f in enumerate(problem["fields_to_collect"], 1)]}


def check_url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(value) > 2000 or any(c.isspace() for c in value):
        raise Open311Error(400, f"{what} must be an http or https URL, not {value[:100]!r}")
    return value


def _datetime(value: str, code: str, zone: tzinfo) -> str:
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), zone).isoformat()
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"attribute[{code}] must be an ISO 8601 date or date-time, not {value!r}") from None
    if moment.tzinfo is None:
        raise Open311Error(400, f"attribute[{code}] must carry its time zone (2026-11-30T09:00:00+01:00), not {value!r}")
    return moment.isoformat()


def _value(field: dict[str, Any], values: list[str], zone: tzinfo) -> Any:
    code, kind = field["name"], field["type"]
    if len(values) > 1:
        raise Open311Error(400, f"attribute[{code}] takes one value, {len(values)} were sent")
    value = values[0].strip()
    if kind == "number":
        try:
            number = float(value)
        except ValueError:
            raise Open311Error(400, f"attribute[{code}] must be a number, not {value!r}") from None
        if not math.isfinite(number):
            raise Open311Error(400, f"attribute[{code}] must be a finite number")
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    if kind == "date":
        return _datetime(value, code, zone)
    if kind == "choice":
        keys = [str(choice) for choice in field["choices"]]
        if value not in keys:
            raise Open311Error(400, f"attribute[{code}] must be one of {keys}, not {value!r}")
        return value
    if kind == "boolean":
        if value not in ("true", "false"):
            raise Open311Error(400, f"attribute[{code}] must be true or false, not {value!r}")
        return value == "true"
    if kind == "photo":
        return check_url(value, f"attribute[{code}]")
    return value


def collected(code: str, problem: dict[str, Any], form: Any, zone: tzinfo) -> dict[str, Any]:
    """The ``attribute[CODE]`` values of a form, checked against the service definition
    (known codes, required ones present, each value of its datatype) and converted."""
    sent: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        found = _ATTRIBUTE.match(key)
        if found is None:
            continue
        if not isinstance(value, str):
            raise Open311Error(400, f"{key} must be a value, not a file")
        if value.strip():
            sent.setdefault(found[1], []).append(value)
    fields = {f["name"]: f for f in problem["fields_to_collect"]}
    unknown = sorted(set(sent) - set(fields))
    if unknown:
        raise Open311Error(400, f"service {code} has no attribute {unknown[0]!r}; its attributes: {sorted(fields)}")
    missing = [name for name, f in fields.items() if f["required"] and name not in sent]
    if missing:
        raise Open311Error(400, f"service {code} requires attribute[{missing[0]}]" + (f" (and {missing[1:]})" if missing[1:] else ""))
    return {name: _value(fields[name], values, zone) for name, values in sent.items()}


class RequestWriter:
    """Request rows (projections/open311.py, their times already RFC 3339 in UTC) as
    GeoReport v2 requests and updates, names in ``lang``."""

    def __init__(self, catalogue: Catalogue | None, lang: str) -> None:
        self.lang = lang
        self.service_names = {c: p["names"][lang] for c, p in catalogue.problem_codes.items()} if catalogue else {}
        self.agencies = {d: v["names"][lang] for d, v in catalogue.departments.items()} if catalogue else {}

    def request(self, row: Mapping[str, Any]) -> dict[str, Any]:
        description = row["description"]
        department = row["department_id"]
        return {
            "service_request_id": row["reference"],
            "status": "open" if row["open"] else "closed",
            "status_notes": row["status_notes"],
            "service_name": self.service_names.get(row["service_code"]),
            "service_code": row["service_code"],
            "description": description[:DESCRIPTION_LIMIT] if description is not None else None,
            "agency_responsible": self.agencies.get(department) if department else None,
            "service_notice": None,
            "requested_datetime": row["requested_at"],
            "updated_datetime": row["updated_at"],
            "expected_datetime": row["expected_at"],
            "address": row["address"],
            "address_id": None,
            "zipcode": None,
            "lat": row["lat"],
            "long": row["lon"],
            "media_url": row["media_url"],
        }

    def update(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "update_id": str(row["update_id"]),
            "service_request_id": row["reference"],
            "status": "open" if row["open"] else "closed",
            "updated_datetime": row["updated_at"],
            "description": row["description"] or None,  # a change of status alone says nothing more
            "media_url": row["media_url"],
        }
