"""What an erasure does besides destroying keys (issue 13, item 3): the erased citizen's
phone number and email are released (a later contact is a new citizen), queued messages
to them are not sent, and their attachments' bytes leave the attachment store."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from domain.base import Actor, FixedClock, InvalidTransition
from domain.citizens.aggregate import Citizen, CitizenIdentity, identity_id
from domain.privacy.aggregate import ERASED
from domain.requests import commands as c
from infra.privacy import erase_citizen
from infra.runtime import Hotline

AGENT = Actor("op1", "agent")
ADMIN = Actor("admin", "administrator")
NAME, PHONE, EMAIL = "Teodolinda Sgarbossa", "+39 06 4444 9876", "teodolinda.sgarbossa@example.org"
E164 = "+390644449876"


def register(h: Hotline, **contact: Any) -> dict[str, Any]:
    cmd = c.RegisterRequest(kind="information", channel="web", description="When does the library open?", contact=c.Contact(**contact))
    return h.bus.execute(cmd, AGENT).result


def test_erasure_releases_the_phone_and_email_and_a_new_contact_is_a_new_citizen(hotline: Hotline, clock: FixedClock) -> None:
    h = hotline
    old = register(h, name=NAME, phone=PHONE, email=EMAIL)
    assert register(h, name=NAME, phone=PHONE)["citizen_id"] == old["citizen_id"]  # recognised before the erasure
    out = erase_citizen(h, old["citizen_id"], "the citizen asked (GDPR art. 17)", ADMIN)
    assert out["claims_released"] == 2

    clock.advance(minutes=5)
    new = register(h, name="Someone Else", phone=PHONE)
    assert new["citizen_id"] != old["citizen_id"]
    # The released email, given with the new citizen's number, becomes theirs (claimed again).
    assert register(h, name="Someone Else", phone=PHONE, email=EMAIL.upper())["citizen_id"] == new["citizen_id"]
    assert register(h, name="Someone Else", phone="+39 06 4444 0000", email=EMAIL)["citizen_id"] == new["citizen_id"]

    # The claim is one aggregate (its id derives from the number): claimed, released, claimed again.
    claim_id = identity_id(f"phone:{E164}")
    kinds = [e.type for e in h.store.envelopes(0, 100_000) if e.aggregate_id == str(claim_id)]
    assert kinds == [
        "hotline.citizen_identity.claimed.v1",
        "hotline.citizen_identity.released.v1",
        "hotline.citizen_identity.reclaimed.v1",
    ]
    h.store.forget_personal_data()
    claim = h.store.read_reference(claim_id)
    assert isinstance(claim, CitizenIdentity) and claim.citizen_id == new["citizen_id"]

    # The old citizen stays erased; the new one reads back; an erasure of the new one covers the number's claim.
    erased = h.store.read_reference(uuid.UUID(old["citizen_id"]))
    assert isinstance(erased, Citizen) and erased.personal["name"] == ERASED and erased.personal["phone"] == ERASED
    fresh = h.store.read_reference(uuid.UUID(new["citizen_id"]))
    assert isinstance(fresh, Citizen) and fresh.personal["name"] == "Someone Else" and fresh.personal["phone"] == E164
    assert str(claim_id) in h.store.keys.scope(new["citizen_id"])
    assert str(claim_id) not in h.store.keys.scope(old["citizen_id"])
    old_requests = [
        e.data["personal"] for e in h.store.envelopes(0, 100_000) if e.stream == "request" and e.data.get("citizen_id") == old["citizen_id"]
    ]
    assert old_requests and all(p["name"] == ERASED for p in old_requests if p)

    # Erasing again is refused: nothing new to erase (the claims are the new citizen's now).
    with pytest.raises(InvalidTransition) as refused:
        erase_citizen(h, old["citizen_id"], "asked twice", ADMIN)
    assert refused.value.code == "already_erased"
    assert register(h, name="Someone Else", phone=PHONE)["citizen_id"] == new["citizen_id"]


def test_a_queued_message_to_an_erased_recipient_is_suppressed_not_sent(hotline: Hotline, clock: FixedClock) -> None:
    from consumers.notifications import NotificationConsumer
    from domain.notifications.aggregate import Notification
    from infra.outbox import outbox_root
    from projections import notifications as read_model

    h = hotline
    erased = h.bus.execute(
        c.RegisterRequest(
            kind="information",
            channel="web",
            description="Q?",
            contact=c.Contact(name=NAME, phone=PHONE, email=EMAIL),
            reply_channel="email",
        ),
        AGENT,
    ).result
    kept = h.bus.execute(
        c.RegisterRequest(
            kind="information",
            channel="web",
            description="Q?",
            contact=c.Contact(name="Ugo Fantozzi", phone="+39 06 1111 2222", email="ugo.fantozzi@example.org"),
            reply_channel="email",
        ),
        AGENT,
    ).result
    for out in (erased, kept):
        h.bus.execute(c.FinalReply(ref=out["reference"], message="Saturdays 9-12.", channel="email"), AGENT)
    notifier = NotificationConsumer.from_settings(h)
    assert notifier.follow() >= 2  # queued, not sent yet
    erase_citizen(h, erased["citizen_id"], "the citizen asked (GDPR art. 17)", ADMIN)
    while notifier.run_once():
        pass

    with h.read_store.engine.connect() as conn:
        rows = {r["request_id"]: r for r in conn.execute(read_model.MESSAGES.select()).mappings() if r["channel"] == "email"}
    gone, sent = rows[erased["id"]], rows[kept["id"]]
    assert (gone["status"], sent["status"]) == ("suppressed", "sent")
    assert "erased" in gone["last_error"]
    msg: Any = h.store.repository.get(uuid.UUID(gone["id"]))
    assert isinstance(msg, Notification) and msg.status == "suppressed" and msg.attempts == 0
    assert notifier.stats.suppressed == 1
    written = [p.read_bytes() for p in (outbox_root(h.settings) / "email").glob("*") if p.is_file()]
    assert len(written) == 1 and b"ugo.fantozzi@example.org" in written[0]
    assert not any(EMAIL.encode() in w for w in written)


def _image(color: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (24, 16), color).save(out, format="PNG")
    return out.getvalue()


def _stored_anywhere(h: Hotline, data: bytes) -> list[str]:
    """Where these bytes (or their base64, as a raw email holds them) are in the data
    folder's files; on PostgreSQL, in the large objects too."""
    import base64

    needles = [data, base64.b64encode(data)[:60]]
    hits = [str(p) for p in h.settings.data_dir.rglob("*") if p.is_file() and any(n in p.read_bytes() for n in needles)]
    if h.settings.database_url:
        import psycopg

        with psycopg.connect(h.settings.database_url) as conn:
            for (oid,) in conn.execute("SELECT oid FROM pg_largeobject_metadata").fetchall():
                blob = b"".join(
                    bytes(r[0]) for r in conn.execute("SELECT data FROM pg_largeobject WHERE loid = %s ORDER BY pageno", (oid,))
                )
                hits += [f"large object {oid}" for n in needles if n in blob]
    return hits


