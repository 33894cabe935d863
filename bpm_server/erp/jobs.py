"""Service-call jobs: thin, by id."""
from __future__ import annotations

from bpm_server.erp import calls
from bpm_server.extensions import db_session, runtime


def attempt_call(call_id: str, number: int) -> str:
    """Make attempt ``number`` of a service call (a stale or repeated attempt does nothing)."""
    session, rt = db_session(), runtime()
    attempt = calls.begin_attempt(session, call_id, number)
    if attempt is None:
        return "stale attempt"
    # End the read transaction before the network call: nothing is locked or
    # held open while the other side takes its time (up to the timeout).
    session.rollback()
    result = calls.send(attempt, rt.clock.now())
    return calls.record_attempt(session, rt, attempt, result, rt.clock.now())
