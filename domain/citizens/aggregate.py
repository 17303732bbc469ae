"""Citizens: one person across channels, recognised by phone number (E.164) or email.

Identifiers are claimed by small :class:`CitizenIdentity` aggregates whose ids derive
from the normalised identifier, so "find or create the citizen for +39 06 …" is an
atomic insert: two channels registering the same new number at once cannot create two
citizens (the second insert conflicts and is retried as a lookup).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

import phonenumbers

from domain.access import Access
from domain.base import Context, HotlineAggregate, InvalidCommand, derived_id
from domain.catalogue.aggregate import LANGUAGES
from domain.privacy.aggregate import ERASED

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_phone(raw: str, default_region: str) -> str:
    """E.164, e.g. ``+390612345678``. A number without a country prefix is read in
    ``default_region`` (the jurisdiction's, domain/requests/intake.py). Refuses what is not
    a *valid* number (assigned digits for its region), not merely one of a possible length:
    a mobile number read in the wrong country is often possible there, seldom valid."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidCommand(
            f"phone number {raw!r} cannot be read: {exc}", code="phone_unreadable", field="phone", region=default_region
        ) from None
    read_as = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(number):
        where = f"in region {default_region}" if not raw.strip().startswith(("+", "00")) else "with its country code"
        raise InvalidCommand(
            f"phone number {raw!r} is not a valid number: read {where} it is {read_as}, which is not assigned"
            " (a number of another country needs its country code: +…)",
            code="phone_invalid",
            field="phone",
            region=default_region,
            read_as=read_as,
        )
    return read_as


def normalise_email(raw: str) -> str:
    """The address as the citizen typed it (trimmed; the domain, which is never case
    sensitive, in lower case): what is shown and written to. See :func:`email_key`."""
    value = raw.strip()
    if not _EMAIL.match(value):
        raise InvalidCommand(f"email {raw!r} is not an email address", code="email_unreadable", field="email")
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


def email_key(email: str) -> str:
    """What recognises the citizen: the whole address case-folded. RFC 5321 lets the local
    part be case sensitive, but no mail service in use treats it so, and people type
    ``Mario.Rossi@`` and ``MARIO.ROSSI@`` for the same mailbox."""
    return normalise_email(email).casefold()


def identifier_key(identifier: str) -> str:
    """``phone:+39…`` or ``email:…`` as it is matched: an email case-folded."""
    kind, _, value = identifier.partition(":")
    return f"email:{email_key(value)}" if kind == "email" else identifier


def same_name(a: str, b: str) -> bool:
    """Whether two names given for one phone or email can be the same person: equal but
    for case, accents' forms, spacing and punctuation, word order, or one naming only some
    of the other's words ("Mario" for "Mario Rossi"). Anything else is for the operator."""

    def words(name: str) -> list[str]:
        return re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", name).casefold()).split()

    wa, wb = words(a), words(b)
    if "".join(wa) == "".join(wb):
        return True
    return bool(wa and wb) and (set(wa) <= set(wb) or set(wb) <= set(wa))


