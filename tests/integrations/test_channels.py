# ruff: noqa: RUF001 - Chinese text uses full-width punctuation
"""Escalations reach people where they work: e-mail (SMTP sink), WeCom, DingTalk and Feishu
robots and a generic webhook (a loopback HTTP server), each in its own format, sent by
jobs with retries; a channel that is down delays only itself."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from integrations.registry import ChannelConfigError, load_channels
from tests.api.flows import open_task, start_project
from tests.integrations.conftest import BACKOFF, pump
from tests.integrations.fakes import HttpFake, MailSink
from tests.support import signed_by

ROBOT_OK = {"errcode": 0, "errmsg": "ok", "code": 0, "msg": "success"}
DING_SECRET, FEISHU_SECRET, HOOK_SECRET = "SEC-ding", "feishu-secret", "hook-secret"


@pytest.fixture
def robots() -> Iterator[HttpFake]:
    fake = HttpFake(ok_body=ROBOT_OK).start()
    yield fake
    fake.stop()


@pytest.fixture
def mail() -> Iterator[MailSink]:
    sink = MailSink().start()
    yield sink
    sink.stop()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def down_url() -> str:
    return f"http://127.0.0.1:{closed_port()}/cgi-bin/webhook/send?key=down-key"


@pytest.fixture
def channels_file(tmp_path: Path, robots: HttpFake, mail: MailSink, down_url: str) -> Path:
    document = {
        "channels": {
            "mail": {"type": "smtp", "host": "127.0.0.1", "port": mail.port, "sender": "bpm@corp.example",
                     "address_template": "{username}@corp.example", "timeout": 5},
            "sales-wecom": {"type": "wecom", "url": f"{robots.url}/cgi-bin/webhook/send?key=wecom-key"},
            "sales-dingtalk": {"type": "dingtalk", "url": f"{robots.url}/robot/send?access_token=ding-token",
                               "secret": DING_SECRET},
            "pmo-feishu": {"type": "feishu", "url": f"{robots.url}/open-apis/bot/v2/hook/feishu-token",
                           "secret": FEISHU_SECRET},
            "ops-hook": {"type": "webhook", "url": f"{robots.url}/bpm-events", "secret": HOOK_SECRET},
            "broken-wecom": {"type": "wecom", "url": down_url, "timeout": 1},
        },
        "routes": {"users": {"sales": ["mail"]},
                   "departments": {"sales": ["sales-wecom", "sales-dingtalk", "pmo-feishu", "ops-hook"],
                                   "consulting": ["broken-wecom", "mail"]}},
    }
    path = tmp_path / "channels.json"
    path.write_text(json.dumps(document))
    return path


def warn_kickoff(people, app, *, caller: str = "sales") -> str:
    """A standard-tier kickoff claimed by ``caller`` and moved past its warning point."""
    from datetime import datetime

    from bpm_server.database import db
    from bpm_server.runtime import advance_test_clock

    iid = start_project(people["sales"], account_id="GAMMA")["id"]
    task = open_task(people["sales"], iid, "kickoff")
    assert people[caller].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    with app.app_context():
        # The warning falls at 14:48.
        advance_test_clock(db.session, app.extensions["bpm"], datetime.fromisoformat("2026-03-03T16:00:00+08:00"))
        db.session.commit()
        db.session.remove()
    return task["id"]


def test_a_warning_reaches_mail_and_every_robot_in_its_own_format(people, synced_app, robots, mail):
    task_id = warn_kickoff(people, synced_app)
    assert [n["kind"] for n in people["sales"].get("/api/v1/notifications").get_json()["items"]] == ["sla_warning"]
    # Deliveries are queued after the SLA transaction commits (the embedded runner may
    # already be sending them now, so only their end state is asserted).
    pump(synced_app)

    # In the recipient's language, Chinese by default, with the account's name and the local due time.
    assert [(m.recipients, m.subject) for m in mail.mails] == [
        (["sales@corp.example"], "即将超时：项目启动（GAMMA Ltd）")]
    assert mail.mails[0].body.startswith(
        "客户 GAMMA Ltd 的阶段“项目启动”即将到期（截止时间 2026-03-03 18:00）。")
    assert "BPM 服务器发给 sales 的通知" in mail.mails[0].body
    by_path = {r.path: r for r in robots.requests}
    assert set(by_path) == {"/cgi-bin/webhook/send", "/robot/send", "/open-apis/bot/v2/hook/feishu-token",
                            "/bpm-events"}

    wecom = by_path["/cgi-bin/webhook/send"].json
    assert wecom["msgtype"] == "markdown" and "即将超时：项目启动（GAMMA Ltd）" in wecom["markdown"]["content"]
    assert "致 sales（sales）" in wecom["markdown"]["content"]

    ding = by_path["/robot/send"]
    assert ding.json["msgtype"] == "markdown"
    assert ding.json["markdown"]["title"] == "即将超时：项目启动（GAMMA Ltd）"
    timestamp = ding.query["timestamp"][0]
    expected = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{timestamp}\n{DING_SECRET}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert ding.query["sign"] == [expected] and ding.query["access_token"] == ["ding-token"]

    feishu = by_path["/open-apis/bot/v2/hook/feishu-token"].json
    assert feishu["msg_type"] == "text" and "项目启动" in feishu["content"]["text"]
    key = f"{feishu['timestamp']}\n{FEISHU_SECRET}".encode()
    assert feishu["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()

    hook = by_path["/bpm-events"]
    assert hook.json["kind"] == "sla_warning" and hook.json["task_id"] == task_id and hook.json["username"] == "sales"
    assert signed_by(HOOK_SECRET, hook.headers, hook.body)

    log = people["auditor"].get("/api/v1/integration-log?direction=outbound").get_json()["items"]
    assert sorted(e["system"] for e in log) == ["dingtalk", "feishu", "smtp", "webhook", "wecom"]
    assert all(e["outcome"] == "ok" for e in log)
    endpoints = " ".join(e["endpoint"] for e in log)
    assert "wecom-key" not in endpoints and "ding-token" not in endpoints and "feishu-token" not in endpoints


def test_a_channel_that_is_down_retries_and_gives_up_without_blocking_anything(people, synced_app, mail, clock):
    from bpm_server.database import db
    from bpm_server.notifications.channels import deliveries

    task_id = warn_kickoff(people, synced_app, caller="admin")  # admin (department it) gets no robots
    # Route the notice to consulting's people instead: the broken robot and mail.
    with synced_app.app_context():
        from bpm_server.identity.models import User
        from bpm_server.notifications.service import InAppNotifier, Message

        consultant = db.session.query(User).filter_by(username="consulting").one()
        InAppNotifier().notify(db.session, consultant, Message("sla_breach", "SLA breach: Needs research (GAMMA)",
                                                               "past due", task_id), clock.now())
        db.session.commit()
        db.session.remove()
    pump(synced_app)
    assert [m.recipients for m in mail.mails] == [["consulting@corp.example"]]  # mail went out at once

    for _ in range(3):  # the robot stays down through every retry (3 attempts in these tests)
        clock.set(clock.now() + BACKOFF * 4)
        pump(synced_app)
    with synced_app.app_context():
        states = {(d.channel, d.state, d.attempts) for d in deliveries(db.session, username="consulting")}
        db.session.remove()
    assert states == {("mail", "sent", 1), ("broken-wecom", "failed", 3)}
    failures = list(people["auditor"].get("/api/v1/integration-log?system=wecom").get_json()["items"])
    assert len(failures) == 3 and all(e["outcome"] == "failed" and "cannot connect" in e["error"] for e in failures)
    assert "down-key" not in failures[0]["endpoint"]
    # The process never waited for the robot: the task is still there to complete.
    assert people["admin"].get(f"/api/v1/tasks/{task_id}").get_json()["state"] == "claimed"


def test_robot_that_refuses_is_a_failure_with_its_reason(tmp_path, people, synced_app):
    refusing = HttpFake(ok_body={"errcode": 310000, "errmsg": "keywords not in content"}).start()
    try:
        from datetime import datetime

        from integrations.base import Notice
        from integrations.wecom import WeComRobot

        result = WeComRobot("w", f"{refusing.url}/send?key=k").send(
            Notice("sla_breach", "t", "b", "sales", "Sales"), now=datetime.now(UTC))
        assert not result.ok and result.error is not None
        assert "errcode=310000 keywords not in content" in result.error
    finally:
        refusing.stop()


def test_channels_file_mistakes_are_reported(tmp_path):
    path = tmp_path / "channels.json"
    path.write_text(json.dumps({"channels": {"x": {"type": "pager"}}}))
    with pytest.raises(ChannelConfigError, match="unknown type 'pager'"):
        load_channels(path)
    path.write_text(json.dumps({"channels": {"m": {"type": "webhook", "url": "http://x"}},
                                "routes": {"departments": {"sales": ["m", "nope"]}}}))
    with pytest.raises(ChannelConfigError, match="unknown channels: nope"):
        load_channels(path)
    path.write_text("{not json")
    with pytest.raises(ChannelConfigError, match="cannot read"):
        load_channels(path)


def test_a_broken_channels_file_leaves_in_app_notices_working(people, synced_app, tmp_path, clock):
    from bpm_server.database import db
    from bpm_server.identity.models import User
    from bpm_server.notifications.channels import deliveries
    from bpm_server.notifications.service import InAppNotifier, Message

    broken = tmp_path / "broken.json"
    broken.write_text('{"channels": {"x": {"type": "pager"}}}')
    rt = synced_app.extensions["bpm"]
    rt.config = rt.config.but(channels_file=broken)
    synced_app.extensions.pop("bpm_integrations", None)
    with synced_app.app_context():
        user = db.session.query(User).filter_by(username="sales").one()
        InAppNotifier().notify(db.session, user, Message("sla_breach", "late", "past due"), clock.now())
        db.session.commit()
        assert deliveries(db.session) == []
        db.session.remove()
    assert [n["title"] for n in people["sales"].get("/api/v1/notifications").get_json()["items"]] == ["late"]


def test_a_webhook_without_a_secret_still_says_when_it_was_sent(people, synced_app, robots, tmp_path, clock):
    """The receiver of an unsigned webhook still reads the sending moment (API.md: unix seconds)."""
    unsigned = tmp_path / "unsigned.json"
    unsigned.write_text(json.dumps({"channels": {"ops-hook": {"type": "webhook", "url": f"{robots.url}/bpm-events"}},
                                    "routes": {"departments": {"sales": ["ops-hook"]}}}))
    rt = synced_app.extensions["bpm"]
    rt.config = rt.config.but(channels_file=unsigned)
    synced_app.extensions.pop("bpm_integrations", None)
    warn_kickoff(people, synced_app)
    pump(synced_app)

    [hook] = [r for r in robots.requests if r.path == "/bpm-events"]
    assert hook.json["kind"] == "sla_warning"
    assert hook.headers["X-BPM-Timestamp"] == str(int(clock.now().timestamp()))
    assert "X-BPM-Signature" not in hook.headers
