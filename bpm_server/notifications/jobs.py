"""Notification delivery jobs: thin, by id."""
from __future__ import annotations

from bpm_server.extensions import db_session, deployment
from bpm_server.notifications import channels


def attempt_delivery(delivery_id: str, number: int) -> str:
    """Send attempt ``number`` of one delivery (a stale or repeated attempt does nothing)."""
    session, rt = db_session(), deployment()
    attempt = channels.begin_attempt(session, delivery_id, number)
    if attempt is None:
        return "stale attempt"
    # End the read transaction before talking to the mail server or robot: nothing held open meanwhile.
    session.rollback()
    kind, result = channels.send(attempt, rt.clock.now())
    return channels.record_attempt(session, rt, attempt, kind, result, rt.clock.now())
