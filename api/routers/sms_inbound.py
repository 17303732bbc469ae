"""SMS in: what citizens text to the hotline, delivered by the SMS provider's webhook.

The provider is the HTTP gateway the notifications send through (``infra/sms_gateway.py``:
JSON over HTTP, each message with the provider's id). For each text a number sends to the
hotline it posts, to ``POST /channels/sms/inbound``, the JSON
``{"id", "from", "to", "body", "received_at"}`` (``text`` is taken for ``body``), signed:

* ``X-Hotline-Timestamp``: Unix seconds when it signed; more than 5 minutes
  (``HOTLINE_SMS_INBOUND_MAX_AGE_SECONDS``) from the hotline's clock is refused, so a
  captured call cannot be replayed later;
* ``X-Hotline-Signature``: hex HMAC-SHA256, under ``HOTLINE_SMS_INBOUND_SECRET``, of
  ``<timestamp>.<raw body>`` (``sha256=`` in front is accepted). The timestamp is inside
  what is signed, else it could be changed to replay an old body. Compared in constant time.

An unsigned, wrongly signed or stale call is 401 with a JSON body, and nothing is
recorded. The endpoint's rule is the action ``channels.sms_receive`` (the system role):
a valid signature makes the caller the system's SMS channel; without a signature only the
hotline's own system credentials are taken (a token: replaying a provider's log by hand),
every other role's token is 403.

What a text does (the answer is always 200 JSON, which the provider expects):

* the whole text is STOP, STOPALL, UNSUBSCRIBE, CANCEL, END or QUIT (any case): the number
  opts out of SMS (its citizen found by phone, or created); START or UNSTOP opts it back
  in (``domain/citizens``). The notifier then suppresses, and records as suppressed with
  the reason, every SMS to that number (``domain/notifications/handlers.py``);
* the text names a request's reference (12 digits, ``domain/config.random_reference``;
  ``YYMMDD-NNNNNN`` and ``YYMMDD NNNNNN`` too) and the number belongs to that request's
  citizen: it is added to the request as the citizen's message (``AddCitizenMessage``,
  issued as that citizen, so the domain's own scope check refuses anyone else's case);
* anything else, a reference to someone else's request (or to none) included, registers
  a new request (channel ``sms``, replies by SMS, kind ``information`` until an operator
  classifies it, the sender's number and the name on record of its citizen as contact,
  the citizen recognised by the number). Another person's reference is not threaded and
  not refused: the text still reaches an operator, and the answer says nothing of the
  other case;
* the intake policy wants a name (``domain/requests/intake.py``) and the number's citizen
  has none on record (a number nobody knows): a number alone cannot be registered, so the
  text goes to an agent as an ``sms`` contact of the queue ``HOTLINE_SMS_INBOUND_QUEUE``
  (a chat queue; the text is its subject), who asks the name and registers it.

The provider retries a delivery with the same message id: the first outcome is recorded
with the command (``domain/idempotency.py``, key = the provider's id), and a retry does
nothing again (``"duplicate": true``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from datetime import datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from api.auth import authenticate, bearer
from api.deps import get_hotline
from api.errors import Unauthenticated
from api.responses import SmsInboundAnswer
from api.routing import HotlineRouter
from domain.access import Action, authorize
from domain.base import Actor, Forbidden, InvalidCommand, NotFound
from domain.citizens import commands as cc
from domain.citizens.aggregate import Citizen, CitizenIdentity, identity_id, normalise_phone, sms_keyword
from domain.contact_center import commands as ccc
from domain.handling import Command
from domain.idempotency import IdempotencyRecord, idempotency_id
from domain.requests import commands as rc
from infra.runtime import Hotline
from infra.settings import Settings

router = HotlineRouter(prefix="/channels/sms", tags=["channels"])

# Who acts when the provider's signature checks out: the hotline's SMS channel.
SMS_CHANNEL = Actor(id="channel:sms", role="system", name="SMS provider (signed webhook)", via="signature:sms")
IDEMPOTENCY_SCOPE = "channels.sms.inbound"
# A request's reference as citizens write it (domain/config.random_reference: YYMMDD + 6
# digits), whole: not part of a longer number.
_REFERENCE = re.compile(r"(?<!\d)(\d{6})[ -]?(\d{6})(?!\d)")


class InboundSms(BaseModel):
    """One text as the provider delivers it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)  # providers add fields of their own

    id: str = Field(min_length=1, max_length=200, description="The provider's message id: a retry carries the same")
    from_: str = Field(alias="from", min_length=1, max_length=40, description="The sender's number")
    to: str | None = Field(default=None, max_length=40, description="The hotline's number it was sent to")
    body: str = Field(default="", max_length=10_000, validation_alias=AliasChoices("body", "text"))
    received_at: datetime | None = None


