"""Single sign-on in Chromium: the 使用单点登录 button, the real OpenID provider on
127.0.0.1 (tests/fixtures/oidc_provider.py) and back, signed in."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bpm_server.config import Config, OidcSettings, SsoMapping
from tests.fixtures.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider, running

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture
def provider(clock) -> Iterator[OidcProvider]:
    person = {"sub": "u-9", "preferred_username": "zhao.lei", "name": "赵磊", "groups": ["marketing"]}
    with running(OidcProvider(clock=clock.now, person=person)) as started:
        yield started


@pytest.fixture
def config(config: Config, provider: OidcProvider) -> Config:
    return config.but(oidc=OidcSettings(issuer=provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET),
                      sso_mapping=SsoMapping(group_departments={"sales-team": "sales"}))


def test_signing_in_with_the_identity_provider_in_the_browser(page, provider: OidcProvider) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto("/login")
    page.screenshot(path=str(SHOTS / "sso-login.png"), full_page=True)
    with page.expect_navigation():
        page.click("text=使用单点登录")
    # The provider sent Chromium straight back; marketing maps to no department, and the page says so.
    notice = page.locator("[data-testid=sso-no-department]")
    assert "没有部门" in notice.inner_text() and "marketing" in notice.inner_text()
    page.screenshot(path=str(SHOTS / "sso-no-department.png"), full_page=True)
    with page.expect_navigation():
        page.click("text=继续")
    assert "/inbox" in page.url and "赵磊" in page.content()
