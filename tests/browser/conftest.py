"""Browser tests: the real app on PostgreSQL behind a threaded WSGI server,
clicked through by headless Debian Chromium via Playwright.

Fixtures:
- ``live_server``: a ``LiveServer`` (url, app, clock, people); models synced,
  the demo people of tests/conftest.py with the password ``PASSWORD``, and the
  test clock on (``live_server.clock.set(...)`` or POST /api/v1/test/clock).
- ``page``: a fresh Playwright page (own cookies) whose relative URLs go to the live server.
- ``login(page, username)``: signs in through the login form and waits for the start page.
"""
from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from bpm_server.clock import SettableClock
from bpm_server.config import PROJECT_ROOT, Config
from bpm_server.database import db

CHROMIUM = os.environ.get("BPM_TEST_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "browser-test-password"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def backend() -> str:
    """Browser tests run on PostgreSQL only (the production database)."""
    return "postgresql"


@pytest.fixture
def config(config: Config) -> Config:
    return config.but(test_clock=True)


@pytest.fixture(scope="session", autouse=True)
def compiled_translations() -> None:
    """The .mo catalogues (``make install`` compiles them; this covers a bare pytest run)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in [*(PROJECT_ROOT / "bpm_server").glob("**/translations/*/LC_MESSAGES/*.po")]:
        if "node_modules" in po.parts:
            continue
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as source:
                catalog = read_po(source)
            with mo.open("wb") as target:
                write_mo(target, catalog)


@pytest.fixture(scope="session")
def password_hash() -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(PASSWORD)  # once per run: argon2 is slow on purpose


@dataclass
class LiveServer:
    url: str
    app: Flask
    clock: SettableClock
    people: dict


@pytest.fixture
def live_server(synced_app: Flask, people: dict, clock: SettableClock, password_hash: str) -> Iterator[LiveServer]:
    from bpm_server.identity.models import User

    with synced_app.app_context():
        for user in db.session.query(User).all():
            user.password_hash = password_hash
        db.session.commit()
    server = make_server("127.0.0.1", 0, synced_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=synced_app, clock=clock, people=people)
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _ensure_chromium() -> str:
    if not Path(CHROMIUM).exists():
        script = PROJECT_ROOT / "scripts" / "ensure-browser"
        subprocess.run([str(script)], check=False)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing and scripts/ensure-browser could not install it", pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = _ensure_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server: LiveServer):
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def login(live_server: LiveServer) -> Callable:
    def sign_in(page, username: str, password: str = PASSWORD) -> None:
        page.goto("/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        with page.expect_navigation():
            page.click("form button[type=submit]")
        if "/login" in page.url:
            raise AssertionError(f"could not sign in as {username}: still on {page.url}")

    return sign_in
