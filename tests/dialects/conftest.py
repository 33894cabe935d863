from __future__ import annotations

import pytest

from bpm_server.config import Config


@pytest.fixture
def config(config: Config) -> Config:
    """The test clock's endpoint, to move time past the diagrams' timers."""
    return config.but(test_clock=True)
