"""The inbox, and the task rows: looking, claiming, and what a completion or a step writes."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, union_all
from sqlalchemy.orm import Session, defer
from sqlalchemy.orm.exc import StaleDataError

from bpm_server.audit.service import record as audit
from bpm_server.database import new_id
from bpm_server.engine.adapter import CompiledModel, ReadyTask
from bpm_server.errors import Conflict, Forbidden, Invalid, NotFound
from bpm_server.identity.models import User
from bpm_server.instances.models import ProcessInstance
from bpm_server.instances.service import json_safe
from bpm_server.modeling import texts
from bpm_server.modeling.assignment import resolve_assignee, resolve_department
from bpm_server.modeling.forms import EMPTY_FORM, field_errors, validator_for
from bpm_server.modeling.service import department_of, form_name_of, forms_of_version
from bpm_server.sla.clock_stops import first_action
from bpm_server.tasks import inbox_query
from bpm_server.tasks.models import OPEN_STATES, HumanTask


@dataclass(frozen=True)
class InboxFilter:
    state: str | None = None
    account_id: str | None = None
    process_model_id: str | None = None
    overdue: bool | None = None
    q: str | None = None
    sort: str = "due"
    order: str = "asc"
    page: int = 1
    per_page: int = 20


def inbox(session: Session, user: User, filters: InboxFilter, now: datetime) -> tuple[list[HumanTask], int]:
    """Tasks assigned to the user, plus unclaimed tasks of the user's department;
    soonest due first unless ``filters.sort``/``order`` say otherwise."""
    halves = _inbox_halves(user, filters, now)
    if not halves:
        return [], 0
    order = inbox_query.ordering(filters.sort, filters.order)
    joined = inbox_query.needs_account(filters.sort, filters.q)

    def ids() -> Any:
        base = select(HumanTask.id)
        return inbox_query.join_account(base) if joined else base

    # The page is taken from each half of the inbox separately, each read in
    # sort order (from its own index for the due date) and cut at the end of
    # the page, then merged: a page then costs the same with 100 or 100,000 open
    # tasks in the department, instead of fetching and sorting all of them (and
    # PostgreSQL's generic plan for the OR form went parallel, ~30 ms at 1M
    # rows; see bench/inbox_scale.py). A task in both halves appears once (IN).
    window = filters.page * filters.per_page
    cut = [ids().where(half).order_by(*order).limit(window).subquery() for half in halves]
    page_ids = union_all(*(select(half.c.id) for half in cut))
    # An inbox row shows neither the process data a task starts from nor what was
    # submitted: leave those JSON documents in the database.
    rows_query = select(HumanTask)
    if filters.sort == "account":
        rows_query = inbox_query.join_account(rows_query)
    rows = list(session.scalars(rows_query.where(HumanTask.id.in_(page_ids)).order_by(*order)
                                .options(defer(HumanTask.data), defer(HumanTask.submitted),
                                         defer(HumanTask.instructions))
                                .limit(filters.per_page).offset((filters.page - 1) * filters.per_page)))
    if filters.page == 1 and len(rows) < filters.per_page:
        return rows, len(rows)  # the whole inbox fits on the first page: no need to count
    total = session.scalar(select(func.count()).select_from(ids().where(or_(*halves)).subquery())) or 0
    return rows, total


def _inbox_halves(user: User, filters: InboxFilter, now: datetime) -> list[Any]:
    """The two halves of an inbox as WHERE clauses: the user's own tasks, and
    the department's unclaimed ones; each states its task states exactly once,
    so PostgreSQL estimates its size right and reads it in index order."""
    common = []
    if filters.account_id:
        common.append(HumanTask.account_id == filters.account_id)
    if filters.process_model_id:
        common.append(HumanTask.process_model_id == filters.process_model_id)
    if filters.overdue is True:
        common.append(HumanTask.due_at < now)
    elif filters.overdue is False:
        common.append(or_(HumanTask.due_at.is_(None), HumanTask.due_at >= now))
    if filters.q and filters.q.strip():
        common.append(inbox_query.search_clause(filters.q))
    states = [filters.state] if filters.state else list(OPEN_STATES)
    if filters.overdue is True:  # only open work can be overdue
        states = [s for s in states if s in OPEN_STATES]
    halves = []
    if states:
        in_states = HumanTask.state == states[0] if len(states) == 1 else HumanTask.state.in_(states)
        halves.append(and_(HumanTask.assignee_id == user.id, in_states, *common))
    if "ready" in states:
        halves.append(and_(HumanTask.department_id == user.department_id, HumanTask.state == "ready", *common))
    return halves


def get_task(session: Session, task_id: str, *, fresh: bool = False) -> HumanTask:
    """The task; ``fresh`` reads the row again even if this session holds it already."""
    task = session.get(HumanTask, task_id, populate_existing=fresh)
    if task is None:
        raise NotFound(f"task {task_id!r} does not exist", code="unknown_task")
    return task


def get_task_and_version(session: Session, task_id: str) -> HumanTask:
    """The task, noting its instance's version for ``form_for`` in the same statement."""
    row = session.execute(select(HumanTask, ProcessInstance.version_id)
                          .join(ProcessInstance, ProcessInstance.id == HumanTask.process_instance_id)
                          .where(HumanTask.id == task_id)).first()
    if row is None:
        raise NotFound(f"task {task_id!r} does not exist", code="unknown_task")
    task, version_id = row
    _versions_seen(session)[task.process_instance_id] = version_id
    return task


