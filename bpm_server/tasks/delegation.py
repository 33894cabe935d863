"""委托: a person (or their department's lead, or an admin) delegates their work to a
colleague from one moment to another, for every process or for named process models.

While a delegation is active, a task that would land on the delegator lands on the
delegate, who is told, and the task remembers on whose behalf they hold it (the
history reads "X 代 Y"). The rule lives in one place, ``_land_on_delegates`` below:
every flush that gives an open task to someone other than the acting user (a
lead's reassignment, 转交, an escalation's ``reassign``, a send-back to its
completer) is redirected. A person claiming a task themselves is never redirected.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from flask import g, has_app_context
from sqlalchemy import event, inspect, or_, select
from sqlalchemy.orm import Session

from bpm_server.audit.service import record as audit
from bpm_server.database import new_id
from bpm_server.errors import Conflict, Forbidden, Invalid, NotFound
from bpm_server.extensions import deployment
from bpm_server.identity.models import Department, User
from bpm_server.identity.service import leads_department
from bpm_server.modeling.models import ProcessModel
from bpm_server.notifications.service import Message
from bpm_server.notifications.texts import render
from bpm_server.tasks.models import OPEN_STATES, Delegation, HumanTask
from bpm_server.tasks.verbs import person

MAX_CHAIN = 5  # a delegate who delegated in turn: followed this far at most


def may_manage(session: Session, actor: User, delegator: User) -> bool:
    """The person themselves, the lead of their department, or an admin."""
    return (actor.id == delegator.id or actor.has_role("admin")
            or leads_department(session, actor, delegator.department_id))


def _scopes_meet(a: Iterable[str], b: Iterable[str]) -> bool:
    first, second = set(a), set(b)
    return not first or not second or bool(first & second)


def _live(session: Session, delegator_id: str, starts_at: datetime, ends_at: datetime) -> list[Delegation]:
    """The delegator's uncancelled delegations whose period meets [starts_at, ends_at)."""
    return list(session.scalars(select(Delegation).where(
        Delegation.delegator_id == delegator_id, Delegation.cancelled_at.is_(None),
        Delegation.starts_at < ends_at, Delegation.ends_at > starts_at)))


def create(session: Session, actor: User, *, delegator: object, delegate: object, starts_at: datetime,
           ends_at: datetime, process_model_ids: list[str] | None, reason: str | None,
           now: datetime) -> Delegation:
    """Record a delegation; 422 naming the field for bad input, 409 when it overlaps one of
    the same scope or would close a cycle (A to B while B to A)."""
    giver = person(session, delegator, "delegator")
    taker = person(session, delegate, "delegate")
    if not may_manage(session, actor, giver):
        raise Forbidden(f"only {giver.username}, the lead of department {giver.department_id!r} or an admin can "
                        f"delegate {giver.username}'s work", code="not_department_lead")
    if taker.id == giver.id:
        raise Invalid("delegate: a person cannot delegate to themselves", code="delegate_is_self",
                      details={"delegate": ["must be someone else"]})
    if not taker.has_role("staff", "admin"):
        raise Invalid(f"delegate: {taker.username} does not work on tasks", code="not_staff",
                      details={"delegate": ["is not staff"]})
    if ends_at <= starts_at:
        raise Invalid("ends_at: the period ends before it starts", code="invalid_period",
                      details={"ends_at": ["must be after starts_at"]})
    if ends_at <= now:
        raise Invalid("ends_at: the period is already over", code="invalid_period",
                      details={"ends_at": ["must be in the future"]})
    scope = sorted(dict.fromkeys(process_model_ids or []))
    known = set(session.scalars(select(ProcessModel.id).where(ProcessModel.id.in_(scope)))) if scope else set()
    unknown = [m for m in scope if m not in known]
    if unknown:
        raise Invalid(f"process_model_ids: no process model {', '.join(unknown)}", code="unknown_process_model",
                      details={"process_model_ids": [f"unknown: {', '.join(unknown)}"]})
    for row in _live(session, giver.id, starts_at, ends_at):
        if _scopes_meet(row.process_model_ids, scope):
            raise Conflict(f"{giver.username} already delegates to {row.delegate.username} from "
                           f"{row.starts_at.isoformat()} to {row.ends_at.isoformat()} for the same work",
                           code="delegation_overlaps", details={"starts_at": ["overlaps another delegation"]})
    _refuse_cycle(session, giver, taker, starts_at, ends_at, scope)
    row = Delegation(id=new_id(), delegator_id=giver.id, delegator=giver, delegate_id=taker.id, delegate=taker,
                     starts_at=starts_at, ends_at=ends_at, process_model_ids=scope, reason=reason,
                     created_by=actor.username, created_at=now)
    session.add(row)
    session.flush()
    audit(session, actor=actor.username, action="delegation.create", object_type="user", object_id=giver.username,
          now=now, delegate=taker.username, starts_at=starts_at.isoformat(), ends_at=ends_at.isoformat(),
          process_model_ids=scope, reason=reason)
    return row


