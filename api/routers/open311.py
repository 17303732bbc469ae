"""/open311/v2: Open311 GeoReport v2, so that the city's existing apps (FixMyStreet,
SeeClickFix, Mark-a-Spot, Libre311) keep working.

Every endpoint answers ``.json`` or ``.xml`` (the spec's required format); every
date-time it writes is RFC 3339 in UTC (``2026-11-16T09:00:00Z``), and one it reads
without an offset is the hotline's local time; errors are the spec's lists
(``[{"code": 400, "description": …}]``, ``<errors><error>…``), with 400 for bad
parameters, 403 for an invalid or unauthorised ``api_key`` (and a submission without
one), 401 for a read that comes with no credential at all, 404 for what is not there.
``api_key`` is read from the form (``POST requests``) or the query string, as Open311
clients send it, besides the API's own headers.

* ``GET services`` / ``services/{code}``: the catalogue's problem codes and the fields
  they collect, public as the catalogue is;
* ``POST requests``: registers a request with an API key of this hotline (``POST
  /api-keys``, role integrator), through the same command and rules as ``POST /requests``
  (the jurisdiction's anonymity policy included), classified with the service code and
  its ``attribute[CODE]`` values; answered at once with its ``service_request_id`` (and a
  ``token``, its id, for clients that poll ``GET tokens``);
* ``GET requests``, ``requests/{id}``, ``tokens/{token}`` and FixMyStreet's
  ``servicerequestupdates``: reading cases needs a credential here (an API key with
  ``requests.read``), as everywhere in the hotline; a department sees its own, a citizen
  their own.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import allow, citizen_filter, department_filter
from api.deps import get_hotline, run_command, wait_for_position
from api.errors import (
    STORE_RETRY_AFTER,
    STORE_UNAVAILABLE,
    STORE_UNAVAILABLE_MESSAGE,
    Unauthenticated,
    log_unavailable,
    retry_after,
    status_of,
    store_unavailable,
)
from api.open311 import mapping
from api.open311.formats import FORMATS, Open311Error, answer, error_answer
from api.routing import HotlineRoute, HotlineRouter
from domain.access import Access, Action, allows, authorize
from domain.attachments.commands import AttachFile
from domain.base import Actor, DomainError
from domain.catalogue.aggregate import Catalogue, catalogue_id
from domain.requests import commands as c
from infra.runtime import Hotline
from projections import open311 as read_model

log = logging.getLogger("hotline.api")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# An error's HTTP status as Open311 answers it: the spec knows 400, 403 and 404; a refusal
# of the request's content (422) or of its state (409) is a 400.
OPEN311_STATUS = {409: 400, 422: 400}


class Open311Route(HotlineRoute):
    """A route whose errors are Open311 error lists in the format asked for, and which
    takes ``api_key`` from the query string or the form (as an ``X-API-Key`` header for
    the API's own sign-in, api/auth.py)."""

    # How api/openapi.py documents these routes: their refusals as Open311 answers them.
    status_map = OPEN311_STATUS

    @staticmethod
    def error_response(status: int, description: str) -> dict[str, Any]:
        return {"description": description, "content": OPEN311_ERROR_CONTENT}

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            fmt = request.path_params.get("fmt", "json")
            try:
                from_parameter = await _api_key_as_header(request)
                return await handler(request)
            except Open311Error as exc:
                return error_answer(fmt, exc.status, exc.description)
            except Unauthenticated as exc:
                # A key sent as Open311 sends it and refused: the spec's 403. No credential: 401.
                if from_parameter:
                    return error_answer(fmt, 403, f"api_key is invalid: {exc.message}")
                bearer = exc.message.split(": ", 1)[-1]  # "send 'Authorization: Bearer <token>'"
                return error_answer(fmt, 401, f"sign in to read requests: send api_key (an API key of this hotline), or {bearer}")
            except DomainError as exc:
                status = status_of(exc)
                refused = error_answer(fmt, OPEN311_STATUS.get(status, status), exc.message)
                refused.headers.update(retry_after(exc))
                return refused
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
                return error_answer(fmt, 400, f"{where}: {first.get('msg', 'invalid parameter')}")
            except STORE_UNAVAILABLE as exc:
                if not store_unavailable(exc):
                    return _bug(request, fmt, exc)
                log_unavailable(request, exc)
                unavailable = error_answer(fmt, 503, STORE_UNAVAILABLE_MESSAGE)
                unavailable.headers["Retry-After"] = str(STORE_RETRY_AFTER)
                return unavailable
            except Exception as exc:
                return _bug(request, fmt, exc)

        return route


def _bug(request: Request, fmt: str, exc: Exception) -> Response:
    """A bug's 500, as an Open311 error list in the format asked for (an XML client reads
    XML even then), logged with its traceback here since it is answered, not raised."""
    log.error("unexpected error: %s %s", request.method, request.url.path, exc_info=exc)
    return error_answer(fmt, 500, "an unexpected error on the server: it is logged")


async def _form(request: Request) -> FormData:
    """The submitted form, read once (the API key's check and the endpoint share it).

    "All text received by the service from the client will be assumed to be UTF-8"
    (GeoReport v2): a url-encoded body is decoded as UTF-8 (or the charset it declares)
    before its escapes are, where Starlette reads raw bytes as Latin-1 and stored 路面 as
    è·¯é¢. Multipart parts are decoded by their charset, UTF-8 by default."""
    if (kept := getattr(request.state, "open311_form", None)) is not None:
        return cast(FormData, kept)
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    try:
        if content_type == b"application/x-www-form-urlencoded":
            charset = params.get(b"charset", b"utf-8").decode("ascii", "replace")
            text = (await request.body()).decode(charset)
            pairs: list[tuple[str, str | UploadFile]] = list(parse_qsl(text, keep_blank_values=True, encoding=charset, errors="strict"))
            form = FormData(pairs)
        else:
            form = await request.form()
    except (UnicodeDecodeError, LookupError):
        raise Open311Error(400, "the form could not be read: its text is not UTF-8 (or the charset it declares)") from None
    except StarletteHTTPException as exc:  # a malformed multipart body
        raise Open311Error(400, f"the form could not be read: {exc.detail}") from None
    request.state.open311_form = form
    return form


async def _api_key_as_header(request: Request) -> bool:
    """Whether an ``api_key`` parameter was sent; it becomes the request's X-API-Key
    unless the request carries its own credentials."""
    key = request.query_params.get("api_key")
    content_type = request.headers.get("content-type", "")
    if request.method == "POST" and content_type.startswith(FORM_TYPES):
        form = await _form(request)
        sent = form.get("api_key")
        key = sent if isinstance(sent, str) else key
    if not key:
        return False
    if "authorization" not in request.headers and "x-api-key" not in request.headers:
        request.scope["headers"] = [*request.scope["headers"], (b"x-api-key", key.encode("utf-8", "replace"))]
        request.__dict__.pop("_headers", None)  # Starlette's cached view of the headers
    return True


# The document's description of what these routes answer: the format asked for in the path.
OPEN311_ERROR_CONTENT = {
    "application/json; charset=utf-8": {
        "schema": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["code", "description"],
                "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
            },
        },
        "example": [{"code": 404, "description": "service_code 'pothole' not found"}],
    },
    "text/xml; charset=utf-8": {
        "schema": {"type": "string"},
        "example": "<errors><error><code>404</code><description>…</description></error></errors>",
    },
}
OPEN311_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "GeoReport v2 in the format asked for: .json (a list of objects) or .xml",
        "content": {
            "application/json; charset=utf-8": {"schema": {"type": "array", "items": {"type": "object"}}},
            "text/xml; charset=utf-8": {"schema": {"type": "string"}},
        },
    },
    **{
        status: {"description": text, "content": OPEN311_ERROR_CONTENT}
        for status, text in (
            (400, "A refusal of the request's parameters or content (the spec's 400)"),
            (404, "No such service, request, token, jurisdiction or format"),
        )
    },
}
# Response: the answers are built in the format asked for (no JSON by default in the document).
router = HotlineRouter(
    prefix="/open311/v2", tags=["open311"], route_class=Open311Route, responses=OPEN311_ANSWER, default_response_class=Response
)


