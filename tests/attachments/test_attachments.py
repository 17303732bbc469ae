"""Attachments (issue 16, item 4): uploaded over HTTP, checked by content, stored once by
hash, served back to whoever may read their subject; on SQLite and PostgreSQL.

The sample files are real ones made by Pillow (an independent encoder), so the type the
store sniffs is checked against what the bytes really are, never against their names.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image

from api.app import create_app
from domain.attachments import commands as ac
from domain.base import Actor, Forbidden, InvalidCommand
from domain.requests import commands as rc
from domain.requests.aggregate import request_id_for
from domain.work_orders import commands as woc
from infra.attachments import CHUNK, LargeObjectBlobs
from infra.runtime import Hotline
from tests.auth import SignedInClient, actor

AGENT = Actor("op1", "agent")
SUP = Actor("sup1", "supervisor")
ROADS = Actor("roads", "department", departments=("transport",))
CONTACT = rc.Contact(name="Mario Rossi", phone="06 1234 5678", email="mario@example.it")

H_AGENT = actor("op1", "agent")
H_TRANSPORT = actor("roads", "department", ["transport"])
H_ENVIRONMENT = actor("parks", "department", ["environment"])
H_ANALYST = actor("sara", "analyst")
H_AUDITOR = actor("omar", "auditor")


def image(fmt: str, color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (32, 24)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


JPEG = image("JPEG")
PNG = image("PNG")
WEBP = image("WEBP")
PDF = image("PDF")
# A DOS/PE executable's header ("MZ" … "PE\0\0"), as any Windows program starts.
EXE = (
    b"MZ\x90\x00\x03"
    + b"\x00" * 55
    + b"\x80\x00\x00\x00"
    + b"This program cannot be run in DOS mode.\r\r\n$"
    + b"\x00" * 20
    + b"PE\x00\x00"
)
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 57
HTML = b"<!DOCTYPE html>\n<html><body><script>fetch('/requests').then(r => r.text()).then(alert)</script></body></html>\n"
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>\n'
TEXT = "Il lampione in via Roma 3 è spento da tre giorni.\n路灯不亮。\n".encode()


def register(h: Hotline, **kw: Any) -> str:
    fields: dict[str, Any] = {"kind": "action", "subtype": "complaint", "channel": "phone", "description": "Pothole", "contact": CONTACT}
    fields.update(kw)
    return str(h.bus.execute(rc.RegisterRequest(**fields), AGENT).result["reference"])


def dispatched(h: Hotline) -> str:
    """A pothole request, dispatched to the transport department (the catalogue's route)."""
    ref = register(h, problem_code="pothole")
    h.bus.execute(rc.Dispatch(ref=ref), AGENT)
    return ref


def citizen_of(h: Hotline, ref: str) -> str:
    return str(h.store.read_reference(request_id_for(ref)).citizen_id)


@pytest.fixture
def client(hotline: Hotline) -> Iterator[SignedInClient]:
    with SignedInClient(create_app(hotline=hotline)) as c:
        yield c


def upload(client: SignedInClient, path: str, data: bytes, filename: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    return client.post(path, files={"file": (filename, data, "image/jpeg")}, headers=headers or H_AGENT, **kw)


def blob_count(h: Hotline) -> int:
    """How many blobs the store holds, counted where they live (files, or large objects)."""
    if isinstance(h.attachments.blobs, LargeObjectBlobs):
        with h.read_store.engine.connect() as conn:
            n_rows = conn.execute(sa.text("SELECT count(*) FROM attachment_blobs")).scalar_one()
            n_objects = conn.execute(sa.text("SELECT count(*) FROM pg_largeobject_metadata")).scalar_one()
        assert n_rows == n_objects, "a large object without its index row, or the reverse"
        return int(n_rows)
    root = h.settings.data_dir / "attachments"
    return sum(1 for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------------ round trip
def test_upload_list_download_round_trip(hotline: Hotline, client: SignedInClient) -> None:
    ref = dispatched(hotline)
    r = upload(client, f"/requests/{ref}/attachments", JPEG, "buca via Roma.jpg")
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["sha256"] == hashlib.sha256(JPEG).hexdigest()
    assert (a["content_type"], a["size"], a["filename"], a["source"]) == ("image/jpeg", len(JPEG), "buca via Roma.jpg", "api")
    assert r.headers["Location"] == f"/attachments/{a['id']}/content"

    listed = client.get(f"/requests/{ref}/attachments", params={"min_position": a["position"]}, headers=H_AGENT)
    assert listed.status_code == 200, listed.text
    [row] = listed.json()
    assert row["id"] == a["id"] and row["request_ref"] == ref and row["attached_by"] == "op1"
    assert row["content_url"] == f"/attachments/{a['id']}/content"

    got = client.get(row["content_url"], headers=H_AGENT)
    assert got.status_code == 200
    assert got.content == JPEG
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"] == "attachment; filename=\"buca via Roma.jpg\"; filename*=UTF-8''buca%20via%20Roma.jpg"
    inline = client.get(row["content_url"], params={"disposition": "inline"}, headers=H_AGENT)
    assert inline.headers["content-disposition"].startswith("inline;")

    # Where the bytes are: a file named by its hash (embedded), or a large object (PostgreSQL).
    if hotline.settings.database_url:
        assert isinstance(hotline.attachments.blobs, LargeObjectBlobs)
    else:
        sha = a["sha256"]
        assert (hotline.settings.data_dir / "attachments" / sha[:2] / sha[2:]).read_bytes() == JPEG
    assert hotline.attachments.get(a["sha256"]) == JPEG


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (PNG, "scan.txt", "image/png"),
        (WEBP, "photo", "image/webp"),
        (PDF, "letter.jpg", "application/pdf"),
        (TEXT, "note.exe", "text/plain"),
    ],
)
def test_the_type_is_read_from_the_content_not_the_name(
    hotline: Hotline, client: SignedInClient, data: bytes, name: str, expected: str
) -> None:
    ref = dispatched(hotline)
    r = upload(client, f"/requests/{ref}/attachments", data, name)
    assert r.status_code == 201, r.text
    assert r.json()["content_type"] == expected
    got = client.get(f"/attachments/{r.json()['id']}/content", headers=H_AGENT)
    assert got.content == data
    assert got.headers["content-type"].split(";")[0] == expected


@pytest.mark.parametrize(
    ("data", "name", "detected"),
    [
        (EXE, "photo.jpg", "application/x-msdownload"),
        (ELF, "photo.jpg", "application/x-executable"),
        (HTML, "photo.png", "text/html"),
        (SVG, "map.png", "image/svg+xml"),
        (b"\x00\x01\x02binary\xff\xfe", "notes.txt", "application/octet-stream"),
    ],
)
def test_refused_by_content(hotline: Hotline, client: SignedInClient, data: bytes, name: str, detected: str) -> None:
    ref = dispatched(hotline)
    before = blob_count(hotline)
    r = upload(client, f"/requests/{ref}/attachments", data, name)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "attachment_type"
    assert error["details"]["detected_type"] == detected
    assert "image/jpeg" in error["details"]["allowed_types"]
    assert blob_count(hotline) == before  # nothing stored
    assert client.get(f"/requests/{ref}/attachments", headers=H_AGENT).json() == []


def test_empty_file_and_missing_part_are_refused(hotline: Hotline, client: SignedInClient) -> None:
    ref = dispatched(hotline)
    assert upload(client, f"/requests/{ref}/attachments", b"", "x.jpg").json()["error"]["code"] == "attachment_empty"
    r = client.post(f"/requests/{ref}/attachments", data={"source": "api"}, files={"other": ("a", b"x")}, headers=H_AGENT)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "file"
    r = client.post(f"/requests/{ref}/attachments", json={"file": "no"}, headers=H_AGENT)
    assert r.status_code == 422


def test_size_limit_is_413_with_a_json_body(hotline: Hotline, client: SignedInClient) -> None:
    ref = dispatched(hotline)
    hotline.attachments.max_bytes = limit = 4096
    before = blob_count(hotline)
    exactly = TEXT * (limit // len(TEXT)) + b"x" * (limit % len(TEXT))
    assert len(exactly) == limit
    assert upload(client, f"/requests/{ref}/attachments", exactly, "ok.txt").status_code == 201
    # One byte over: read and refused.
    r = upload(client, f"/requests/{ref}/attachments", exactly + b"x", "big.txt")
    assert r.status_code == 413, r.text
    assert r.json()["error"] == {
        "status": 413,
        "code": "attachment_too_large",
        "message": f"the attachment is too large: {limit + 1} bytes, the limit is {limit} bytes",
        "details": {"field": "file", "max_bytes": limit, "size": limit + 1},
    }
    # Far over: refused on its Content-Length, before the body is read.
    r = upload(client, f"/requests/{ref}/attachments", b"x" * (limit + 100_000), "huge.txt")
    assert r.status_code == 413 and r.json()["error"]["details"]["max_bytes"] == limit
    assert blob_count(hotline) == before + 1
    assert len(client.get(f"/requests/{ref}/attachments", headers=H_AGENT).json()) == 1


def test_default_limit_is_ten_megabytes(hotline: Hotline) -> None:
    assert hotline.attachments.max_bytes == 10 * 1024 * 1024
    with pytest.raises(InvalidCommand) as refused:
        hotline.attachments.check(b"\xff\xd8\xff" + b"\x00" * (10 * 1024 * 1024), "big.jpg")
    assert refused.value.code == "attachment_too_large"


# ------------------------------------------------------------------------ storage
def test_the_same_bytes_are_stored_once(hotline: Hotline, client: SignedInClient) -> None:
    first, second = dispatched(hotline), dispatched(hotline)
    before = blob_count(hotline)
    a = upload(client, f"/requests/{first}/attachments", PNG, "one.png").json()
    b = upload(client, f"/requests/{second}/attachments", PNG, "other name.png").json()
    c = upload(client, f"/requests/{first}/attachments", PNG, "again.png").json()
    assert a["sha256"] == b["sha256"] == c["sha256"]
    assert len({a["id"], b["id"], c["id"]}) == 3  # three attachments …
    assert blob_count(hotline) == before + 1  # … one blob
    for x in (a, b, c):
        assert client.get(f"/attachments/{x['id']}/content", headers=H_AGENT).content == PNG
    names = [r["filename"] for r in client.get(f"/requests/{first}/attachments", headers=H_AGENT).json()]
    assert names == ["one.png", "again.png"]


def test_bytes_are_read_from_an_offset_on(hotline: Hotline) -> None:
    """A media player's range is read from its first byte, in either store (files or
    PostgreSQL large objects), across chunk boundaries."""
    data = bytes(range(256)) * (2 * CHUNK // 256 + 7)  # two chunks and a bit
    digest = hashlib.sha256(data).hexdigest()
    hotline.attachments.blobs.write(digest, data)
    for start in (0, 1, CHUNK - 1, CHUNK, CHUNK + 5, len(data) - 1, len(data)):
        read = list(hotline.attachments.open(digest, start=start))
        assert b"".join(read) == data[start:], start
        assert len(read) == -(-(len(data) - start) // CHUNK), start  # no chunk read before the offset


def test_a_failed_write_leaves_no_blob_and_no_event(hotline: Hotline, client: SignedInClient, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = dispatched(hotline)
    before = blob_count(hotline)
    blobs = hotline.attachments.blobs
    if isinstance(blobs, LargeObjectBlobs):
        # The large object and its row are one transaction: a failure after the insert undoes both.
        def failing_write(sha256: str, data: bytes) -> bool:
            with blobs.engine.connect() as conn, conn.begin():
                conn.execute(
                    sa.text("INSERT INTO attachment_blobs (sha256, loid, size) VALUES (:h, lo_from_bytea(0, :d), :n)"),
                    {"h": sha256, "d": data, "n": len(data)},
                )
                raise OSError("connection lost")

        monkeypatch.setattr(blobs, "write", failing_write)
    else:
        import infra.attachments as module

        def crash(src: Any, dst: Any) -> None:
            raise OSError("power cut before the rename")

        monkeypatch.setattr(module.os, "replace", crash)
    with pytest.raises(OSError):
        upload(client, f"/requests/{ref}/attachments", JPEG, "a.jpg")
    monkeypatch.undo()
    assert blob_count(hotline) == before  # no half blob under its hash, no temporary file left
    assert not hotline.attachments.exists(hashlib.sha256(JPEG).hexdigest())
    assert client.get(f"/requests/{ref}/attachments", headers=H_AGENT).json() == []
    # And it works once the store does.
    assert upload(client, f"/requests/{ref}/attachments", JPEG, "a.jpg").status_code == 201


def test_the_blob_is_there_before_the_event(hotline: Hotline, client: SignedInClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The router stores the bytes first and issues the command after: when AttachFile
    runs, its blob is already in the store (a refused command leaves an unused blob,
    never an event naming bytes that are not there)."""
    ref = dispatched(hotline)
    seen: list[bool] = []
    execute = hotline.bus.execute

    def watching(cmd: Any, *args: Any, **kw: Any) -> Any:
        if isinstance(cmd, ac.AttachFile):
            seen.append(hotline.attachments.exists(cmd.sha256))
        return execute(cmd, *args, **kw)

    monkeypatch.setattr(hotline.bus, "execute", watching)
    assert upload(client, f"/requests/{ref}/attachments", WEBP, "a.webp").status_code == 201
    assert seen == [True]


# ------------------------------------------------------------------------ permissions
def test_who_may_read_and_add(hotline: Hotline, client: SignedInClient) -> None:
    ref = dispatched(hotline)  # to transport
    citizen = citizen_of(hotline, ref)
    other_ref = register(hotline, contact=rc.Contact(name="Lucia Bianchi", phone="06 7654 3210"))
    other_citizen = citizen_of(hotline, other_ref)
    assert other_citizen != citizen
    a = upload(client, f"/requests/{ref}/attachments", JPEG, "a.jpg").json()
    content, listing = f"/attachments/{a['id']}/content", f"/requests/{ref}/attachments"

    for who in (H_AGENT, H_TRANSPORT, H_AUDITOR, actor("mario", "citizen", citizen=citizen)):
        assert client.get(listing, headers=who).status_code == 200, who
        assert client.get(content, headers=who).content == JPEG, who
    for who in (H_ENVIRONMENT, H_ANALYST, actor("lucia", "citizen", citizen=other_citizen)):
        for path in (listing, content):
            r = client.get(path, headers=who)
            assert r.status_code == 403, (who, path, r.text)
            assert r.json()["error"]["code"] == "forbidden"
    assert client.request("GET", content, anonymous=True).status_code == 401

    # Adding: the citizen to their own case, the department to its own; not the others.
    mine = upload(client, listing, PNG, "mine.png", headers=actor("mario", "citizen", citizen=citizen))
    assert mine.status_code == 201, mine.text
    assert upload(client, listing, PNG, "x.png", headers=actor("lucia", "citizen", citizen=other_citizen)).status_code == 403
    assert upload(client, listing, PNG, "x.png", headers=H_ENVIRONMENT).status_code == 403
    assert upload(client, listing, PNG, "x.png", headers=H_ANALYST).status_code == 403
    assert upload(client, listing, PNG, "x.png", headers=H_AUDITOR).status_code == 403
    assert upload(client, listing, WEBP, "dept.webp", headers=H_TRANSPORT).status_code == 201
    assert [r["attached_by_role"] for r in client.get(listing, headers=H_AGENT).json()] == ["agent", "citizen", "department"]
    # The event keeps the citizen whose key will cover the attachment's personal data.
    citizens = {e.data["citizen_id"] for e in hotline.store.iter_envelopes() if e.stream == "attachment"}
    assert citizens == {citizen}


def test_the_command_checks_the_subject_too(hotline: Hotline) -> None:
    ref = dispatched(hotline)
    blob = hotline.attachments.put(JPEG)
    cmd = ac.AttachFile(request_ref=ref, sha256=blob.sha256, content_type=blob.content_type, size=blob.size, source="email")
    with pytest.raises(Forbidden):
        hotline.bus.execute(cmd, Actor("parks", "department", departments=("environment",)))
    assert hotline.bus.execute(cmd, Actor("system", "system")).result["source"] == "email"


def test_work_order_attachments(hotline: Hotline, client: SignedInClient) -> None:
    ref = dispatched(hotline)
    order_id = hotline.bus.execute(woc.CreateWorkOrder(ref=ref), AGENT).result["id"]
    citizen = citizen_of(hotline, ref)
    r = upload(client, f"/work-orders/{order_id}/attachments", JPEG, "after repair.jpg", headers=H_TRANSPORT)
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["work_order_id"] == order_id and a["request_id"] is None
    listing = f"/work-orders/{order_id}/attachments"
    assert [x["id"] for x in client.get(listing, headers=H_TRANSPORT).json()] == [a["id"]]
    assert client.get(f"/attachments/{a['id']}/content", headers=H_TRANSPORT).content == JPEG
    assert upload(client, listing, JPEG, "x.jpg", headers=H_AGENT).status_code == 403  # agents read orders, do not work them
    assert client.get(listing, headers=H_AGENT).status_code == 200
    blob = hotline.attachments.put(PNG)
    cmd = ac.AttachFile(work_order_id=order_id, sha256=blob.sha256, content_type=blob.content_type, size=blob.size, source="open311")
    with pytest.raises(Forbidden):
        hotline.bus.execute(cmd, Actor("app", "integrator"))  # the command says the same as the route
    for who in (H_ENVIRONMENT, actor("mario", "citizen", citizen=citizen)):
        assert client.get(listing, headers=who).status_code == 403
        assert client.get(f"/attachments/{a['id']}/content", headers=who).status_code == 403
        assert upload(client, listing, JPEG, "x.jpg", headers=who).status_code == 403
    assert client.get(f"/requests/{ref}/attachments", headers=H_AGENT).json() == []  # the order's, not the request's
    assert client.get("/work-orders/not-an-id/attachments", headers=H_AGENT).status_code == 404


# ------------------------------------------------------------------------ by reference, removal
def test_a_media_url_is_kept_by_reference(hotline: Hotline, client: SignedInClient) -> None:
    ref = dispatched(hotline)
    url = "https://fixmystreet.example.org/photo/123.jpeg"
    out = hotline.bus.execute(ac.AttachFile(request_ref=ref, url=url, source="open311"), Actor("app", "integrator")).result
    [row] = client.get(f"/requests/{ref}/attachments", headers=H_AGENT).json()
    assert (row["url"], row["sha256"], row["content_url"], row["source"]) == (url, None, None, "open311")
    r = client.get(f"/attachments/{out['id']}/content", headers=H_AGENT)
    assert r.status_code == 404 and r.json()["error"]["details"]["url"] == url
    with pytest.raises(InvalidCommand):
        hotline.bus.execute(ac.AttachFile(request_ref=ref, url="javascript:alert(1)", source="open311"), AGENT)
    with pytest.raises(InvalidCommand):
        hotline.bus.execute(ac.AttachFile(request_ref=ref, source="api"), AGENT)  # neither bytes nor url


def test_removal(hotline: Hotline, client: SignedInClient) -> None:
    ref = dispatched(hotline)
    a = upload(client, f"/requests/{ref}/attachments", JPEG, "wrong case.jpg").json()
    assert client.post(f"/attachments/{a['id']}/remove", json={"reason": "another citizen's photo"}, headers=H_AGENT).status_code == 403
    r = client.post(f"/attachments/{a['id']}/remove", json={"reason": "another citizen's photo"})  # a supervisor
    assert r.status_code == 200, r.text
    assert client.get(f"/requests/{ref}/attachments", headers=H_AGENT).json() == []
    [kept] = client.get(f"/requests/{ref}/attachments", params={"include_removed": True}, headers=H_AGENT).json()
    assert kept["removed"] is True and kept["content_url"] is None
    assert client.get(f"/attachments/{a['id']}/content", headers=H_AGENT).status_code == 404
    assert client.post(f"/attachments/{a['id']}/remove", json={"reason": "again"}).status_code == 409


def test_unknown_subjects_are_404(hotline: Hotline, client: SignedInClient) -> None:
    assert upload(client, "/requests/NOPE-1/attachments", JPEG, "a.jpg").status_code == 404
    assert client.get("/requests/NOPE-1/attachments", headers=H_AGENT).status_code == 404
    assert client.get("/attachments/00000000-0000-0000-0000-000000000000/content", headers=H_AGENT).status_code == 404
    assert client.get("/attachments/nope/content", headers=H_AGENT).status_code == 404


def test_directory_store_writes_atomically(tmp_path: Path) -> None:
    from infra.attachments import AttachmentStore, DirectoryBlobs

    store = AttachmentStore(DirectoryBlobs(tmp_path / "att"), 1 << 20)
    blob = store.put(JPEG, "../../etc/passwd\x00.jpg")
    assert blob.filename == "passwd.jpg"
    path = tmp_path / "att" / blob.sha256[:2] / blob.sha256[2:]
    assert path.read_bytes() == JPEG
    assert store.blobs.write(blob.sha256, JPEG) is False  # already there: not written again
    assert [p.name for p in path.parent.iterdir()] == [blob.sha256[2:]]  # no temporary file left
    assert store.delete(blob.sha256) and not store.exists(blob.sha256)


# ------------------------------------------------------------------------ sniffing and settings
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "image/heic"),  # an iPhone photo's ISO-BMFF header
        (b"plain text, 3 < 4 and a<b", "text/plain"),
        (b"\xef\xbb\xbfnote with a byte-order mark\r\n", "text/plain"),
        (b"see <A HREF='http://x'>here</a>", "text/html"),
        (b"  <svg onload=alert(1)>", "image/svg+xml"),
        (b"caf\xe9 in Latin-1", "application/octet-stream"),  # not UTF-8: not taken as text
    ],
)
def test_sniff(data: bytes, expected: str) -> None:
    from infra.attachments import sniff

    assert sniff(data) == expected


def test_types_and_limit_come_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.attachments import AttachmentStore
    from infra.settings import Settings

    monkeypatch.setenv("HOTLINE_ATTACHMENTS_ALLOWED_TYPES", '["image/png"]')
    monkeypatch.setenv("HOTLINE_ATTACHMENTS_MAX_BYTES", "100000")
    monkeypatch.setenv("HOTLINE_ATTACHMENTS_DIR", str(tmp_path / "elsewhere"))
    store = AttachmentStore.for_settings(Settings(data_dir=tmp_path))
    assert store.max_bytes == 100000 and store.allowed_types == ("image/png",)
    assert store.put(PNG).content_type == "image/png"
    assert (tmp_path / "elsewhere").is_dir() and not (tmp_path / "attachments").exists()
    with pytest.raises(InvalidCommand) as refused:
        store.put(JPEG)
    assert refused.value.details["detected_type"] == "image/jpeg"
