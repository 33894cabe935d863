"""Timer jobs: thin, by id."""
from __future__ import annotations

import logging
import time
from datetime import datetime

from bpm_server import runtime
from bpm_server.extensions import db_session, deployment

log = logging.getLogger(__name__)


def fire_timer(timer_id: str) -> str:
    """Act on one due timer (idempotent: a timer fired twice acts once)."""
    rt = deployment()
    return runtime.fire_timer(db_session(), rt, timer_id, rt.clock.now())


def fire_timers(timer_ids: list[str]) -> dict[str, str]:
    """Act on a batch of due timers.

    The pump hands out timers due at the same moment in batches, which saves
    a queue round trip per timer in a storm. The batch's SLA timers fire
    together in one transaction (``runtime.fire_timers``); the others, and all
    of them if that transaction fails, each in its own. One failing timer is
    rolled back alone and stays unfired; the pump hands it out again after retry_after.
    """
    rt, session = deployment(), db_session()
    outcomes: dict[str, str] = {}
    rest = timer_ids
    try:
        fired = runtime.fire_timers(session, rt, timer_ids, rt.clock.now())
        session.commit()
        outcomes, rest = dict(fired.outcomes), fired.rest
    except Exception:  # one bad timer must not stop the others: fire them alone instead
        session.rollback()
        log.exception("a batch of %d timers failed together; firing them one by one", len(timer_ids))
    for timer_id in rest:
        try:
            outcomes[timer_id] = runtime.fire_timer(session, rt, timer_id, rt.clock.now())
            session.commit()
        except Exception as exc:  # keep going: the other timers in the batch are independent
            session.rollback()
            log.exception("timer %s failed", timer_id)
            outcomes[timer_id] = f"failed: {type(exc).__name__}: {exc}"
    return outcomes


#: Timers fired per transaction by a test-clock advance: small enough that a batch commits
#: in a second or two, large enough that committing is not the cost.
ADVANCE_BATCH = 20
ADVANCE_JOB = "bpm_server.sla.jobs.advance_test_clock"


def advance_in_batches(target: datetime, seconds: float) -> runtime.Advance:
    """Advance the test clock toward ``target`` in committed batches for about ``seconds``;
    the result says whether it got there. Shared by the clock route and the job below."""
    rt, session = deployment(), db_session()
    started, fired = time.monotonic(), 0
    while True:
        batch = runtime.advance_test_clock(session, rt, target, limit=ADVANCE_BATCH)
        session.commit()  # what fired stays fired, whatever happens to the rest
        fired += batch.fired
        if batch.done or time.monotonic() - started >= seconds:
            return runtime.Advance(fired, done=batch.done)


def advance_test_clock(target_iso: str) -> str:
    """The rest of a test-clock advance the request handed over; hands itself on likewise,
    so no one job runs into the queue's timeout either."""
    rt = deployment()
    result = advance_in_batches(datetime.fromisoformat(target_iso), rt.config.test_clock_request_seconds)
    if not result.done:
        rt.jobs.enqueue(ADVANCE_JOB, target_iso)
    return f"fired {result.fired}" + ("" if result.done else ", continuing")
