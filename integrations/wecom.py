"""WeCom (企业微信) group robot: ``{"msgtype": "markdown", "markdown": {"content": ...}}``.

The robot URL carries its key (``.../webhook/send?key=...``); WeCom answers
``{"errcode": 0, "errmsg": "ok"}``; any other errcode is a failure.
"""
from __future__ import annotations

from datetime import datetime

from integrations.base import CallResult, Notice
from integrations.http import post_json
from integrations.robots import check_errcode, markdown_text


class WeComRobot:
    kind = "wecom"

    def __init__(self, name: str, url: str, timeout: float = 10.0) -> None:
        self.name, self.url, self.timeout = name, url, timeout

    def send(self, notice: Notice, *, now: datetime) -> CallResult:
        payload = {"msgtype": "markdown", "markdown": {"content": markdown_text(notice)}}
        return check_errcode(post_json(self.url, payload, timeout=self.timeout), "errcode")