@dataclass(frozen=True)
class ContactDetails:
    """What the citizen told us about themselves. Personal data: see domain.base."""

    name: str | None = None
    phone: str | None = None  # E.164 once normalised
    email: str | None = None
    address: str | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any] | None, default_region: str) -> ContactDetails:
        raw = raw or {}
        name = (raw.get("name") or "").strip() or None
        phone = normalise_phone(raw["phone"], default_region) if raw.get("phone") else None
        email = normalise_email(raw["email"]) if raw.get("email") else None
        address = (raw.get("address") or "").strip() or None
        return cls(name=name, phone=phone, email=email, address=address)

    def identifiers(self) -> list[str]:
        ids = []
        if self.phone:
            ids.append(f"phone:{self.phone}")
        if self.email:
            ids.append(f"email:{email_key(self.email)}")
        return ids

    def only(self, identifiers: list[str]) -> ContactDetails:
        """These details with only the phone and email among ``identifiers`` (the rest of
        what was given stays on the request it came with)."""
        phone = self.phone if self.phone and f"phone:{self.phone}" in identifiers else None
        email = self.email if self.email and f"email:{email_key(self.email)}" in identifiers else None
        return ContactDetails(name=self.name, phone=phone, email=email, address=self.address)

    def legacy_identifier(self, identifier: str) -> str | None:
        """The key an identifier was claimed under before email keys were case-folded
        (the local part as typed), when it differs: claims are never rewritten."""
        if identifier.startswith("email:") and self.email and f"email:{self.email}" != identifier:
            return f"email:{self.email}"
        return None

    def completed_from(self, on_record: dict[str, Any]) -> ContactDetails:
        """The missing name, phone and email filled in from the citizen on record (already
        normalised there); nothing given is replaced."""

        def known(field: str) -> str | None:
            value = on_record.get(field)
            return value if isinstance(value, str) and value and value != ERASED else None

        return ContactDetails(
            name=self.name or known("name"), phone=self.phone or known("phone"), email=self.email or known("email"), address=self.address
        )

    def as_personal(self) -> dict[str, str | None]:
        return {"name": self.name, "phone": self.phone, "email": self.email, "address": self.address}

    @property
    def is_anonymous(self) -> bool:
        return not (self.name or self.phone or self.email)


# Whole-message keywords by which a number stops or resumes SMS (the carriers' usual set:
# CTIA's STOP words, and START / UNSTOP to come back), case-insensitive.
SMS_OPT_OUT_KEYWORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit"})
SMS_OPT_IN_KEYWORDS = frozenset({"start", "unstop"})
_KEYWORD = re.compile(r"\s*([^\W\d_]+)\s*[.!]*\s*")


def sms_keyword(text: str) -> tuple[str, str] | None:
    """``("opt_out", "STOP")`` or ``("opt_in", "START")`` when the whole message is one of
    the keywords (trailing punctuation and spaces aside); None for any other text: "stop
    the noise at night" is a complaint, not an opt-out."""
    found = _KEYWORD.fullmatch(text)
    word = found.group(1).casefold() if found else ""
    if word in SMS_OPT_OUT_KEYWORDS:
        return "opt_out", word.upper()
    if word in SMS_OPT_IN_KEYWORDS:
        return "opt_in", word.upper()
    return None


def identity_id(identifier: str) -> uuid.UUID:
    return derived_id("citizen-identity", identifier)