# ------------------------------------------------------------------------ helpers
def checked_format(fmt: str) -> str:
    """The format a path's ``.json`` / ``.xml`` asks for, or the spec's 404."""
    if fmt not in FORMATS:
        raise Open311Error(404, f"no such format {fmt!r}: ask for .json or .xml")
    return fmt


def _jurisdiction(hotline: Hotline, given: str | None) -> None:
    """``jurisdiction_id``: any of those configured; required only when there are several."""
    served = hotline.settings.open311_jurisdictions or [hotline.settings.jurisdiction]
    if given is None or given == "":
        if len(served) > 1:
            raise Open311Error(400, f"jurisdiction_id was not provided: this endpoint serves {served}")
        return
    if given not in served:
        raise Open311Error(404, f"jurisdiction_id {given!r} not found: this endpoint serves {served}")


def published_catalogue(hotline: Hotline) -> Catalogue | None:
    """The jurisdiction's catalogue, what the services and discovery documents list."""
    key = catalogue_id(hotline.settings.jurisdiction)
    cat = hotline.store.read_reference(key, hotline.store.reference(key))
    return cat if isinstance(cat, Catalogue) else None


def _language(request: Request, hotline: Hotline, locale: str | None) -> str:
    return mapping.language_of(locale, request.headers.get("accept-language"), hotline.settings.default_language)