def authorize_view(user: User, task: HumanTask) -> None:
    if user.has_role("admin", "auditor", "process_owner"):
        return
    if task.department_id != user.department_id and task.assignee_id != user.id:
        raise Forbidden(f"task {task.id} belongs to department {task.department_id!r}", code="not_your_department")


def _authorize_act(user: User, task: HumanTask) -> None:
    if user.has_role("admin"):
        return
    if not user.has_role("staff"):
        raise Forbidden("only staff act on tasks", code="role_required")
    if task.department_id != user.department_id and task.assignee_id != user.id:
        raise Forbidden(f"task {task.id} belongs to department {task.department_id!r}, "
                        f"not yours ({user.department_id!r})", code="not_your_department")


def _ensure_open(task: HumanTask, user: User) -> None:
    if task.state == "completed":
        raise Conflict(f"task {task.id} is already completed", code="already_completed")
    if task.state == "cancelled":
        raise Conflict(f"task {task.id} was cancelled", code="task_cancelled")
    if task.state == "claimed" and task.assignee_id != user.id:
        holder = task.assignee.username if task.assignee else "someone else"
        raise Conflict(f"task {task.id} is claimed by {holder}", code="claimed_by_other")


def claim(session: Session, user: User, task_id: str, now: datetime) -> HumanTask:
    task = get_task_and_version(session, task_id)
    _authorize_act(user, task)
    if task.state == "claimed" and task.assignee_id == user.id:
        raise Conflict(f"you have already claimed task {task.id}", code="already_claimed")
    _ensure_open(task, user)
    task.state, task.assignee, task.claimed_at = "claimed", user, now
    audit(session, actor=user.username, action="task.claim", object_type="task", object_id=task.id, now=now)
    try:
        session.flush()  # here, not at commit, so a lost race becomes a 409 (the audit row goes with it)
    except StaleDataError:
        raise Conflict(f"task {task_id} was changed by someone else at the same moment",
                       code="concurrent_change") from None
    first_action(session, task, "claim", user.username, now)  # after the flush: a lost race stops no clock
    return task


def check_completion(user: User, task: HumanTask, data: Any) -> None:
    """May this user complete this task with this body? (The form itself: ``validate_form``.)"""
    _authorize_act(user, task)
    _ensure_open(task, user)
    if not isinstance(data, dict):
        raise Invalid("data must be a JSON object with the form's fields", code="invalid_form_data",
                      details={"data": ["must be an object"]})


def note_version(session: Session, instance: ProcessInstance) -> None:
    """Remember the instance's version for ``form_for``, after the instance is released."""
    _versions_seen(session)[instance.id] = instance.version_id


def note_versions(session: Session, instance_ids: set[str]) -> None:
    """Read the versions of many instances with one query (a batch of timers about their tasks)."""
    _versions_seen(session).update(session.execute(select(ProcessInstance.id, ProcessInstance.version_id)
                                                   .where(ProcessInstance.id.in_(instance_ids))).all())


