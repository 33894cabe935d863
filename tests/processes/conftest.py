"""The shipped account processes are driven over the API with the test clock (BPM_TEST_CLOCK=1)."""
from __future__ import annotations

import pytest

from bpm_server.config import Config


@pytest.fixture
def config(config: Config) -> Config:  # the root fixture's, with the test clock on
    return config.but(test_clock=True)
