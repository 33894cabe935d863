"""What the inbox pages show: the "mine" and "my department" tabs, and each
task's SLA state at a glance (on time / warning / breached, with the working
time left or overdue on the business calendar)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, defer

from bpm_server.accounts.models import Account
from bpm_server.identity.models import User
from bpm_server.sla.calendar import BusinessCalendar
from bpm_server.sla.models import SlaClock
from bpm_server.tasks import inbox_query
from bpm_server.tasks.models import OPEN_STATES, HumanTask

TABS = ("mine", "department")


@dataclass(frozen=True)
class SlaGlance:
    """``state`` is on_time, warning, breached, paused or none (no SLA on the stage)."""

    state: str
    due_at: datetime | None = None
    left: timedelta | None = None      # working time until due (on time / warning)
    overdue: timedelta | None = None   # working time since due (breached)


def sla_glance(task: HumanTask, clock: SlaClock | None, calendar: BusinessCalendar, now: datetime) -> SlaGlance:
    if clock is None:
        return SlaGlance("none")
    if clock.state == "paused":
        left = timedelta(seconds=max(clock.total_seconds - clock.consumed_seconds, 0))
        return SlaGlance("paused", left=left)
    due = task.due_at
    if due is None:
        return SlaGlance("none")
    if task.state in OPEN_STATES and (now >= due or clock.breached_at is not None):
        overdue = calendar.working_time_between(due, now) if now > due else timedelta(0)
        return SlaGlance("breached", due, overdue=overdue)
    if task.state not in OPEN_STATES:
        late = task.completed_at is not None and task.completed_at > due
        return SlaGlance("breached" if late else "on_time", due)
    state = "warning" if task.warn_at is not None and now >= task.warn_at else "on_time"
    return SlaGlance(state, due, left=calendar.working_time_between(now, due))


def glances(session: Session, tasks: Iterable[HumanTask], calendar: BusinessCalendar,
            now: datetime) -> dict[str, SlaGlance]:
    """The SLA glance of each task, by task id (one query for all the clocks)."""
    tasks = list(tasks)
    ids = [t.id for t in tasks]
    clocks = {c.task_id: c for c in session.scalars(select(SlaClock).where(SlaClock.task_id.in_(ids)))} if ids else {}
    return {t.id: sla_glance(t, clocks.get(t.id), calendar, now) for t in tasks}


def tab_query(user: User, tab: str, account_id: str | None = None,
              process_model_id: str | None = None, q: str | None = None) -> Select[HumanTask]:
    """Open tasks of a tab: "mine" = assigned to me; "department" = my department's, claimed or not;
    ``q`` searches titles, account names and contract numbers (``inbox_query.search_clause``)."""
    query = select(HumanTask).where(HumanTask.state.in_(OPEN_STATES))
    if tab == "mine":
        query = query.where(HumanTask.assignee_id == user.id)
    else:
        query = query.where(HumanTask.department_id == user.department_id)
    if account_id:
        query = query.where(HumanTask.account_id == account_id)
    if process_model_id:
        query = query.where(HumanTask.process_model_id == process_model_id)
    if q and q.strip():
        query = inbox_query.join_account(query).where(inbox_query.search_clause(q))
    return query


def tab_page(session: Session, user: User, tab: str, *, account_id: str | None = None,
             process_model_id: str | None = None, q: str | None = None, sort: str = "priority",
             order: str = "desc", page: int = 1, per_page: int = 50) -> tuple[list[HumanTask], int]:
    query = tab_query(user, tab, account_id, process_model_id, q)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if sort == "account" and not (q and q.strip()):
        query = inbox_query.join_account(query)
    rows = session.scalars(query.order_by(*inbox_query.ordering(sort, order))
                           .options(defer(HumanTask.data), defer(HumanTask.submitted))
                           .limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), total


def account_names(session: Session, tasks: Iterable[HumanTask]) -> dict[str, str]:
    """Account names by id for the rows shown (a person reads names, not ids)."""
    return account_names_by_id(session, {t.account_id for t in tasks})


def account_names_by_id(session: Session, ids: Iterable[str]) -> dict[str, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    return dict(session.execute(select(Account.id, Account.name).where(Account.id.in_(wanted))).tuples().all())


def filter_choices(session: Session, user: User) -> tuple[list[str], list[str]]:
    """Accounts and processes that occur among the open tasks the user can see (for the filter menus)."""
    visible = select(HumanTask).where(HumanTask.state.in_(OPEN_STATES)).where(
        (HumanTask.department_id == user.department_id) | (HumanTask.assignee_id == user.id)).subquery()
    accounts = session.scalars(select(visible.c.account_id).distinct().order_by(visible.c.account_id)).all()
    models = session.scalars(select(visible.c.process_model_id).distinct().order_by(visible.c.process_model_id)).all()
    return list(accounts), list(models)


def tab_counts(session: Session, user: User) -> dict[str, int]:
    return {tab: session.scalar(select(func.count()).select_from(tab_query(user, tab).subquery())) or 0
            for tab in TABS}


def earlier_stages(session: Session, task: HumanTask) -> list[HumanTask]:
    """The instance's completed stages before this one, in the order they were done."""
    return list(session.scalars(select(HumanTask).where(
        HumanTask.process_instance_id == task.process_instance_id, HumanTask.state == "completed",
        HumanTask.id != task.id).order_by(HumanTask.history_seq, HumanTask.completed_at)))


def open_tasks_of_account(session: Session, account_id: str) -> list[HumanTask]:
    """Every open stage of every process of the account, soonest due first."""
    return list(session.scalars(select(HumanTask).where(
        HumanTask.account_id == account_id, HumanTask.state.in_(OPEN_STATES))
        .order_by(HumanTask.due_at.asc().nulls_last(), HumanTask.created_at, HumanTask.id)))