def _zone(hotline: Hotline) -> ZoneInfo:
    return ZoneInfo(hotline.settings.time_zone)


def _moment(hotline: Hotline, name: str, value: str | None, *, end: bool = False) -> datetime | None:
    """A W3C date-time (``2026-11-30T09:00:00+01:00``, ``…Z``) or a date; without an
    offset, the hotline's local time. A date alone is its first moment (``end``: its last)."""
    if value is None or value == "":
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1), time()) - timedelta(microseconds=1) if end else datetime.combine(day, time())
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C date-time such as 2026-11-30T09:00:00+01:00, not {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(hotline))
    return moment.astimezone(UTC)


def _window(hotline: Hotline, start_date: str | None, end_date: str | None) -> tuple[datetime, datetime]:
    """The spec's default: the 90 days before ``end_date`` (or now); from ``start_date`` alone, 90 days on."""
    days = timedelta(days=hotline.settings.open311_window_days)
    start, end = _moment(hotline, "start_date", start_date), _moment(hotline, "end_date", end_date, end=True)
    if start is None and end is None:
        end = hotline.clock.now()
    if start is None:
        assert end is not None
        start = end - days
    if end is None:
        end = start + days
    if start > end:
        raise Open311Error(400, "start_date is after end_date")
    return start, end


def _page(hotline: Hotline, page: str | None, page_size: str | None) -> tuple[int, int]:
    """The pagination extension: ``page`` from 1, ``page_size`` up to the spec's 1000 (the default)."""
    limit = hotline.settings.open311_page_size
    numbers = []
    for name, value, default, top in (("page", page, 1, None), ("page_size", page_size, limit, limit)):
        try:
            number = int(value) if value not in (None, "") else default
        except ValueError:
            raise Open311Error(400, f"{name} must be a whole number, not {value!r}") from None
        if number < 1 or (top is not None and number > top):
            raise Open311Error(400, f"{name} must be between 1 and {top}" if top else f"{name} must be 1 or more")
        numbers.append(number)
    return numbers[0], numbers[1]


def _scope(actor: Actor) -> tuple[str | None, str | None]:
    """A department user reads their department's requests, a citizen their own."""
    return department_filter(actor, Action.REQUESTS_READ, None), citizen_filter(actor, Action.REQUESTS_READ, None)