class CitizenIdentity(HotlineAggregate):
    """Claims one identifier (``phone:+39…`` or ``email:…``) for one citizen.

    An erasure releases the claims of the erased citizen (``citizen_id`` becomes None): a
    later contact from the same number or address is somebody new to the hotline, and
    claims it again, on the same aggregate (its id derives from the identifier)."""

    STREAM = "citizen_identity"
    PUBLISHED = False  # keyed by a hash of a phone number or email: internal

    class Claimed(HotlineAggregate.Created):
        citizen_id: str
        # Whether the claimant was checked to be the identifier's holder: staff who spoke
        # to them, or their own sign-in code sent to it. From a channel nobody checks (the
        # public web form, Open311, email-in, SMS) the claim is tentative. Claims made
        # before tentative ones existed read as checked.
        verified: bool = True

    class Released(HotlineAggregate.Event):
        """The claimant was erased. Names them under another field than ``citizen_id``,
        which would make the claim theirs again for the key store (infra/transcoder.py)."""

        released_citizen_id: str

        def apply(self, i: CitizenIdentity) -> None:
            i.citizen_id = None

    class Reclaimed(HotlineAggregate.Event):
        citizen_id: str
        verified: bool = True

        def apply(self, i: CitizenIdentity) -> None:
            i.citizen_id = self.citizen_id
            i.verified = self.verified

    class Verified(HotlineAggregate.Event):
        """A tentative claim confirmed: the citizen it names was checked to hold it (staff
        who spoke to them, or their sign-in code), and no other identifier of theirs was."""

        def apply(self, i: CitizenIdentity) -> None:
            i.verified = True

    class Separated(HotlineAggregate.Event):
        """A tentative claim moved to the person checked to hold the identifier: the citizen
        it named holds another checked identifier, so whoever typed this one beside it on
        an unchecked channel may be somebody else (a stranger who wrote Giulia's number
        beside their own address would otherwise read her cases)."""

        citizen_id: str
        separated_from: str

        def apply(self, i: CitizenIdentity) -> None:
            i.citizen_id = self.citizen_id
            i.verified = True

    def __init__(self, citizen_id: str, verified: bool = True) -> None:
        self.citizen_id: str | None = citizen_id
        self.verified = verified

    @classmethod
    def claim(cls, identifier: str, citizen_id: uuid.UUID, ctx: Context, *, verified: bool = True) -> CitizenIdentity:
        return cls._start(cls.Claimed, identity_id(identifier), ctx, citizen_id=str(citizen_id), verified=verified)

    @property
    def released(self) -> bool:
        return self.citizen_id is None

    def release(self, ctx: Context) -> bool:
        """Returns whether this changed anything (a released claim stays released)."""
        if self.citizen_id is None:
            return False
        self._record(self.Released, ctx, released_citizen_id=self.citizen_id)
        return True

    def reclaim(self, citizen_id: uuid.UUID, ctx: Context, *, verified: bool = True) -> None:
        if self.citizen_id is not None:
            raise InvalidCommand("this identifier is claimed already", code="identifier_taken")
        self._record(self.Reclaimed, ctx, citizen_id=str(citizen_id), verified=verified)

    @property
    def tentative(self) -> bool:
        return self.citizen_id is not None and not self.verified

    def verify(self, ctx: Context) -> None:
        if self.tentative:
            self._record(self.Verified, ctx)

    def separate(self, citizen_id: uuid.UUID, ctx: Context) -> None:
        if not self.tentative or self.citizen_id is None:
            raise InvalidCommand("only a tentative claim moves to its checked holder", code="identifier_taken")
        self._record(self.Separated, ctx, citizen_id=str(citizen_id), separated_from=self.citizen_id)


