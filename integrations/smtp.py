"""E-mail over SMTP (stdlib ``smtplib``).

Addresses come from the channel's configuration: an explicit map of
usernames to addresses, else ``address_template`` (e.g. ``{username}@corp.example``).
"""
from __future__ import annotations

import smtplib
import time
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from integrations.base import CallResult, Notice


class SmtpMail:
    kind = "smtp"

    def __init__(self, name: str, host: str, port: int = 25, *, sender: str, addresses: Mapping[str, str] | None = None,
                 address_template: str | None = None, starttls: bool = False, username: str | None = None,
                 password: str | None = None, timeout: float = 10.0) -> None:
        self.name, self.host, self.port, self.sender = name, host, port, sender
        self.addresses = dict(addresses or {})
        self.address_template = address_template
        self.starttls, self.username, self.password, self.timeout = starttls, username, password, timeout

    def address_of(self, username: str) -> str | None:
        if username in self.addresses:
            return self.addresses[username]
        return self.address_template.format(username=username) if self.address_template else None

    def send(self, notice: Notice, *, now: datetime) -> CallResult:
        endpoint = f"smtp://{self.host}:{self.port}"
        started = time.perf_counter()
        to = self.address_of(notice.username)
        request = {"to": to, "subject": notice.title}

        def result(ok: bool, status: str, error: str | None = None) -> CallResult:
            return CallResult(ok=ok, endpoint=endpoint, status=status, request=request, error=error,
                              duration_ms=(time.perf_counter() - started) * 1000)

        if not to:
            return result(False, "no_address", f"no e-mail address configured for {notice.username}")
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self.sender, to, notice.title
        mail["Date"], mail["Message-ID"] = format_datetime(now), make_msgid(domain="bpm-server")
        signature = notice.extra.get("signature") or f"BPM server notification for {notice.display_name}"
        mail.set_content(f"{notice.body}\n\n-- \n{signature} ({notice.kind})")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as server:
                if self.starttls:
                    server.starttls()
                if self.username:
                    server.login(self.username, self.password or "")
                refused = server.send_message(mail)
        except TimeoutError:
            return result(False, "timeout", f"no answer within {self.timeout:g} s")
        except (smtplib.SMTPException, OSError) as exc:
            return result(False, "error", f"{exc.__class__.__name__}: {exc}")
        if refused:
            return result(False, "refused", f"recipients refused: {refused}")
        return result(True, "sent")