def test_erasure_deletes_the_citizens_files_but_not_bytes_another_citizen_shares(hotline: Hotline) -> None:
    from email.message import EmailMessage

    from consumers.email_in import EmailIntake
    from domain.attachments import commands as ac
    from projections import attachments as read_model

    h = hotline
    own, shared, mailed = _image((10, 200, 30)), _image((200, 10, 130)), _image((30, 30, 250))
    mine = register(h, name=NAME, phone=PHONE, email=EMAIL)
    theirs = register(h, name="Ugo Fantozzi", phone="+39 06 1111 2222")

    def attach(ref: str, data: bytes, filename: str) -> None:
        blob = h.attachments.put(data, filename)
        cmd = ac.AttachFile(
            request_ref=ref, sha256=blob.sha256, content_type=blob.content_type, size=blob.size, filename=filename, source="api"
        )
        h.bus.execute(cmd, AGENT)

    attach(mine["reference"], own, "teodolinda-front-door.png")
    attach(mine["reference"], shared, "photo.png")
    attach(theirs["reference"], shared, "same-photo.png")  # the same bytes, another citizen

    # By email: a new message (its raw form kept as message.eml), then a reply in its thread
    # with a photo (the raw reply named by CitizenWrote.raw_message_sha256).
    intake = EmailIntake(h)
    first = EmailMessage()
    first["From"], first["To"], first["Subject"] = f"{NAME} <{EMAIL}>", "hotline@comune.example", "Lampione spento"
    first.set_content("Il lampione di via Quintiliana 7 è spento.")
    registered = intake.receive(first.as_bytes(), EMAIL)
    reply = EmailMessage()
    reply["From"], reply["To"] = f"{NAME} <{EMAIL}>", "hotline@comune.example"
    reply["Subject"] = f"Re: [{registered.reference}] Lampione spento"
    reply.set_content("Ecco la foto del palo.")
    reply.add_attachment(mailed, maintype="image", subtype="png", filename="palo.png")
    threaded = intake.receive(reply.as_bytes(), EMAIL)
    assert threaded.action == "threaded", threaded
    raws = [registered.raw_sha256, threaded.raw_sha256]
    assert all(sha and h.attachments.exists(sha) for sha in raws)
    for data in (own, shared, mailed):
        assert _stored_anywhere(h, data)  # the oracle: the search finds stored bytes

    out = erase_citizen(h, mine["citizen_id"], "the citizen asked (GDPR art. 17)", ADMIN)
    assert out["citizen_id"] == mine["citizen_id"]
    assert _stored_anywhere(h, own) == [] and _stored_anywhere(h, mailed) == []
    assert not any(h.attachments.exists(sha) for sha in raws)
    assert _stored_anywhere(h, shared)  # the other citizen's identical photo stays
    with h.read_store.engine.connect() as conn:
        rows = conn.execute(read_model.ATTACHMENTS.select()).mappings().all()
    names = {r["filename"] for r in rows if r["citizen_id"] == mine["citizen_id"]}
    assert names == {ERASED}
    assert {r["filename"] for r in rows if r["citizen_id"] == theirs["citizen_id"]} == {"same-photo.png"}
    assert h.attachments.get(next(r["sha256"] for r in rows if r["citizen_id"] == theirs["citizen_id"])) == shared


