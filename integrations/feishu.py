"""Feishu / Lark (飞书) group robot: ``{"msg_type": "text", "content": {"text": ...}}``.

With a signing secret the body also carries ``timestamp`` (seconds) and
``sign`` = base64(HMAC-SHA256(key="<timestamp>\\n<secret>", message=b"")).
Feishu answers ``{"code": 0, "msg": "success"}`` (older robots: ``StatusCode``).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from integrations.base import CallResult, Notice
from integrations.http import post_json
from integrations.robots import check_errcode, plain_text


def sign(secret: str, timestamp: int) -> str:
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class FeishuRobot:
    kind = "feishu"

    def __init__(self, name: str, url: str, secret: str | None = None, timeout: float = 10.0) -> None:
        self.name, self.url, self.secret, self.timeout = name, url, secret, timeout

    def send(self, notice: Notice, *, now: datetime) -> CallResult:
        payload: dict = {"msg_type": "text", "content": {"text": plain_text(notice)}}
        if self.secret:
            timestamp = int(now.timestamp())
            payload.update(timestamp=str(timestamp), sign=sign(self.secret, timestamp))
        return check_errcode(post_json(self.url, payload, timeout=self.timeout), "code", "StatusCode")