def record_completion(instance: ProcessInstance, task: HumanTask, user: User, data: Mapping[str, Any],
                      now: datetime) -> None:
    """The task row as completed by ``user``, next in the instance's history."""
    task.state, task.submitted, task.completed_at = "completed", dict(data), now
    task.completed_by_id = task.assignee_id = user.id
    instance.steps_completed += 1
    task.history_seq = instance.steps_completed


def audit_completion(session: Session, task: HumanTask, user: User, now: datetime) -> None:
    task.assignee = task.completed_by = user
    audit(session, actor=user.username, action="task.complete", object_type="task", object_id=task.id, now=now,
          process_instance_id=task.process_instance_id, stage=task.name)


def apply_step(session: Session, instance: ProcessInstance, model: CompiledModel, *, opened: list[ReadyTask],
               closed: frozenset[str], completed: HumanTask | None,
               now: datetime) -> tuple[list[HumanTask], list[HumanTask]]:
    """The task rows of one step (called by the runtime, first among the domains): the
    stages the engine no longer has ready are cancelled (unless completed), the new
    ones are created. Returns (opened rows, closed rows) for the SLA clocks."""
    closed_rows = [completed] if completed is not None else []
    others = closed - {completed.engine_task_id} if completed is not None else closed
    if others:  # interrupted by an event, or the instance ended
        for row in session.scalars(select(HumanTask).where(
                HumanTask.process_instance_id == instance.id, HumanTask.engine_task_id.in_(others),
                HumanTask.state.in_(OPEN_STATES))):
            row.state = "cancelled"
            closed_rows.append(row)
    if opened and (session.dirty or session.new):
        # Written now, before the new rows exist: the instance row must be there for
        # theirs, and a new stage's SLA may be anchored on the one just completed, whose
        # row its clock reads (without autoflush, so that the new row is inserted once,
        # with its due moments).
        session.flush()
    opened_rows = []
    for ready in opened:
        spec = model.human_tasks[ready.name]
        assignee = resolve_assignee(session, spec, ready.data, instance.started_by)
        department = resolve_department(session, department_of(spec)) or (
            assignee.department_id if assignee else _starter_department(session, instance)) or ""
        row = HumanTask(id=new_id(), process_instance_id=instance.id, engine_task_id=ready.engine_task_id,
                        name=spec.name, title=spec.title, department_id=department, lane=spec.lane,
                        form_name=form_name_of(spec), instructions=spec.instructions, state="ready",
                        account_id=instance.account_id, process_model_id=instance.process_model_id,
                        data=json_safe(ready.data), priority=initial_priority(spec), created_at=now)
        if assignee is not None:  # assigned in the diagram (camunda:assignee, ${initiator}): already claimed
            row.state, row.assignee_id, row.claimed_at = "claimed", assignee.id, now
        session.add(row)
        opened_rows.append(row)
    return opened_rows, closed_rows


PRIORITY_PROPERTY = "priority"


def initial_priority(spec: Any) -> int:
    """The ``priority`` property a stage opens with (checked at upload: 0 to 10); escalation raises it later."""
    raw = str(spec.properties.get(PRIORITY_PROPERTY, "0")).strip()
    return int(raw) if raw.isdigit() else 0


def _starter_department(session: Session, instance: ProcessInstance) -> str | None:
    if not instance.started_by:
        return None
    return session.scalar(select(User.department_id).where(User.username == instance.started_by))


def cancel_open(session: Session, instance: ProcessInstance) -> list[HumanTask]:
    """Every open task of the instance, cancelled (the instance is cancelled)."""
    rows = list(session.scalars(select(HumanTask).where(HumanTask.process_instance_id == instance.id,
                                                        HumanTask.state.in_(OPEN_STATES))))
    for row in rows:
        row.state = "cancelled"
    return rows


def open_rows(session: Session, instance_id: str) -> list[HumanTask]:
    return list(session.scalars(select(HumanTask).where(HumanTask.process_instance_id == instance_id,
                                                        HumanTask.state.in_(OPEN_STATES))
                                .order_by(HumanTask.created_at, HumanTask.id)))