class Citizen(HotlineAggregate):
    STREAM = "citizen"

    class Registered(HotlineAggregate.Created):
        """The hotline met a citizen for the first time: their record exists (personal data masked)."""

        personal: dict[str, Any]
        language: str

    class IdentifierAdded(HotlineAggregate.Event):
        """Another phone number or email address was recognised as this citizen's."""

        personal: dict[str, Any]

        def apply(self, c: Citizen) -> None:
            for key, value in self.personal.items():
                if value:
                    c.personal[key] = value

    class ContactDetailsChanged(HotlineAggregate.Event):
        """The citizen's contact details changed."""

        personal: dict[str, Any]

        def apply(self, c: Citizen) -> None:
            c.personal.update({k: v for k, v in self.personal.items() if v is not None})

    class IdentityChecked(HotlineAggregate.Event):
        """One of the citizen's phone numbers or addresses was checked to be theirs (staff
        who spoke to them, or their sign-in code): from now on a tentative one of theirs
        checked for someone is that person's, not theirs (:class:`CitizenIdentity`)."""

        def apply(self, c: Citizen) -> None:
            c.checked = True

    class IdentifierWithdrawn(HotlineAggregate.Event):
        """A phone number or address typed on this citizen's record turned out to be
        somebody else's (its claim was separated): it is no longer theirs to be written to."""

        personal: dict[str, Any]

        def apply(self, c: Citizen) -> None:
            for key, value in self.personal.items():
                if c.personal.get(key) == value:
                    c.personal[key] = None

    class LanguagePreferred(HotlineAggregate.Event):
        """The citizen's preferred language changed."""

        language: str

        def apply(self, c: Citizen) -> None:
            c.language = self.language

    class SmsOptedOut(HotlineAggregate.Event):
        """The citizen's number answered STOP (or another opt-out keyword): no SMS goes to
        it until it answers START. ``personal`` holds the number."""

        personal: dict[str, Any]
        keyword: str
        provider_message_id: str | None

        def apply(self, c: Citizen) -> None:
            c.sms_opted_out[str(self.personal["phone"])] = {"keyword": self.keyword, "at": self.timestamp.isoformat()}

    class SmsOptedIn(HotlineAggregate.Event):
        """The number answered START or UNSTOP: SMS may go to it again."""

        personal: dict[str, Any]
        keyword: str
        provider_message_id: str | None

        def apply(self, c: Citizen) -> None:
            c.sms_opted_out.pop(str(self.personal["phone"]), None)

    def access(self) -> Access:
        """A citizen's own record is theirs (scope ``own_cases``)."""
        return Access(citizen_id=str(self.id))

    def __init__(self, personal: dict[str, Any], language: str) -> None:
        self.personal = dict(personal)
        self.language = language
        # Numbers (E.164) of this citizen that opted out of SMS: keyword and when.
        self.sms_opted_out: dict[str, dict[str, str]] = {}
        # Whether any identifier of theirs was checked to be theirs (IdentityChecked).
        self.checked = False

    @classmethod
    def register(cls, contact: ContactDetails, language: str, ctx: Context) -> Citizen:
        check_language(language)
        return cls._start(cls.Registered, uuid.uuid4(), ctx, personal=contact.as_personal(), language=language)

    def learn(self, contact: ContactDetails, ctx: Context) -> list[str]:
        """Adds identifiers and details the citizen gave on a new contact; returns new identifiers."""
        known = set(ContactDetails(**{k: self.personal.get(k) for k in ("name", "phone", "email", "address")}).identifiers())
        new = [i for i in contact.identifiers() if i not in known]
        fresh = {k: v for k, v in contact.as_personal().items() if v and not self.personal.get(k)}
        if fresh:
            self._record(self.IdentifierAdded, ctx, personal=fresh)
        return new

    def identity_checked(self, ctx: Context) -> None:
        if not self.checked:
            self._record(self.IdentityChecked, ctx)

    def withdraw_identifier(self, identifier: str, ctx: Context) -> None:
        """Drops ``identifier`` (``phone:…`` / ``email:…``) from the details on record, when it is there."""
        kind = identifier.partition(":")[0]
        on_record = self.personal.get(kind)
        try:
            same = isinstance(on_record, str) and identifier in ContactDetails(**{kind: on_record}).identifiers()
        except InvalidCommand:  # a value no longer readable as one ([erased])
            same = False
        if same:
            self._record(self.IdentifierWithdrawn, ctx, personal={kind: on_record})

    def change_contact_details(self, contact: ContactDetails, ctx: Context) -> None:
        changes = {k: v for k, v in contact.as_personal().items() if v is not None and v != self.personal.get(k)}
        if not changes:
            raise InvalidCommand("no contact detail differs from what is recorded")
        self._record(self.ContactDetailsChanged, ctx, personal=changes)

    def prefer_language(self, language: str, ctx: Context) -> None:
        check_language(language)
        if language != self.language:
            self._record(self.LanguagePreferred, ctx, language=language)

    def opt_out_of_sms(self, phone: str, keyword: str, provider_message_id: str | None, ctx: Context) -> bool:
        """Per number: the STOP came from one phone, and only that phone stops getting SMS.
        A second STOP changes nothing (no event); returns whether this one did."""
        if phone in self.sms_opted_out:
            return False
        self._record(self.SmsOptedOut, ctx, personal={"phone": phone}, keyword=keyword, provider_message_id=provider_message_id)
        return True

    def opt_in_to_sms(self, phone: str, keyword: str, provider_message_id: str | None, ctx: Context) -> bool:
        if phone not in self.sms_opted_out:
            return False
        self._record(self.SmsOptedIn, ctx, personal={"phone": phone}, keyword=keyword, provider_message_id=provider_message_id)
        return True

    def sms_refused(self, phone: str) -> str | None:
        """Why no SMS may go to ``phone`` (its opt-out), or None. Names no number: the
        reason is kept on the message, outside the erasable personal data."""
        opted = self.sms_opted_out.get(phone)
        if opted is None:
            return None
        return f"the recipient opted out of SMS (replied {opted['keyword']} at {opted['at']}); START resumes"


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise InvalidCommand(f"language {language!r} is not served", supported=list(LANGUAGES))
    return language
