"""DingTalk (钉钉) group robot: ``{"msgtype": "markdown", "markdown": {"title", "text"}}``.

With a signing secret ("加签"), the URL gets ``timestamp`` (milliseconds) and
``sign`` = base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>")), URL-encoded.
DingTalk answers ``{"errcode": 0, "errmsg": "ok"}``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from urllib.parse import quote_plus

from integrations.base import CallResult, Notice
from integrations.http import post_json
from integrations.robots import check_errcode, markdown_text


def sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class DingTalkRobot:
    kind = "dingtalk"

    def __init__(self, name: str, url: str, secret: str | None = None, timeout: float = 10.0) -> None:
        self.name, self.url, self.secret, self.timeout = name, url, secret, timeout

    def send(self, notice: Notice, *, now: datetime) -> CallResult:
        url = self.url
        if self.secret:
            timestamp = int(now.timestamp() * 1000)
            signature = quote_plus(sign(self.secret, timestamp))
            url += ("&" if "?" in url else "?") + f"timestamp={timestamp}&sign={signature}"
        payload = {"msgtype": "markdown", "markdown": {"title": notice.title, "text": markdown_text(notice)}}
        return check_errcode(post_json(url, payload, timeout=self.timeout), "errcode")
