"""Outbound work with retries: the ERP calls of service tasks and notification deliveries.

Every attempt is a durable timer row (kind ``integration``), so a retry
survives restarts and a flushed Redis exactly like an SLA timer. When the pump
fires it, ``fire_timer`` hands the attempt to a job; the job does the network
call outside any database lock and records the outcome, scheduling the next
attempt after an exponential back-off, or giving up after the last one.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from bpm_server.erp.models import OutboundCall
from bpm_server.extensions import Deployment
from bpm_server.notifications.models import NotificationDelivery
from bpm_server.sla.timers import add_timer
from integrations.registry import ChannelConfigError, Registry

log = logging.getLogger(__name__)

TIMER_KIND = "integration"
# What an integration timer does, by the "what" in its payload: the job that makes the attempt.
ATTEMPT_JOBS = {
    "service_call": "bpm_server.erp.jobs.attempt_call",
    "delivery": "bpm_server.notifications.jobs.attempt_delivery",
}


def registry() -> Registry:
    """This deployment's external systems and channels, built once per app from its configuration."""
    extensions = current_app.extensions
    if "bpm_integrations" not in extensions:
        config = extensions["bpm"].config
        try:
            extensions["bpm_integrations"] = Registry.from_config(config)
        except ChannelConfigError as exc:
            # A broken channels file must not stop escalations: in-app notices still go out.
            log.error("notification channels disabled: %s", exc)
            extensions["bpm_integrations"] = Registry.from_config(config.but(channels_file=None))
    return extensions["bpm_integrations"]


def backoff(rt: Deployment, attempts_done: int) -> timedelta:
    """30 s, 1 min, 2 min, 4 min, ... with the default base."""
    return timedelta(seconds=rt.config.outbound_backoff_seconds * 2 ** max(attempts_done - 1, 0))


def schedule_attempt(session: Session, *, what: str, ref_id: str, attempt: int, due: datetime,
                     instance_id: str | None, now: datetime) -> None:
    add_timer(session, TIMER_KIND, instance_id or "", None, due, {"what": what, "id": ref_id, "attempt": attempt},
              now)


# If the queued attempt is lost (Redis flushed, worker killed), this timer queues it again.
ATTEMPT_GUARD = timedelta(minutes=5)


def fire_timer(session: Session, rt: Deployment, timer: Any, now: datetime) -> str:
    """What the runtime's ``fire_timer`` does with an ``integration`` timer: queue the attempt's job.

    The job id names the attempt, so handing the same timer out twice queues it
    once; the job itself checks the attempt number, so a late duplicate does
    nothing. A guard timer a few minutes later queues the attempt again unless
    it has been recorded by then: the queue only carries wake-ups, the rows
    are the truth.
    """
    what, ref_id, attempt = timer.payload["what"], timer.payload["id"], int(timer.payload["attempt"])
    if not _still_due(session, what, ref_id, attempt):
        return f"{what} {ref_id}: attempt {attempt} already made"
    enqueue_after_commit(session, rt, ATTEMPT_JOBS[what], ref_id, attempt, job_id=f"{what}-{ref_id}-{attempt}")
    schedule_attempt(session, what=what, ref_id=ref_id, attempt=attempt, due=now + ATTEMPT_GUARD,
                     instance_id=timer.process_instance_id or None, now=now)
    return f"{what} {ref_id}: attempt {attempt} queued"


def _still_due(session: Session, what: str, ref_id: str, attempt: int) -> bool:
    row: OutboundCall | NotificationDelivery | None = (
        session.get(OutboundCall, ref_id) if what == "service_call" else session.get(NotificationDelivery, ref_id))
    return row is not None and row.state == "pending" and row.attempts == attempt - 1


def enqueue_after_commit(session: Session, rt: Deployment, job: str, *args: Any, job_id: str) -> None:
    """Queue the job once this transaction has committed.

    The row the job reads may have been written in this very transaction
    (the test clock fires timers in the request that created them); a job
    started before the commit would not see it.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append((rt.jobs, job, args, job_id))


_AFTER_COMMIT = "bpm_outbound_after_commit"


@event.listens_for(Session, "after_commit")
def _enqueue_committed(session: Session) -> None:
    for jobs, job, args, job_id in session.info.pop(_AFTER_COMMIT, []):
        jobs.enqueue(job, *args, job_id=job_id)


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back(session: Session) -> None:
    # The timer's firing was rolled back too, so the pump hands it out again.
    session.info.pop(_AFTER_COMMIT, None)
