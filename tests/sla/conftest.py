"""An app with the test clock on (BPM_TEST_CLOCK=1), as demos and SLA tests use it."""
from __future__ import annotations

import pytest
from flask import Flask

from bpm_server.config import Config
from bpm_server.database import db
from bpm_server.identity.models import Department, User


@pytest.fixture
def config(database_url: str) -> Config:  # overrides the root fixture: test clock on
    from tests.conftest import PROJECT_ROOT

    return Config(database_url=database_url, testing=True, secret_key="test-secret", test_clock=True,
                  models_dir=PROJECT_ROOT / "process_models", forms_dir=PROJECT_ROOT / "forms",
                  queue_name="bpm-test")


@pytest.fixture
def leads(people, synced_app: Flask) -> dict:
    """Make 'sales2' the sales lead; ACME's executive sponsor is 'admin'."""
    from bpm_server.accounts.models import Account

    with synced_app.app_context():
        lead = db.session.query(User).filter_by(username="sales2").one()
        db.session.get(Department, "sales").lead_user_id = lead.id
        db.session.get(Account, "ACME").executive_sponsor = "admin"
        db.session.commit()
    return people