def test_a_half_done_erasure_is_found_and_finished(hotline: Hotline, monkeypatch: Any) -> None:
    """The erasure's event commits first; if the process stops before the keys and files
    go, the erasure is half done: ``resume_erasures`` (``hotline privacy resume``, and the
    retention loop) finds it by the missing ``CarriedOut`` and finishes it, once."""
    import infra.privacy as privacy
    from domain.privacy.aggregate import PersonalDataErasure, erasure_id

    h = hotline
    done = register(h, name="Ida Bassotti", phone="+39 06 5555 0101")
    privacy.erase_citizen(h, done["citizen_id"], "the citizen asked (GDPR art. 17)", ADMIN)
    victim = register(h, name=NAME, phone=PHONE, email=EMAIL)

    def crash(*_: Any, **__: Any) -> int:
        raise SystemExit("the process stopped")

    with monkeypatch.context() as m:
        m.setattr(h.store.keys, "destroy", crash)
        with pytest.raises(SystemExit):
            privacy.erase_citizen(h, victim["citizen_id"], "the citizen asked (GDPR art. 17)", ADMIN)
    assert h.store.keys.live(h.store.keys.scope(victim["citizen_id"])), "the keys outlived the stopped erasure"
    pending, _ = privacy.half_done_erasures(h)
    assert list(pending) == [victim["citizen_id"]], "the finished erasure is not pending; the stopped one is"

    assert privacy.resume_erasures(h) == [victim["citizen_id"]]
    assert not h.store.keys.live(h.store.keys.scope(victim["citizen_id"]))
    h.store.forget_personal_data()
    citizen = h.store._rebuild(uuid.UUID(victim["citizen_id"]))
    assert citizen.personal["name"] == ERASED
    record = h.store._rebuild(erasure_id(victim["citizen_id"]))
    assert isinstance(record, PersonalDataErasure) and record.erasures == record.carried_out == 1
    assert privacy.resume_erasures(h) == [], "nothing left: a second run does nothing"
