"""DingTalk, WeCom and Feishu sign-in, each by its documented OAuth flow, against
local fakes of their endpoints on 127.0.0.1 (tests/fixtures/workplace_fakes.py)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from bpm_server.config import Config, SsoMapping, WorkplaceAppSettings
from bpm_server.database import db
from bpm_server.identity.models import User
from tests.fixtures.workplace_fakes import AGENT_ID, APP_ID, APP_SECRET, WorkplaceFakes, running

PEOPLE: dict[str, dict[str, Any]] = {
    "dingtalk": {"nick": "韩梅梅", "unionId": "dt-union-1", "openId": "dt-open-1", "email": "han.meimei@example.cn",
                 "mobile": "13800000000", "stateCode": "86"},
    "wecom": {"userid": "zhangwei", "name": "张伟", "department": [7, 2], "email": "zhang.wei@example.cn"},
    "feishu": {"name": "王芳", "union_id": "on_feishu_1", "open_id": "ou_feishu_1", "user_id": "wangfang",
               "email": "wang.fang@example.cn"},
}
EXPECTED = {"dingtalk": ("han.meimei@example.cn", "韩梅梅"), "wecom": ("zhangwei", "张伟"),
            "feishu": ("wangfang", "王芳")}
LABELS = {"dingtalk": "钉钉登录", "wecom": "企业微信登录", "feishu": "飞书登录"}


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
def fakes() -> Iterator[WorkplaceFakes]:
    with running(WorkplaceFakes(people={k: dict(v) for k, v in PEOPLE.items()})) as started:
        yield started


@pytest.fixture
def config(config: Config, fakes: WorkplaceFakes) -> Config:
    apps = tuple(WorkplaceAppSettings(kind=kind, client_id=APP_ID, client_secret=APP_SECRET,
                                      agent_id=AGENT_ID if kind == "wecom" else None,
                                      base_urls={"all": fakes.base_url}) for kind in ("dingtalk", "wecom", "feishu"))
    # WeCom's department ids are the groups: 2 is the service department here.
    return config.but(workplace_apps=apps, sso_mapping=SsoMapping(group_departments={"2": "service"}))


def _sign_in(client, kind: str) -> tuple[str, object]:
    response = client.get(f"/login/sso/{kind}")
    assert response.status_code == 302, response.get_data(as_text=True)
    back = requests.get(response.headers["Location"], allow_redirects=False, timeout=5)
    assert back.status_code == 302, back.text
    return back.headers["Location"], client.get(back.headers["Location"])


def _users(app: Flask) -> list[User]:
    with app.app_context():
        return list(db.session.scalars(select(User)))


def _error(response) -> str:
    found = re.search(r'data-testid="sso-error">([^<]*)<', response.get_data(as_text=True))
    assert found is not None, response.get_data(as_text=True)
    return found.group(1)


def test_the_login_page_has_a_button_per_platform(app: Flask) -> None:
    page = app.test_client().get("/login").get_data(as_text=True)
    for kind, label in LABELS.items():
        assert label in page and f'href="/login/sso/{kind}"' in page
    assert "使用单点登录" not in page  # no OpenID provider configured


@pytest.mark.parametrize("kind", ["dingtalk", "wecom", "feishu"])
def test_signing_in_through_the_platform_creates_the_user_once(app: Flask, kind: str) -> None:
    client = app.test_client()
    _, response = _sign_in(client, kind)
    assert response.status_code in (200, 302), response.get_data(as_text=True)  # type: ignore[attr-defined]
    (user,) = _users(app)
    assert (user.username, user.display_name) == EXPECTED[kind]
    assert user.roles == ["staff"]
    if kind == "wecom":
        assert user.department_id == "service"  # department 7 maps to nothing, 2 to service
    else:
        assert user.department_id is None and "没有部门" in response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert client.get("/inbox").status_code == 200
    _sign_in(app.test_client(), kind)
    assert len(_users(app)) == 1


@pytest.mark.parametrize("kind", ["dingtalk", "wecom", "feishu"])
def test_a_code_used_once_is_refused_the_second_time(app: Flask, kind: str) -> None:
    callback, _ = _sign_in(app.test_client(), kind)
    thief = app.test_client()
    fresh = thief.get(f"/login/sso/{kind}").headers["Location"]
    state = parse_qs(urlsplit(fresh).query)["state"][0]
    parts = urlsplit(callback)
    replay = {k: v[0] for k, v in parse_qs(parts.query).items()} | {"state": state}
    response = thief.get(f"{parts.path}?{urlencode(replay)}")
    assert response.status_code == 401
    assert "单点登录失败" in _error(response)
    assert thief.get("/inbox").status_code == 302 and len(_users(app)) == 1


@pytest.mark.parametrize("kind", ["dingtalk", "wecom", "feishu"])
def test_a_wrong_app_secret_is_refused_and_nothing_is_made(app: Flask, fakes: WorkplaceFakes, kind: str) -> None:
    fakes.app_secret = "rotated-on-the-platform"
    _, response = _sign_in(app.test_client(), kind)
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert _users(app) == []


def test_a_wecom_visitor_who_is_not_a_member_is_refused(app: Flask, fakes: WorkplaceFakes) -> None:
    fakes.people["wecom"] = {**PEOPLE["wecom"], "userid": ""}
    _, response = _sign_in(app.test_client(), "wecom")
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert "not a member" in _error(response) and _users(app) == []
