"""Real servers on loopback for the notification tests: an SMTP server (aiosmtpd) that
keeps what arrives, and an HTTP server standing in for the SMS/fax/voicemail provider.

Run ``python -m tests.sla.servers`` to keep both up for a manual try of ``hotline notify``.
"""

from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MailSink:
    """aiosmtpd handler that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(msg)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.sink = MailSink()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        with self.sink.lock:
            return list(self.sink.messages)


class Provider:
    """The HTTP provider: deduplicates by Idempotency-Key like real gateways, and can be
    told to fail the next N calls (503) or to refuse everything (400)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.calls: list[dict[str, Any]] = []  # every POST, duplicates included
        self.delivered: dict[str, dict[str, Any]] = {}  # by idempotency key
        self.fail_next = 0
        self.refuse = False
        self.lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                key = self.headers.get("Idempotency-Key", "")
                with provider.lock:
                    provider.calls.append({"key": key, **body})
                    if provider.refuse:
                        status, answer = 400, {"error": "number not reachable"}
                    elif provider.fail_next > 0:
                        provider.fail_next -= 1
                        status, answer = 503, {"error": "busy"}
                    else:
                        provider.delivered.setdefault(key, body)
                        status, answer = 200, {"id": f"prov-{len(provider.delivered)}"}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Provider:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    with SmtpServer() as smtp, Provider() as prov:
        print(f"SMTP on 127.0.0.1:{smtp.port}, provider on {prov.url}; Ctrl-C to stop")
        threading.Event().wait()