def _writer(request: Request, hotline: Hotline, locale: str | None) -> mapping.RequestWriter:
    return mapping.RequestWriter(published_catalogue(hotline), _language(request, hotline, locale))


# ------------------------------------------------------------------------ services
@router.get("/services.{fmt}", summary="Open311: the services (problem codes), in the language asked for")
def list_services(
    fmt: str,
    request: Request,
    hotline: Hotline = Depends(get_hotline),
    _: Actor = allow(Action.CATALOGUE_READ),
    jurisdiction_id: str | None = None,
    locale: str | None = None,
) -> Response:
    fmt = checked_format(fmt)
    _jurisdiction(hotline, jurisdiction_id)
    cat = published_catalogue(hotline)
    if cat is None:
        raise Open311Error(404, "the catalogue has not been loaded")
    return answer(fmt, "services", mapping.services(cat, _language(request, hotline, locale)))


@router.get(
    "/services/{service_code}.{fmt}",
    summary="Open311: a service's definition (the attributes it collects)",
    responses={
        200: {
            "description": "The service definition in the format asked for: .json (an object) or .xml",
            "content": {
                "application/json; charset=utf-8": {"schema": {"type": "object"}},
                "text/xml; charset=utf-8": {"schema": {"type": "string"}},
            },
        }
    },
)
def service_definition(
    service_code: str,
    fmt: str,
    request: Request,
    hotline: Hotline = Depends(get_hotline),
    _: Actor = allow(Action.CATALOGUE_READ),
    jurisdiction_id: str | None = None,
    locale: str | None = None,
) -> Response:
    fmt = checked_format(fmt)
    _jurisdiction(hotline, jurisdiction_id)
    cat = published_catalogue(hotline)
    problem = mapping.service_of(cat, service_code) if cat is not None else None
    if cat is None or problem is None:
        raise Open311Error(404, f"service_code {service_code!r} not found")
    return answer(fmt, "service_definition", mapping.definition(service_code, problem, _language(request, hotline, locale)))


# ------------------------------------------------------------------------ requests
def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is not None and not isinstance(value, str):
        raise Open311Error(400, f"{name} must be a value, not a file")
    value = value.strip() if value is not None else None
    return value or None


_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def _coordinate(form: Any, name: str, limit: float) -> float | None:
    value = _field(form, name)
    if value is None:
        return None
    # A plain decimal: float() also reads "4_1.9" as 41.9, "0x" no, but "1e1" and "nan" yes.
    if not _DECIMAL.fullmatch(value):
        raise Open311Error(400, f"{name} must be a number (WGS84 degrees), not {value!r}")
    number = float(value)
    if not -limit <= number <= limit:
        raise Open311Error(400, f"{name} must be between -{limit:g} and {limit:g}")
    return number


# The Contact's fields as Open311 names them (the name is first_name and last_name together).
_CONTACT_FIELDS = {"name": "first_name and last_name", "phone": "phone", "email": "email"}