def _refuse_cycle(session: Session, giver: User, taker: User, starts_at: datetime, ends_at: datetime,
                  scope: list[str]) -> None:
    """Would work handed on from ``taker`` (in the same period and scope) come back to ``giver``?"""
    seen, frontier = {taker.id}, [taker.id]
    while frontier:
        current = frontier.pop()
        for row in _live(session, current, starts_at, ends_at):
            if not _scopes_meet(row.process_model_ids, scope):
                continue
            if row.delegate_id == giver.id:
                raise Conflict(f"delegate: {taker.username}'s work already goes (through delegations) to "
                               f"{giver.username} in this period; the delegation would go round in a circle",
                               code="delegation_cycle", details={"delegate": ["would delegate in a circle"]})
            if row.delegate_id not in seen:
                seen.add(row.delegate_id)
                frontier.append(row.delegate_id)


def cancel(session: Session, actor: User, delegation_id: str, now: datetime) -> Delegation:
    row = session.get(Delegation, delegation_id)
    if row is None or row.cancelled_at is not None:
        raise NotFound(f"delegation {delegation_id!r} does not exist", code="unknown_delegation")
    if not may_manage(session, actor, row.delegator):
        raise Forbidden("only the delegator, their lead or an admin can end this delegation",
                        code="not_department_lead")
    row.cancelled_at = now
    audit(session, actor=actor.username, action="delegation.cancel", object_type="user",
          object_id=row.delegator.username, now=now, delegate=row.delegate.username, delegation_id=row.id)
    return row


def listed(session: Session, actor: User, *, now: datetime, user: str | None = None,
           department_id: str | None = None) -> list[Delegation]:
    """Current and coming delegations the caller may see: their own (given or taken), and
    their departments' when they lead them (admins: all), soonest first."""
    query = select(Delegation).join(User, Delegation.delegator_id == User.id).where(
        Delegation.cancelled_at.is_(None), Delegation.ends_at > now)
    if user:
        named = session.scalar(select(User).where(User.username == user))
        if named is None:
            return []
        query = query.where(or_(Delegation.delegator_id == named.id, Delegation.delegate_id == named.id))
    if department_id:
        query = query.where(User.department_id == department_id)
    if not actor.has_role("admin"):
        led = list(session.scalars(select(Department.id).where(Department.lead_user_id == actor.id)))
        query = query.where(or_(Delegation.delegator_id == actor.id, Delegation.delegate_id == actor.id,
                                User.department_id.in_(led)))
    return list(session.scalars(query.order_by(Delegation.starts_at, Delegation.id)))


def active_for(session: Session, user: User, process_model_id: str, now: datetime) -> Delegation | None:
    return next((row for row in session.scalars(select(Delegation).where(
        Delegation.delegator_id == user.id, Delegation.cancelled_at.is_(None),
        Delegation.starts_at <= now, Delegation.ends_at > now).order_by(Delegation.created_at))
        if row.covers(process_model_id)), None)


def delegate_for(session: Session, user: User, process_model_id: str, now: datetime) -> tuple[User, Delegation | None]:
    """Who takes ``user``'s task of that model now (following a delegate who delegated in
    turn), and the first delegation that moved it; ``user`` and None when nobody does."""
    seen, current, first = {user.id}, user, None
    for _ in range(MAX_CHAIN):
        row = active_for(session, current, process_model_id, now)
        if row is None or row.delegate_id in seen or not row.delegate.active:
            break
        first = first or row
        seen.add(row.delegate_id)
        current = row.delegate
    return current, first


# --------------------------------------------------------------------------- the rule


@event.listens_for(Session, "before_flush")
def _land_on_delegates(session: Session, flush_context: Any, instances: Any) -> None:
    if not has_app_context():
        return
    changed = [obj for obj in (*session.new, *session.dirty) if isinstance(obj, HumanTask)]
    if not changed:
        return
    actor = g.get("user")
    rt = None
    for task in changed:
        state = inspect(task).attrs
        if not state.assignee.history.added and not state.assignee_id.history.added:
            continue
        assignee = task.assignee
        if assignee is None or task.state not in OPEN_STATES or (actor is not None and assignee.id == actor.id):
            task.on_behalf_of = None  # back in the queue, or taken by someone themselves
            continue
        rt = rt or deployment()
        now = rt.clock.now()
        delegate, row = delegate_for(session, assignee, task.process_model_id, now)
        if row is None:
            task.on_behalf_of = None
            continue
        task.assignee, task.on_behalf_of = delegate, assignee
        audit(session, actor=actor.username if actor is not None else "system", action="task.delegate",
              object_type="task", object_id=task.id, now=now, delegator=assignee.username,
              delegate=delegate.username, delegation_id=row.id)
        values = {"title": task.title, "account": task.account_id, "delegator": assignee.display_name}
        title, body = render("task_delegated", values)
        rt.notifier.notify(session, delegate, Message("task_delegated", title, body, task.id, params=values), now)
