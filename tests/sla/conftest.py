"""An app with the test clock on (BPM_TEST_CLOCK=1), as demos and SLA tests use it."""
from __future__ import annotations

import pytest

from bpm_server.config import Config


@pytest.fixture
def config(database_url: str) -> Config:  # overrides the root fixture: test clock on
    from tests.conftest import PROJECT_ROOT

    return Config(database_url=database_url, testing=True, secret_key="test-secret", test_clock=True,
                  models_dir=PROJECT_ROOT / "process_models", forms_dir=PROJECT_ROOT / "forms",
                  queue_name="bpm-test")