def _register_command(hotline: Hotline, form: Any, lang: str) -> tuple[c.RegisterRequest, str | None]:
    """The form as the hotline's RegisterRequest, checked as the spec says (400s), and its ``media_url``."""
    code = _field(form, "service_code")
    if code is None:
        raise Open311Error(400, "service_code was not provided")
    cat = published_catalogue(hotline)
    problem = mapping.service_of(cat, code) if cat is not None else None
    if cat is None or problem is None:
        raise Open311Error(400, f"service_code {code!r} not found")
    lat, lon = _coordinate(form, "lat", 90), _coordinate(form, "long", 180)
    address = _field(form, "address_string")
    if (lat is None) != (lon is None):
        raise Open311Error(400, "lat and long go together: send both, or address_string")
    if lat is None and address is None:
        raise Open311Error(400, "a location was not provided: send lat and long, or address_string")
    if address is not None and len(address) > 500:
        raise Open311Error(400, "address_string is longer than 500 characters")
    collected = mapping.collected(code, problem, form, _zone(hotline))
    media_url = _field(form, "media_url")
    if media_url is not None:
        mapping.check_url(media_url, "media_url")
    first, last = _field(form, "first_name"), _field(form, "last_name")
    name = " ".join(part for part in (first, last) if part) or None
    phone, email = _field(form, "phone"), _field(form, "email")
    description = _field(form, "description") or problem["names"][lang]
    locale = _field(form, "locale")
    language = mapping.language_of(locale, None, "") if locale else None
    try:
        contact = c.Contact(name=name, phone=phone, email=email) if (name or phone or email) else None
        cmd = c.RegisterRequest(
            kind="action",
            subtype="complaint",
            channel="web",
            description=description,
            contact=contact,
            location=c.Location(address=address, lat=lat, lon=lon),
            language=language if language in ("zh", "ar", "it", "en") else None,  # type: ignore[arg-type]
            problem_code=code,
            collected=collected,
        )
    except ValidationError as exc:  # a field too long for the hotline's request or its contact
        wrong = exc.errors()[0]
        where = ".".join(str(p) for p in wrong["loc"])
        field = _CONTACT_FIELDS.get(where, where) if exc.title == "Contact" else where
        raise Open311Error(400, f"{field}: {wrong['msg']}") from None
    return cmd, media_url


@router.post(
    "/requests.{fmt}",
    summary="Open311: submit a request (form-encoded, api_key required)",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["api_key", "service_code"],
                        "properties": {
                            name: {"type": "string"}
                            for name in (
                                "api_key",
                                "jurisdiction_id",
                                "service_code",
                                "lat",
                                "long",
                                "address_string",
                                "email",
                                "device_id",
                                "account_id",
                                "first_name",
                                "last_name",
                                "phone",
                                "description",
                                "media_url",
                                "locale",
                            )
                        },
                        "additionalProperties": {"type": "string", "description": "attribute[CODE]: a value for the service's attribute"},
                    }
                }
            }
        }
    },
)
async def submit_request(
    fmt: str,
    request: Request,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.REQUESTS_REGISTER),
) -> Response:
    fmt = checked_format(fmt)
    if not request.headers.get("content-type", "").startswith(FORM_TYPES):
        raise Open311Error(400, "send the request form-encoded (application/x-www-form-urlencoded)")
    form = await _form(request)
    _jurisdiction(hotline, _field(form, "jurisdiction_id"))
    lang = _language(request, hotline, _field(form, "locale"))
    cmd, media_url = _register_command(hotline, form, lang)
    # Open311 submits with an API key of this hotline, whoever else may register elsewhere.
    if actor.via is None or not actor.via.startswith("api_key"):
        raise Open311Error(403, "api_key was not provided: submit with an API key of this hotline")
    if media_url is not None and not allows(actor, Action.ATTACHMENTS_ADD):
        raise Open311Error(403, f"this api_key may not add a media_url ({Action.ATTACHMENTS_ADD.value})")

    def register() -> tuple[dict[str, Any], int]:
        body = run_command(hotline, cmd, actor, request=request)
        position = body["position"]
        if media_url is not None:
            # The photo by reference (not fetched): an attachment of the request.
            attached = hotline.bus.execute(AttachFile(request_ref=body["reference"], url=media_url, source="open311"), actor)
            position = attached.position or position
        return body, position

    def written(body: dict[str, Any]) -> dict[str, Any]:
        with hotline.read_store.engine.connect() as conn:
            row = read_model.one(conn, reference=body["reference"])
        assert row is not None, "the request just registered is in the read model"
        return {**mapping.RequestWriter(published_catalogue(hotline), lang).request(row), "token": body["id"], "account_id": None}

    body, position = await run_in_threadpool(register)
    await wait_for_position(hotline, position)  # on the event loop: no worker thread held
    created = await run_in_threadpool(written, body)
    return answer(fmt, "service_requests", [created])


