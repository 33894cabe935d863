"""A generic JSON webhook: the notice as JSON, optionally signed like our other calls."""
from __future__ import annotations

import json
from datetime import datetime

from integrations.base import CallResult, Notice
from integrations.http import post_json
from integrations.signing import signed_headers


class JsonWebhook:
    kind = "webhook"

    def __init__(self, name: str, url: str, secret: str | None = None, timeout: float = 10.0) -> None:
        self.name, self.url, self.secret, self.timeout = name, url, secret, timeout

    def send(self, notice: Notice, *, now: datetime) -> CallResult:
        payload = {"kind": notice.kind, "title": notice.title, "body": notice.body, "username": notice.username,
                   "display_name": notice.display_name, "department": notice.department,
                   "task_id": notice.task_id, "sent_at": now.isoformat(), **dict(notice.extra)}
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        headers = signed_headers(self.secret, int(now.timestamp()), body)
        return post_json(self.url, payload, headers=headers, timeout=self.timeout, body=body)
