"""Single sign-on and proxy settings as read from the environment (config.py),
and the mistakes a deployment can make there, each refused at start-up by name."""
from __future__ import annotations

import pytest

from bpm_server.app import create_app
from bpm_server.config import Config

OIDC = {"BPM_OIDC_ISSUER": "https://sso.example.cn/realms/acme/", "BPM_OIDC_CLIENT_ID": "bpm",
        "BPM_OIDC_CLIENT_SECRET": "s"}


def _read(**values: str) -> Config:
    return Config.from_env(values, env_file=None)


def test_oidc_and_the_group_mapping_come_from_the_environment() -> None:
    config = _read(**OIDC, BPM_OIDC_GROUPS_CLAIM="roles", BPM_SSO_GROUP_ROLES='{"admins": "admin", "kam": ["staff"]}',
                   BPM_SSO_GROUP_DEPARTMENTS='{"fin": "finance"}', BPM_TRUSTED_PROXIES="2")
    assert config.oidc is not None and config.oidc.issuer == "https://sso.example.cn/realms/acme"
    assert (config.oidc.groups_claim, config.oidc.scopes) == ("roles", "openid profile email")
    assert config.sso_mapping.group_roles == {"admins": ("admin",), "kam": ("staff",)}
    assert config.sso_mapping.group_departments == {"fin": "finance"}
    assert config.trusted_proxies == 2 and _read().oidc is None and _read().trusted_proxies == 0


def test_the_workplace_apps_come_from_the_environment() -> None:
    config = _read(BPM_DINGTALK_CLIENT_ID="ding1", BPM_DINGTALK_CLIENT_SECRET="x", BPM_WECOM_CORP_ID="ww1",
                   BPM_WECOM_SECRET="y", BPM_WECOM_AGENT_ID="1000002", BPM_FEISHU_APP_ID="cli_1",
                   BPM_FEISHU_APP_SECRET="z", BPM_FEISHU_BASE_URL="https://open.larksuite.com")
    assert [(a.kind, a.client_id) for a in config.workplace_apps] == [
        ("dingtalk", "ding1"), ("wecom", "ww1"), ("feishu", "cli_1")]
    assert config.workplace_apps[1].agent_id == "1000002"
    assert config.workplace_apps[2].base_urls == {"all": "https://open.larksuite.com"}


@pytest.mark.parametrize(("values", "named"), [
    ({"BPM_OIDC_ISSUER": "https://sso.example.cn"}, "BPM_OIDC_CLIENT_ID"),
    ({"BPM_WECOM_CORP_ID": "ww1", "BPM_WECOM_SECRET": "y"}, "BPM_WECOM_AGENT_ID"),
    ({"BPM_FEISHU_APP_ID": "cli_1"}, "BPM_FEISHU_APP_SECRET"),
    ({"BPM_SSO_GROUP_ROLES": "admins=admin"}, "BPM_SSO_GROUP_ROLES"),
    ({"BPM_SSO_GROUP_DEPARTMENTS": '["fin"]'}, "BPM_SSO_GROUP_DEPARTMENTS"),
    ({"BPM_TRUSTED_PROXIES": "yes"}, "BPM_TRUSTED_PROXIES"),
    ({"BPM_SIGN_IN_ADDRESS_ATTEMPTS": "0"}, "BPM_SIGN_IN_ADDRESS_ATTEMPTS"),
])
def test_a_bad_setting_is_refused_by_name(values: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        _read(**values)


def test_a_group_mapped_to_a_role_that_does_not_exist_stops_the_server(tmp_path) -> None:
    config = _read(**OIDC, BPM_SSO_GROUP_ROLES='{"bosses": ["boss"]}',
                   BPM_DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with pytest.raises(ValueError, match=r"unknown role.*boss"):
        create_app(config)