@router.get("/requests.{fmt}", summary="Open311: requests (90 days and 1000 results by default; page, page_size)")
def list_requests(
    fmt: str,
    request: Request,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.REQUESTS_READ),
    jurisdiction_id: str | None = None,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: str | None = None,
    page: str | None = None,
    page_size: str | None = None,
    locale: str | None = None,
) -> Response:
    fmt = checked_format(fmt)
    _jurisdiction(hotline, jurisdiction_id)
    number, size = _page(hotline, page, page_size)
    department_id, citizen_id = _scope(actor)
    ids = [i.strip() for i in (service_request_id or "").split(",") if i.strip()]
    if ids:
        # The spec: with service_request_id, the other parameters are ignored.
        query = read_model.Query(ids=ids, department_id=department_id, citizen_id=citizen_id)
    else:
        wanted = {s.strip() for s in (status or "").split(",") if s.strip()}
        if wanted - {"open", "closed"}:
            raise Open311Error(400, f"status must be open or closed (or both, comma separated), not {status!r}")
        start, end = _window(hotline, start_date, end_date)
        query = read_model.Query(
            service_codes=[s.strip() for s in (service_code or "").split(",") if s.strip()],
            open=("open" in wanted) if len(wanted) == 1 else None,
            start=start,
            end=end,
            department_id=department_id,
            citizen_id=citizen_id,
        )
    with hotline.read_store.engine.connect() as conn:
        rows = read_model.find(conn, query, limit=size, offset=(number - 1) * size)
    writer = _writer(request, hotline, locale)
    return answer(fmt, "service_requests", [writer.request(row) for row in rows])


def _one(hotline: Hotline, actor: Actor, *, reference: str | None = None, request_id: str | None = None) -> Mapping[str, Any]:
    with hotline.read_store.engine.connect() as conn:
        row = read_model.one(conn, reference=reference, request_id=request_id)
    if row is None:
        raise Open311Error(404, f"{'service_request_id' if reference else 'token'} {reference or request_id!r} not found")
    authorize(actor, Action.REQUESTS_READ, Access.of_department(row["department_id"], row["citizen_id"]))
    return row


@router.get("/requests/{service_request_id}.{fmt}", summary="Open311: one request")
def get_request(
    service_request_id: str,
    fmt: str,
    request: Request,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.REQUESTS_READ),
    jurisdiction_id: str | None = None,
    locale: str | None = None,
) -> Response:
    fmt = checked_format(fmt)
    _jurisdiction(hotline, jurisdiction_id)
    row = _one(hotline, actor, reference=service_request_id)
    return answer(fmt, "service_requests", [_writer(request, hotline, locale).request(row)])


@router.get("/tokens/{token}.{fmt}", summary="Open311: the service_request_id of a token (requests are answered at once)")
def get_token(
    token: str,
    fmt: str,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.REQUESTS_READ),
    jurisdiction_id: str | None = None,
) -> Response:
    fmt = checked_format(fmt)
    _jurisdiction(hotline, jurisdiction_id)
    try:
        request_id = str(uuid.UUID(token))
    except ValueError:
        raise Open311Error(404, f"token {token!r} not found") from None
    row = _one(hotline, actor, request_id=request_id)
    return answer(fmt, "service_requests", [{"service_request_id": row["reference"], "token": token}])


@router.get(
    "/servicerequestupdates.{fmt}",
    summary="Open311 (FixMyStreet's extension): status changes and replies between start_date and end_date",
)
def request_updates(
    fmt: str,
    request: Request,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = allow(Action.REQUESTS_READ),
    jurisdiction_id: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    page: str | None = None,
    page_size: str | None = None,
) -> Response:
    fmt = checked_format(fmt)
    _jurisdiction(hotline, jurisdiction_id)
    number, size = _page(hotline, page, page_size)
    start, end = _window(hotline, start_date, end_date)
    department_id, citizen_id = _scope(actor)
    with hotline.read_store.engine.connect() as conn:
        rows = read_model.updates(
            conn, start=start, end=end, department_id=department_id, citizen_id=citizen_id, limit=size, offset=(number - 1) * size
        )
    writer = mapping.RequestWriter(None, "en")
    return answer(fmt, "service_request_updates", [writer.update(row) for row in rows])
