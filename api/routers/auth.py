"""/auth: signing in.

* Staff: ``POST /auth/token`` with a username and password (the embedded issuer; with an
  external OpenID Connect issuer, staff sign in there and its tokens are accepted).
* Citizens: ``POST /auth/citizen/code`` sends a one-time code to their phone (SMS) or
  email; ``POST /auth/citizen/token`` exchanges it for a short-lived token bound to their
  citizen record.
* ``/.well-known/openid-configuration`` and ``/auth/jwks.json``: the hotline's own keys,
  for anyone who verifies its tokens.

Every attempt is rate-limited per client address; codes also per phone or email.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import Any
from urllib.parse import parse_qs

from fastapi import Depends, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from api.auth import OPEN, allow, client_address, hotline_limits
from api.deps import get_hotline
from api.errors import DeliveryFailed, Unauthenticated
from api.responses import Jwks, OpenIdConfiguration, SignInCodeSent
from api.routing import HotlineRouter
from domain.access import Action
from domain.base import SYSTEM, Actor
from domain.citizens.aggregate import identifier_key, normalise_email, normalise_phone
from domain.identity import commands as c
from infra.identity.tokens import InvalidToken
from infra.rate_limits import LimitExceeded
from infra.runtime import Hotline
from infra.settings import Settings
from infra.sms_gateway import GatewaySender
from infra.smtp import DeliveryError, SmtpSender

router = HotlineRouter(tags=["sign-in"])
log = logging.getLogger(__name__)


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grant_type: str = Field("password", pattern="^password$")
    username: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(min_length=1, max_length=256)


class TokenAnswer(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    subject: str
    roles: list[str]
    departments: list[str] = []
    citizen_id: str | None = None


class CitizenContact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str | None = Field(None, max_length=40)
    email: str | None = Field(None, max_length=254)

    @model_validator(mode="after")
    def one_of(self) -> CitizenContact:
        if bool(self.phone) == bool(self.email):
            raise ValueError("give either a phone number or an email")
        return self

    def identifier(self, region: str) -> str:
        """``phone:+39…`` (read in the jurisdiction's region) or ``email:`` as typed."""
        if self.phone:
            return f"phone:{normalise_phone(self.phone, region)}"
        return f"email:{normalise_email(str(self.email))}"


class CitizenCode(CitizenContact):
    code: SecretStr = Field(min_length=4, max_length=12)
    name: str | None = Field(None, max_length=200, description="For a citizen new to the hotline")
    language: str | None = None


@router.get(
    "/.well-known/openid-configuration",
    response_model=OpenIdConfiguration,
    summary="Discovery document of the hotline's own token issuer",
)
def discovery(request: Request, hotline: Hotline = Depends(get_hotline), _: None = OPEN) -> dict[str, Any]:
    return hotline.identity.discovery(str(request.base_url).rstrip("/"))


@router.get("/auth/jwks.json", response_model=Jwks, summary="The public keys that verify the hotline's tokens (JWKS)")
def jwks(hotline: Hotline = Depends(get_hotline), _: None = OPEN) -> dict[str, Any]:
    return hotline.identity.keyring.jwks()


def limit_sign_in(hotline: Hotline, request: Request, *subjects: str) -> None:
    """Before a sign-in attempt: refused while its address is past the failures' limit,
    or past the wider limit on all its attempts; every attempt counts for each subject
    named (the username). :func:`failed_sign_in` counts a failure against the address."""
    limits, settings = hotline_limits(hotline), hotline.settings
    address = f"address:{client_address(request)}"
    limits.hit("sign-in", settings.rate_limit_sign_in_address, address)
    limits.check("sign-in-failures", settings.rate_limit_sign_in, address)
    for who in subjects:
        limits.hit("sign-in", settings.rate_limit_sign_in, who)


def failed_sign_in(hotline: Hotline, request: Request) -> None:
    """A wrong password or code from this address (the next past the limit is refused)."""
    with contextlib.suppress(LimitExceeded):  # this one is answered as the failure it is; the next is refused
        hotline_limits(hotline).hit("sign-in-failures", hotline.settings.rate_limit_sign_in, f"address:{client_address(request)}")


async def token_request(request: Request) -> TokenRequest:
    """The OAuth 2.0 password grant as clients send it (a form) or as JSON."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raw: Any = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    else:
        try:
            raw = await request.json()
        except ValueError:
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body",), "msg": "the body is not JSON", "input": None}]
            ) from None
    try:
        return TokenRequest.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


_TOKEN_BODY = TokenRequest.model_json_schema()


@router.post(
    "/auth/token",
    response_model=TokenAnswer,
    summary="Staff sign-in: a bearer token for a username and password (OAuth 2.0 password grant, form or JSON)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": _TOKEN_BODY}, "application/json": {"schema": _TOKEN_BODY}},
        }
    },
)
def token(
    request: Request,
    body: TokenRequest = Depends(token_request),
    hotline: Hotline = Depends(get_hotline),
    _: Actor = allow(Action.SIGN_IN),
) -> dict[str, Any]:
    limit_sign_in(hotline, request, f"username:{body.username}")
    try:
        issued, member = hotline.identity.staff_sign_in(body.username, body.password.get_secret_value())
    except InvalidToken as exc:
        failed_sign_in(hotline, request)
        raise Unauthenticated(str(exc), code="invalid_grant") from None
    return {
        "access_token": issued,
        "expires_in": hotline.settings.token_ttl_seconds,
        "subject": member.username,
        "roles": member.roles,
        "departments": member.departments,
    }


@router.post(
    "/auth/citizen/code",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SignInCodeSent,
    summary="A citizen asks for a one-time sign-in code (SMS or email)",
)
def citizen_code(
    body: CitizenContact, request: Request, hotline: Hotline = Depends(get_hotline), actor: Actor = allow(Action.CITIZENS_SIGN_IN)
) -> dict[str, Any]:
    settings = hotline.settings
    identifier = body.identifier(hotline.bus.deps.policy.default_region)
    limit_sign_in(hotline, request)
    # Each code is an SMS or an email sent: one address asks for few of them.
    limits = hotline_limits(hotline)
    limits.hit("sign-in-code-requests", settings.rate_limit_sign_in, f"address:{client_address(request)}")
    limits.hit("sign-in-codes", settings.rate_limit_codes, identifier_key(identifier))
    code = f"{secrets.randbelow(1_000_000):06d}"
    answer = hotline.bus.execute(c.RequestSignInCode(identifier=identifier, code=SecretStr(code)), SYSTEM).result
    _send_code(settings, identifier, code)
    kind, _, value = identifier.partition(":")
    return {"sent_to": _masked(kind, value), "channel": "sms" if kind == "phone" else "email", "expires_at": answer["expires_at"]}


@router.post("/auth/citizen/token", response_model=TokenAnswer, summary="A citizen exchanges the code for a short-lived token")
def citizen_token(
    body: CitizenCode, request: Request, hotline: Hotline = Depends(get_hotline), actor: Actor = allow(Action.CITIZENS_SIGN_IN)
) -> dict[str, Any]:
    settings = hotline.settings
    limit_sign_in(hotline, request)
    cmd = c.VerifySignInCode(
        identifier=body.identifier(hotline.bus.deps.policy.default_region), code=body.code, name=body.name, language=body.language
    )
    answer = hotline.bus.execute(cmd, SYSTEM).result
    if not answer["accepted"]:
        failed_sign_in(hotline, request)
        raise Unauthenticated(answer["reason"], code="invalid_code")
    citizen_id = answer["citizen_id"]
    return {
        "access_token": hotline.identity.citizen_token(citizen_id, answer.get("name")),
        "expires_in": settings.citizen_token_ttl_seconds,
        "subject": f"citizen:{citizen_id}",
        "roles": ["citizen"],
        "citizen_id": citizen_id,
    }


def _send_code(settings: Settings, identifier: str, code: str) -> None:
    """Through the channels the notifier uses: SMS by the gateway, email by SMTP."""
    kind, _, to = identifier.partition(":")
    text = f"Your hotline sign-in code is {code}. It is valid for 10 minutes. Never tell it to anyone."
    if settings.log_sign_in_codes:
        log.warning("sign-in code for %s: %s (HOTLINE_LOG_SIGN_IN_CODES is for development only)", identifier, code)
    key, language = secrets.token_hex(8), settings.default_language
    try:
        if kind == "email":
            SmtpSender.from_settings(settings).send(to=to, subject="Your sign-in code", body=text, html=None, language=language, key=key)
        elif (gateway := GatewaySender.from_settings(settings)) is not None:
            gateway.send(channel="sms", to=to, body=text, language=language, key=key)
        elif not settings.log_sign_in_codes:
            raise DeliveryFailed("no SMS gateway is configured: sign in with an email address")
    except (DeliveryError, OSError) as exc:
        if settings.log_sign_in_codes:
            # A laptop without a mail server: the log is the delivery (development only).
            log.warning("sign-in code for %s not sent (%s): it is in the log above", identifier, exc)
            return
        raise DeliveryFailed(f"the code could not be sent: {exc}") from None


def _masked(kind: str, value: str) -> str:
    if kind == "phone":
        return value[:3] + "•" * max(0, len(value) - 5) + value[-2:]
    local, _, domain = value.partition("@")
    return local[:1] + "•••@" + domain
