"""The timer pump: hands due timers to the job queue at their moment.

The database is the truth (``timer`` rows); the queue only carries wake-ups.
One pump runs at a time: on PostgreSQL it holds an advisory lock on its own
connection, so any number of ``bpm-server worker`` processes may run one and
only the lock holder pumps. The holder checks before every pass that its
connection still holds the lock (a terminated connection loses it), so a
leader that lost it stops and exactly one pump leads. It sleeps until the earliest pending timer (at
most ``max_sleep`` seconds, so timers inserted by other processes are seen
within that bound) and re-hands timers that were handed out but not fired
within ``retry_after``; at once when the queue says it lost its contents (a
flushed or restarted Redis), and a dead worker's running job is queued again
as soon as its alive key expires (``JobQueue.recover_abandoned``). Its first pass
after start-up re-arms everything already due: that is the reconciler.

With the test clock the pump does not run: time moves only through
``POST /api/v1/test/clock``, which fires what became due, in order.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import Connection, text

from bpm_server.database import db
from bpm_server.sla import daily, timers

log = logging.getLogger(__name__)
ADVISORY_LOCK_KEY = 0x42504D54  # "BPMT"


class TimerPump:
    def __init__(self, app: Flask, *, max_sleep: float = 1.0, retry_after: timedelta = timedelta(seconds=30),
                 batch: int = 500, per_job: int = 100) -> None:
        self.app = app
        self.per_job = per_job
        self.max_sleep = max_sleep
        self.retry_after = retry_after
        self.batch = batch
        self.stopping = threading.Event()
        self.wake = threading.Event()  # set to look again at once (embedded inserts, shutdown)
        self._leader_connection: Connection | None = None
        self._reconciling = True
        self._reconcile_before: datetime | None = None
        self._daily_armed: str | None = None  # the daily row this pump last saw there

    def run_forever(self) -> None:
        log.info("timer pump started")
        while not self.stopping.is_set():
            delay = self.max_sleep
            try:
                with self.app.app_context():
                    if self.lead():
                        delay = self.pump_once()
                        self.app.extensions["bpm"].jobs.announce_pump_pass()
            except Exception:  # keep pumping: a database hiccup must not stop timers for good
                log.exception("timer pump pass failed")
                with self.app.app_context():
                    db.session.rollback()
                    db.session.remove()
            self.wake.wait(delay)
            self.wake.clear()
        self._release()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def pump_once(self) -> float:
        """Hand every due timer to the queue; return how long to sleep before the next."""
        rt = self.app.extensions["bpm"]
        now = rt.clock.now()
        session = db.session
        # A worker that died mid-job (SIGKILL, OOM) leaves its job "started" for rq's job
        # timeout; its batch goes back on the queue as soon as the worker's alive key expires.
        rt.jobs.recover_abandoned()
        if rt.jobs.forgot_everything() and not self._reconciling:
            # Redis lost the queue (FLUSHALL, a restart): every timer handed out so far is
            # handed out again now, rather than after retry_after.
            log.warning("the job queue lost its contents: handing out every due timer again")
            self._reconciling, self._reconcile_before = True, None
        try:
            # The next daily evaluation gets its row (once a day: the row's id is the day's).
            self._daily_armed = daily.arm(session, rt.config.accounts_daily_at, rt.calendar.time_zone, now,
                                          known=self._daily_armed)
            # Hand out again what was handed out long ago and never fired (a
            # flushed Redis, a killed worker), but only once the queue has
            # drained: while a backlog waits, those jobs are most likely in it.
            if self._reconciling:
                self._reconcile_before = self._reconcile_before or now
                # The reconciler (a new leader's first passes): everything due that was
                # handed out before it took over, whatever happened to it since.
                due = timers.due_timers(session, now, self.batch, enqueued_before=self._reconcile_before)
            elif rt.jobs.backlog():
                due = timers.due_timers(session, now, self.batch, only_fresh=True)
            else:
                due = timers.due_timers(session, now, self.batch, enqueued_before=now - self.retry_after)
            ids = [timer.id for timer in due]
            # One UPDATE for the pass, not one per timer: in a storm a pass hands out hundreds.
            timers.mark_enqueued(session, ids, now)
            session.commit()
            for start in range(0, len(ids), self.per_job):
                chunk = ids[start:start + self.per_job]
                rt.jobs.enqueue("bpm_server.sla.jobs.fire_timers", chunk, job_id=f"timers-{chunk[0]}")
            if len(due) == self.batch:
                return 0.0
            self._reconciling, self._reconcile_before = False, None
            # Timers already handed out do not count, or a backlog would make the pump spin.
            upcoming = timers.next_due(session, self.retry_after)
        finally:
            session.remove()
        if upcoming is None:
            return self.max_sleep
        return max(0.0, min(self.max_sleep, (upcoming - rt.clock.now()).total_seconds()))

    def lead(self) -> bool:
        """Whether this pump leads now: it holds the lock (checked to be still held) or just took it."""
        if db.engine.dialect.name != "postgresql":
            return True  # SQLite: one process (the embedded server) owns the database
        if self._leader_connection is not None and not self._still_holds_lock():
            # The lock's connection was terminated (a PostgreSQL restart, pg_terminate_backend,
            # a network cut): PostgreSQL released the lock with it and another worker may hold
            # it now. Stop pumping until this process wins the lock again.
            log.warning("timer pump lost its lock; another worker may pump now")
            self._release()
        if self._leader_connection is None:
            connection = db.engine.connect()
            if connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}):
                connection.commit()
                self._leader_connection = connection
                log.info("this process now pumps timers")
                self._reconciling, self._reconcile_before = True, None
            else:
                connection.rollback()
                connection.close()
                return False
        return True

    def _still_holds_lock(self) -> bool:
        """Whether the leader connection is alive and its backend still holds the lock
        (checked before every pass, so a lost lock stops the pump within one pass)."""
        assert self._leader_connection is not None
        try:
            held = self._leader_connection.scalar(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND objid = :k"), {"k": ADVISORY_LOCK_KEY & 0xFFFFFFFF})
            self._leader_connection.rollback()
        except Exception:  # the connection is gone: so is the lock
            return False
        return bool(held)

    def _release(self) -> None:
        if self._leader_connection is not None:
            # close() alone would return the connection to the pool with the
            # session-level advisory lock still held; dropping the database
            # session is what releases it.
            try:
                self._leader_connection.invalidate()
                self._leader_connection.close()
            except Exception:  # already dead: nothing is held any more
                log.debug("closing a dead pump lock connection failed", exc_info=True)
            self._leader_connection = None


def start_in_thread(app: Flask) -> TimerPump | None:
    """Start the pump beside the web server or worker (not with the test clock)."""
    if app.extensions["bpm"].config.test_clock:
        log.info("test clock on: timers fire only through POST /api/v1/test/clock")
        return None
    pump = TimerPump(app)
    threading.Thread(target=pump.run_forever, name="bpm-timer-pump", daemon=True).start()
    return pump
