"""Timer jobs: thin, by id."""
from __future__ import annotations

import logging

from bpm_server import runtime
from bpm_server.extensions import db_session, deployment

log = logging.getLogger(__name__)


def fire_timer(timer_id: str) -> str:
    """Act on one due timer (idempotent: a timer fired twice acts once)."""
    rt = deployment()
    return runtime.fire_timer(db_session(), rt, timer_id, rt.clock.now())


def fire_timers(timer_ids: list[str]) -> dict[str, str]:
    """Act on a batch of due timers, each in its own transaction.

    The pump hands out timers due at the same moment in batches, which saves
    a queue round trip per timer in a storm. One failing timer is rolled back
    alone and stays unfired; the pump hands it out again after retry_after.
    """
    rt, session = deployment(), db_session()
    outcomes: dict[str, str] = {}
    for timer_id in timer_ids:
        try:
            outcomes[timer_id] = runtime.fire_timer(session, rt, timer_id, rt.clock.now())
            session.commit()
        except Exception as exc:  # keep going: the other timers in the batch are independent
            session.rollback()
            log.exception("timer %s failed", timer_id)
            outcomes[timer_id] = f"failed: {type(exc).__name__}: {exc}"
    return outcomes
