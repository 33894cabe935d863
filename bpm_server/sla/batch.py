"""Firing a batch of SLA timers in one transaction: a storm of deadlines.

Alone, a timer costs a dozen round trips: its claim, the task, its clock, the
account, the lead, each person's language, the instance's version, the breach
log's head and entries, and a commit. Here a batch of the stage SLA timers
(warning, breach, escalation rung) is locked with ``FOR UPDATE SKIP LOCKED``
and marked fired with one UPDATE, what the timers read is loaded with one query
per table, and each timer then acts through the very code it acts through alone
(``service.fire``), so the rows it makes are the same. Its breach-log entries
are collected instead of appended, then chained in the batch's order under one
move of the head and inserted with one statement; the notices, audit entries
and task changes go out with the session's flush, one statement per table.

A row another worker holds locked is skipped, not waited for: that worker is
firing it. Timers of every other kind (BPMN, start events, outbound attempts,
named clocks, escalation-started processes) are left to the one-by-one path,
which is where anything that moves an instance runs.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bpm_server.accounts.models import Account
from bpm_server.extensions import Deployment
from bpm_server.identity.models import Department, User
from bpm_server.notifications import service as notifications
from bpm_server.sla import breaches
from bpm_server.sla import service as sla
from bpm_server.sla.models import EscalationPolicy, SlaClock, Timer
from bpm_server.tasks import service as tasks
from bpm_server.tasks.models import HumanTask

#: The kinds fired here: a stage's own SLA clock (named clocks have kinds of their own).
KINDS = ("sla_warning", "sla_breach", "escalation")


@dataclass(frozen=True)
class Fired:
    outcomes: dict[str, str]  # timer id -> what happened, for the timers fired here
    rest: list[str]  # the ids left for the one-by-one path, in the order given


def fire_batch(session: Session, rt: Deployment, timer_ids: Sequence[str], now: datetime) -> Fired:
    """Fire the batch's stage SLA timers (inside the caller's transaction, which the
    caller commits, or rolls back and fires them one by one)."""
    claimed = _claim(session, timer_ids, now)
    rest = [timer_id for timer_id in timer_ids if timer_id not in claimed]
    if not claimed:
        return Fired({}, rest)
    # Held here: the session's identity map keeps clean objects only while someone refers to them.
    loaded = _preload(session, list(claimed.values()))
    chain: list[dict[str, Any]] = []
    outcomes: dict[str, str] = {}
    try:
        # What the timers read is reference data (people, departments, policies), never a row
        # another timer of the batch writes: the rows go out together at the end, one
        # statement per table, not flushed piecemeal before each read.
        with session.no_autoflush:
            for timer_id in timer_ids:
                timer = claimed.get(timer_id)
                if timer is not None:
                    outcomes[timer_id] = sla.fire(session, rt, timer, now, chain=chain)
    finally:
        notifications.forget_languages(session)
    session.flush()  # the notices, audit entries and clocks, before the head's lock is taken
    breaches.append_many(session, chain)  # last: the head row stays locked until commit
    del loaded
    return Fired(outcomes, rest)


def _claim(session: Session, timer_ids: Sequence[str], now: datetime) -> dict[str, Timer]:
    """Lock the batch's pending SLA timers that no one else holds and mark them fired."""
    pending = (Timer.fired_at.is_(None), Timer.cancelled_at.is_(None))
    locked = list(session.scalars(select(Timer).where(Timer.id.in_(timer_ids), Timer.kind.in_(KINDS), *pending)
                                  .order_by(Timer.id).with_for_update(skip_locked=True)))
    if not locked:
        return {}
    # Checked again as it is marked (SQLite has no row locks: another writer may have
    # committed since the SELECT); only what this UPDATE changed is this batch's.
    claimed = set(session.scalars(update(Timer).where(Timer.id.in_([t.id for t in locked]), *pending)
                                  .values(fired_at=now).returning(Timer.id)
                                  .execution_options(synchronize_session="evaluate")))
    return {timer.id: timer for timer in locked if timer.id in claimed}


def _preload(session: Session, timers: list[Timer]) -> list[object]:
    """Bring what the timers read into the session with one query per table, so that
    ``session.get`` and the many-to-one attributes find it there without asking;
    returns the objects, which the caller holds while the timers fire."""
    task_ids = {t.task_id for t in timers if t.task_id}
    found = list(session.scalars(select(HumanTask).where(HumanTask.id.in_(task_ids))).unique())
    clocks = list(session.scalars(select(SlaClock).where(SlaClock.task_id.in_(task_ids))))
    accounts = list(session.scalars(select(Account).where(Account.id.in_({t.account_id for t in found}))))
    departments = list(session.scalars(select(Department).where(
        Department.id.in_({t.department_id for t in found if t.department_id}))))
    leads = {d.lead_user_id for d in departments if d.lead_user_id}
    people = list(session.scalars(select(User).where(User.id.in_(leads))).unique())
    # "assignee" of an unclaimed task is its department's people: their languages are read here too.
    unclaimed = {t.department_id for t in found if t.assignee_id is None}
    people += session.scalars(select(User).where(User.department_id.in_(unclaimed), User.active)).unique()
    policies = list(session.scalars(select(EscalationPolicy).where(
        EscalationPolicy.name.in_({c.policy for c in clocks if c.policy}))))
    tasks.note_versions(session, {t.process_instance_id for t in found})
    notifications.remember_languages(session, {p.id for p in people} | {t.assignee_id for t in found if t.assignee_id})
    return [*found, *clocks, *accounts, *departments, *people, *policies]
