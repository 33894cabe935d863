"""The other side of every integration, on loopback: a fake ERP, a robot/webhook
receiver and an SMTP sink. Real sockets, real protocols; tests tell them how to behave."""
from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller


@dataclass
class Received:
    path: str
    query: dict[str, list[str]]
    headers: Any  # case-insensitive, like HTTP headers
    body: bytes
    method: str = "POST"

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        parts = urlsplit(self.path)
        owner = self.server.owner
        with owner.lock:
            owner.requests.append(Received(parts.path, parse_qs(parts.query), self.headers, body, self.command))
            status, answer, hang = owner.next_answer()
        if hang:  # bounded, so a test that forgets to release cannot hang the run
            owner.released.wait(timeout=60)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

    do_GET = do_POST  # the generic HTTP connector's GET requests (no body: Content-Length absent)
    do_PUT = do_POST

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: HttpFake


class HttpFake:
    """A loopback HTTP server that records requests and answers as told.

    ``fail(n)`` makes the next n requests answer 500; ``mode`` can be "ok",
    "garbage" (200 with a non-JSON body) or "hang" (answers only once
    ``release()`` or ``stop()`` is called: a client with a timeout gives up first).
    """

    def __init__(self, ok_body: Any = None) -> None:
        self.ok_body = ok_body if ok_body is not None else {"ok": True}
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.failures_left = 0
        self.mode = "ok"
        self.released = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> HttpFake:
        self._thread.start()
        return self

    def release(self) -> None:
        """Let every hanging request answer."""
        self.released.set()

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def fail(self, times: int) -> None:
        with self.lock:
            self.failures_left = times

    def next_answer(self) -> tuple[int, bytes, bool]:
        """Status, body, and whether to hang before answering."""
        if self.failures_left > 0:
            self.failures_left -= 1
            return 500, b'{"error": "ERP is having a bad day"}', False
        if self.mode == "garbage":
            return 200, b"<html>maintenance</html>", False
        body = self.ok_body(len(self.requests)) if callable(self.ok_body) else self.ok_body
        return 200, json.dumps(body).encode(), self.mode == "hang"


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    subject: str
    body: str


@dataclass
class MailSink:
    """An SMTP server (aiosmtpd) on loopback that keeps every mail it accepts."""

    mails: list[Mail] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd hook
        # The default policy decodes headers (a Chinese subject), as a mail client shows them.
        parsed = message_from_bytes(envelope.content, policy=email_policy.default)
        # A single-part message's payload, decoded, is bytes.
        body = cast(bytes, parsed.get_payload(decode=True)).decode() if not parsed.is_multipart() else ""
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), parsed["Subject"], body))
        return "250 OK"

    def start(self) -> MailSink:
        with socket.socket() as probe:  # a free port (aiosmtpd checks readiness by connecting to it)
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
