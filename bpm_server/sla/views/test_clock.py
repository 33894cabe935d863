"""The test clock (only with BPM_TEST_CLOCK=1): move time, firing what falls due, in order."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import Schema, fields

from bpm_server.audit.service import record as audit
from bpm_server.errors import Invalid
from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import current_user, requires
from bpm_server.sla.calendar import COMPUTABLE_UNTIL, LAST_YEAR
from bpm_server.sla.jobs import ADVANCE_JOB, advance_in_batches
from bpm_server.sla.views.blueprint import test_clock_blp


class ClockSetSchema(Schema):
    now = fields.AwareDateTime(required=True, metadata={"description": "ISO 8601 with offset"})


class ClockStateSchema(Schema):
    now = fields.DateTime()
    fired = fields.Integer()
    target = fields.DateTime(metadata={"description": "where the clock is going (202: a job is still firing)"})
    done = fields.Boolean(metadata={"description": "false when the rest of the advance was handed to a job"})


@test_clock_blp.route("/clock", methods=["POST"])
# Admins only: moving the deployment's time fires every timer that falls due,
# for everyone, so it is an operator's tool even on a test deployment.
@requires("admin")
@test_clock_blp.arguments(ClockSetSchema)
@test_clock_blp.response(200, ClockStateSchema)
@test_clock_blp.alt_response(202, schema=ClockStateSchema,
                             description="more timers were due than one request fires: a job fires the rest")
def set_test_clock(body: dict) -> dict[str, Any] | tuple[dict[str, Any], int]:
    """Move the deployment's clock forward, firing everything that becomes due, in order.

    Timers fire in committed batches; after ``BPM_TEST_CLOCK_REQUEST_SECONDS`` the rest of
    the advance goes to a job (202), so a long advance never meets the web server's timeout
    and keeps what it fired."""
    rt, session = deployment(), db_session()
    target: datetime = body["now"]
    if target < rt.clock.now():
        raise Invalid(f"the clock only moves forward: it is {rt.clock.now().isoformat()}",
                      code="clock_backwards", details={"now": ["must not be earlier than the current clock"]})
    if target > COMPUTABLE_UNTIL:
        limit = COMPUTABLE_UNTIL.isoformat()
        raise Invalid(f"the business calendar computes working time only up to {limit} (year {LAST_YEAR})",
                      code="clock_out_of_range", details={"now": [f"must not be later than {limit}"]})
    audit(session, actor=current_user().username, action="test_clock.set", object_type="clock",
          object_id="deployment", now=rt.clock.now(), target=target.isoformat())
    result = advance_in_batches(target, rt.config.test_clock_request_seconds)
    state = {"now": rt.clock.now(), "fired": result.fired, "target": target, "done": result.done}
    if result.done:
        return state
    rt.jobs.enqueue(ADVANCE_JOB, target.isoformat())
    return state, 202


@test_clock_blp.route("/clock")
@requires("admin")
@test_clock_blp.response(200, ClockStateSchema)
def get_test_clock() -> dict[str, Any]:
    """The test clock's current time."""
    now = deployment().clock.now()
    return {"now": now, "fired": 0, "target": now, "done": True}
