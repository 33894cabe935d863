"""The SLA API's blueprints: one for the routes, one for the test clock (registered only when enabled)."""
from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("sla", __name__, url_prefix="/api/v1", description="SLA breach log, clocks and escalation policies")
test_clock_blp = Blueprint("test_clock", __name__, url_prefix="/api/v1/test",
                           description="Test clock (only with BPM_TEST_CLOCK=1)")