# ---------------------------------------------------------------------- the signature
def signature_of(secret: str, timestamp: str, raw: bytes) -> str:
    """The hex HMAC-SHA256 the provider sends: over ``<timestamp>.<raw body>``."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()


def verify_signature(settings: Settings, headers: Any, raw: bytes, now: datetime) -> None:
    """Refuses (401) unless the call is signed with the shared secret, recently."""
    secret = settings.sms_inbound_secret
    if not secret:
        raise Unauthenticated(
            "no signature is accepted: the hotline has no shared secret for the SMS provider (HOTLINE_SMS_INBOUND_SECRET)"
        )
    sent = (headers.get(settings.sms_inbound_signature_header) or "").strip()
    sent = sent.removeprefix("sha256=")
    timestamp = (headers.get(settings.sms_inbound_timestamp_header) or "").strip()
    if not re.fullmatch(r"[0-9]{1,12}", timestamp):
        raise Unauthenticated(f"the signed call needs {settings.sms_inbound_timestamp_header}: Unix seconds when it was signed")
    expected = signature_of(secret, timestamp, raw)
    # Constant time, on bytes: a wrong signature takes as long whatever it shares with the right one.
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Unauthenticated(f"the {settings.sms_inbound_signature_header} does not match the body")
    age = now.timestamp() - int(timestamp)
    if abs(age) > settings.sms_inbound_max_age_seconds:
        raise Unauthenticated(
            f"the call was signed {abs(int(age))} s {'ago' if age > 0 else 'ahead of the hotline clock'}, more than"
            f" {settings.sms_inbound_max_age_seconds} s: refused as a replay",
            signed_at=int(timestamp),
        )


def signed_by_provider(action: Action) -> Any:
    """The endpoint's rule (``x-permission`` = ``action``): a call signed by the SMS
    provider acts as the system's SMS channel; an unsigned one must carry the hotline's own
    credentials of a role the action allows (else 401 without any, 403 with another's)."""

    async def dependency(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Actor:
        hotline: Hotline = request.app.state.hotline
        settings = hotline.settings
        raw = await request.body()
        if settings.sms_inbound_signature_header in request.headers:
            verify_signature(settings, request.headers, raw, hotline.clock.now())
            actor: Actor | None = SMS_CHANNEL
        else:
            actor = await authenticate(request, credentials)
        if actor is None:
            raise Unauthenticated(
                f"unsigned: the SMS provider signs each call ({settings.sms_inbound_signature_header}, "
                f"{settings.sms_inbound_timestamp_header})",
                permission=action.value,
            )
        authorize(actor, action)
        request.state.actor = actor
        request.state.raw_body = raw
        return actor

    dependency.action = action  # type: ignore[attr-defined]  # read by api/app.py for x-permission
    dependency.__name__ = f"signed_{action.name.lower()}"
    return Depends(dependency)


# ---------------------------------------------------------------------- the webhook
def references_in(text: str) -> list[str]:
    """Every request reference the text names, in order, once each."""
    found: list[str] = []
    for match in _REFERENCE.finditer(text):
        ref = match.group(1) + match.group(2)
        if ref not in found:
            found.append(ref)
    return found


def parse(raw: bytes) -> InboundSms:
    try:
        return InboundSms.model_validate(json.loads(raw or b"null"))
    except (ValueError, ValidationError) as exc:
        problems = exc.errors(include_url=False) if isinstance(exc, ValidationError) else [{"msg": str(exc)}]
        raise InvalidCommand(
            "the provider's message is not {id, from, to, body} JSON",
            code="invalid_request",
            problems=[{"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e["msg"]} for e in problems],
        ) from None


def known_citizen_of(hotline: Hotline, phone: str) -> str | None:
    """The citizen this number belongs to, if any (its identity claim; claims never change)."""
    claim = hotline.store.reference(identity_id(f"phone:{phone}"))
    return claim.citizen_id if isinstance(claim, CitizenIdentity) else None


def name_on_record(hotline: Hotline, citizen_id: str | None) -> str | None:
    if citizen_id is None:
        return None
    citizen = hotline.store.reference(uuid.UUID(citizen_id))
    name = citizen.personal.get("name") if isinstance(citizen, Citizen) else None
    return str(name) if name else None


def first_outcome(hotline: Hotline, message_id: str) -> dict[str, Any] | None:
    try:
        record: IdempotencyRecord = hotline.store.repository.get(idempotency_id(message_id, IDEMPOTENCY_SCOPE))
    except AggregateNotFoundError:
        return None
    return dict(record.response)


@router.post(
    "/inbound",
    response_model=SmsInboundAnswer,
    summary="A text a citizen sent to the hotline (the SMS provider's signed webhook)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": InboundSms.model_json_schema(by_alias=True)}}},
        "x-signature": "HMAC-SHA256 of '<X-Hotline-Timestamp>.<raw body>' under the shared secret, hex, in X-Hotline-Signature",
    },
)
def inbound(
    request: Request,
    hotline: Hotline = Depends(get_hotline),
    actor: Actor = signed_by_provider(Action.CHANNELS_SMS_RECEIVE),
) -> dict[str, Any]:
    msg = parse(request.state.raw_body)
    answer: dict[str, Any] = {"accepted": True, "message_id": msg.id}
    if first_outcome(hotline, msg.id) is not None:
        return {**answer, "duplicate": True}
    phone = normalise_phone(msg.from_, hotline.bus.deps.policy.default_region)
    text = msg.body.strip()
    if not text:
        # Nothing to act on, and nothing a retry would change: accepted, so the provider stops.
        return {**answer, "duplicate": False, "action": "ignored", "reason": "empty message"}

    def run(cmd: Command, as_actor: Actor) -> dict[str, Any]:
        return hotline.bus.execute(cmd, as_actor, idempotency_key=msg.id, idempotency_scope=IDEMPOTENCY_SCOPE).result

    keyword = sms_keyword(text)
    if keyword is not None:
        kind, word = keyword
        consent = cc.OptOutOfSms if kind == "opt_out" else cc.OptInToSms
        result = run(consent(phone=phone, keyword=word, provider_message_id=msg.id), actor)
        return {**answer, "duplicate": False, "action": "opted_out" if kind == "opt_out" else "opted_in", "changed": result["changed"]}

    citizen_id = known_citizen_of(hotline, phone)
    if citizen_id is not None:
        # As the citizen the number belongs to: the request's own scope rule (own_cases)
        # refuses a case that is not theirs, which then goes on to be a new request.
        citizen = Actor(id=f"citizen:{citizen_id}", role="citizen", citizen_id=citizen_id, via="sms")
        for ref in references_in(text):
            try:
                result = run(rc.AddCitizenMessage(ref=ref, text=text, channel="sms"), citizen)
            except (NotFound, Forbidden):
                continue
            return {**answer, "duplicate": False, "action": "threaded", "reference": result["reference"]}

    # The intake policy's contact rule holds for SMS too: a number alone is no name. The
    # name on record of the number's citizen is theirs; with none (a number nobody knows),
    # the text goes to an agent as a contact of the SMS queue, to be registered by hand.
    name = name_on_record(hotline, citizen_id)
    if name is None and "name" in hotline.bus.deps.policy.required_contact:
        contact = run(
            ccc.ContactArrives(
                channel="sms",
                queue_id=hotline.settings.sms_inbound_queue,
                phone=phone,
                citizen_id=citizen_id,
                external_id=f"sms:{msg.id}",
                subject=text[:500],
            ),
            actor,
        )
        return {**answer, "duplicate": False, "action": "queued_for_agent", "contact_id": contact["id"]}
    registered = run(
        rc.RegisterRequest(
            kind="information",  # an operator classifies it: the text says what it is
            channel="sms",
            description=text,
            contact=rc.Contact(name=name, phone=phone),
            reply_channel="sms",
        ),
        actor,
    )
    return {**answer, "duplicate": False, "action": "registered", "reference": registered["reference"]}
