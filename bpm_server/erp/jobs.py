"""Service-call jobs: thin, by id."""
from __future__ import annotations

from bpm_server import runtime
from bpm_server.erp import calls
from bpm_server.extensions import db_session, deployment


def attempt_call(call_id: str, number: int) -> str:
    """Make attempt ``number`` of a service call (a stale or repeated attempt does nothing)."""
    session, rt = db_session(), deployment()
    attempt = calls.begin_attempt(session, call_id, number)
    if attempt is None:
        return "stale attempt"
    # End the read transaction before the network call: nothing is locked or
    # held open while the other side takes its time (up to the timeout).
    session.rollback()
    result = calls.send(attempt, rt.clock.now())
    outcome, answered = calls.record_attempt(session, rt, attempt, result, rt.clock.now())
    if answered is None:
        return outcome
    moved = runtime.finish_service_call(session, rt, answered.process_instance_id, answered.engine_task_id,
                                                answered.response, rt.clock.now())
    return outcome + ("" if moved else " (the instance no longer waits for it)")