def validate_form(session: Session, task: HumanTask, data: Mapping[str, Any]) -> None:
    """422 naming each field of ``data`` that the task's form refuses (the form of the model
    that published the stage: the instance's, or a called model's)."""
    version_id, schema = _form_source(session, task)
    errors = field_errors(validator_for((version_id, task.form_name or ""), schema), data)
    if errors:
        fields = ", ".join(sorted(errors))
        raise Invalid(f"the form has errors in: {fields}", code="invalid_form_data", details=errors)



def _versions_seen(session: Session) -> dict[str, str]:
    """Instance id -> version id for instances this session has locked (lives as long as the session)."""
    return session.info.setdefault("bpm_instance_versions", {})


def form_for(session: Session, task: HumanTask) -> dict[str, Any]:
    """The JSON Schema of the task's form, as published with the instance's version."""
    return _form_source(session, task)[1]


def _form_source(session: Session, task: HumanTask) -> tuple[str, dict[str, Any]]:
    """(the id of the version that published the task's form, the form)."""
    if not task.form_name:
        return "", EMPTY_FORM
    version_id = _version_id(session, task)
    form = forms_of_version(session, version_id).get(task.form_name)
    if form is not None:
        return version_id, form
    # A stage of a process in another model, reached by a call activity: its form was
    # published with that model's version, the one the instance recorded at the call.
    called = session.scalar(select(ProcessInstance.called_versions)
                            .where(ProcessInstance.id == task.process_instance_id)) or {}
    for called_version_id in called.values():
        form = forms_of_version(session, called_version_id).get(task.form_name)
        if form is not None:
            return called_version_id, form
    return version_id, EMPTY_FORM


def _version_id(session: Session, task: HumanTask) -> str:
    # Only the version id is needed: known when this session locked the
    # instance (complete), else read that one column (claim, view), instead
    # of loading the instance with its version's BPMN text.
    version_id = _versions_seen(session).get(task.process_instance_id) or session.scalar(
        select(ProcessInstance.version_id).where(ProcessInstance.id == task.process_instance_id))
    if version_id is None:
        raise NotFound(f"process instance {task.process_instance_id!r} does not exist", code="unknown_instance")
    return version_id


@dataclass(frozen=True)
class ShownTask:
    """A task's texts in one language: its title, instructions and form (see modeling/texts.py)."""
    title: str
    instructions: str | None
    form: dict[str, Any]
    messages: Mapping[str, str]


def titles_in(session: Session, rows: Iterable[HumanTask], locale: str) -> dict[str, str]:
    """Task id -> its title in ``locale`` (lists: the inbox), through each instance's version's
    messages file; one query for the versions of all the rows, the catalogues cached."""
    rows = list(rows)
    instance_ids = {t.process_instance_id for t in rows}
    if not instance_ids:
        return {}
    versions = dict(session.execute(select(ProcessInstance.id, ProcessInstance.version_id)
                                    .where(ProcessInstance.id.in_(instance_ids))).all())
    titles = {}
    for task in rows:
        version_id = versions.get(task.process_instance_id)
        messages = texts.catalog(forms_of_version(session, version_id), locale) if version_id else {}
        titles[task.id] = texts.text(task.title, messages) or task.title
    return titles


def catalog_of(session: Session, task: HumanTask, locale: str) -> Mapping[str, str]:
    """The translations into ``locale`` of the version that published the task's stage (its
    title, and the other stages' titles of that version, e.g. where it was sent back from)."""
    version_id, _ = _form_source(session, task)
    return texts.catalog(forms_of_version(session, version_id or _version_id(session, task)), locale)


def shown_in(session: Session, task: HumanTask, locale: str) -> ShownTask:
    """The task as a reader of ``locale`` sees it, through the messages file for that locale of
    the version that published the stage (the instance's, or a called model's)."""
    version_id, form = _form_source(session, task)
    messages = texts.catalog(forms_of_version(session, version_id or _version_id(session, task)), locale)
    return ShownTask(title=texts.text(task.title, messages) or task.title,
                     instructions=texts.text(task.instructions, messages),
                     form=texts.schema(form, messages), messages=messages)

