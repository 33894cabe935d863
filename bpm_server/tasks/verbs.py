"""The task verbs Chinese enterprise staff expect (tasks domain side): 转交, release,
加签 (before me), 抄送, 催办, and the bookkeeping of 退回 / 撤回 (whose engine step
the runtime takes). Each checks first and changes nothing on bad input; each
leaves a ``TaskAction`` (the history the next holder reads), an audit entry and
notifications in the recipient's language."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bpm_server.accounts.models import Account
from bpm_server.audit.service import record as audit
from bpm_server.database import new_id
from bpm_server.errors import Conflict, Forbidden, Invalid, NotFound, TooManyAttempts
from bpm_server.extensions import Deployment
from bpm_server.identity.models import User
from bpm_server.instances.models import ProcessInstance
from bpm_server.notifications.service import Message
from bpm_server.notifications.texts import render
from bpm_server.sla.clock_stops import first_action
from bpm_server.tasks.models import OPEN_STATES, HumanTask, TaskAction, TaskCopy
from bpm_server.tasks.service import _authorize_act, _ensure_open, authorize_view

INITIATOR = "initiator"


def can_view(session: Session, user: User, task: HumanTask) -> bool:
    """authorize_view, plus the people a task was copied to (抄送) and the signers of it."""
    try:
        authorize_view(user, task)
        return True
    except Forbidden:
        pass
    if task.completed_by_id == user.id:
        return True
    if session.scalar(select(TaskCopy.id).where(TaskCopy.task_id == task.id, TaskCopy.user_id == user.id)) is not None:
        return True
    # An account's owner and executive sponsor see all of its work (issue 17: account-scoped access).
    return session.scalar(select(Account.id).where(
        Account.id == task.account_id,
        or_(Account.owner == user.username, Account.executive_sponsor == user.username))) is not None


def visible_task(session: Session, user: User, task_id: str) -> HumanTask:
    """The task if the caller may see it; 404 otherwise (a task one cannot see is not there)."""
    task = session.get(HumanTask, task_id)
    if task is None or not can_view(session, user, task):
        raise NotFound(f"task {task_id!r} does not exist", code="unknown_task")
    return task


def note_read(session: Session, user: User, task: HumanTask, now: datetime) -> None:
    """A copied person opened the task: the read receipt."""
    copy = session.scalar(select(TaskCopy).where(TaskCopy.task_id == task.id, TaskCopy.user_id == user.id,
                                                 TaskCopy.read_at.is_(None)))
    if copy is not None:
        copy.read_at = now


def person(session: Session, username: object, field: str) -> User:
    """An active user by name, or a 422 naming the field."""
    found = session.scalar(select(User).where(User.username == username)) if isinstance(username, str) else None
    if found is None or not found.active:
        raise Invalid(f"{field}: no active user {username!r}", code="unknown_user",
                      details={field: ["no such active user"]})
    return found


def _notify(session: Session, rt: Deployment, users: Iterable[User], kind: str, task: HumanTask,
            now: datetime, **params: object) -> None:
    values = {"title": task.title, "account": task.account_id, **params}
    for user in users:
        title, body = render(kind, values)
        rt.notifier.notify(session, user, Message(kind, title, body, task.id, params=values), now)


def _act(session: Session, task: HumanTask, verb: str, actor: User, now: datetime, *, target: User | None = None,
         to_stage: str | None = None, reason: str | None = None, new_task_id: str | None = None) -> TaskAction:
    action = TaskAction(id=new_id(), process_instance_id=task.process_instance_id, task_id=task.id, verb=verb,
                        actor_id=actor.id, actor=actor, target_user_id=target.id if target else None,
                        target_user=target, to_stage=to_stage, reason=reason, new_task_id=new_task_id,
                        created_at=now)
    session.add(action)
    audit(session, actor=actor.username, action=f"task.{verb}", object_type="task", object_id=task.id, now=now,
          process_instance_id=task.process_instance_id, stage=task.name,
          target=target.username if target else None, to_stage=to_stage, reason=reason)
    return action


def _holding(user: User, task: HumanTask) -> None:
    """The caller holds the task (claimed by them), or may take it (ready in their department)."""
    _authorize_act(user, task)
    _ensure_open(task, user)


def transfer(session: Session, rt: Deployment, user: User, task: HumanTask, to: object, reason: str,
             now: datetime) -> HumanTask:
    """转交: the task goes to a named colleague, claimed for them."""
    _holding(user, task)
    target = person(session, to, "to")
    if target.id == user.id:
        raise Invalid("to: you cannot transfer a task to yourself", code="transfer_to_self",
                      details={"to": ["is yourself"]})
    if not target.has_role("staff", "admin"):
        raise Invalid(f"to: {target.username} does not work on tasks", code="not_staff",
                      details={"to": ["is not staff"]})
    task.state, task.assignee, task.claimed_at = "claimed", target, now
    first_action(session, task, "transfer", user.username, now)
    _act(session, task, "transfer", user, now, target=target, reason=reason)
    _notify(session, rt, [target], "task_transferred", task, now, actor=user.display_name, reason=reason)
    return task


def release(session: Session, user: User, task: HumanTask, now: datetime) -> HumanTask:
    """Give a claimed task back to its department's queue."""
    _authorize_act(user, task)
    if task.state != "claimed" or (task.assignee_id != user.id and not user.has_role("admin")):
        raise Conflict(f"task {task.id} is not claimed by you", code="not_claimed_by_you")
    if task.kind != "stage" or task.waiting_on_id:
        raise Conflict("a signer's step and a task waiting for a signer stay with their person",
                       code="cannot_release")
    task.state, task.assignee, task.claimed_at = "ready", None, None
    _act(session, task, "release", user, now)
    return task


def add_signer_before(session: Session, rt: Deployment, user: User, task: HumanTask, username: object,
                      reason: str | None, now: datetime) -> HumanTask:
    """加签 (before me): the signer gets a step of their own; the task waits for it,
    then comes back to the caller. Returns the signer's step."""
    if task.state != "claimed" or task.assignee_id != user.id:
        raise Conflict("claim the task before adding a signer", code="not_claimed_by_you")
    _holding(user, task)
    signer = _signer(session, user, task, username)
    if task.waiting_on_id:
        raise Conflict("the task already waits for a signer", code="waiting_for_signer")
    step = signer_step(task, signer, "sign_before", now, reason=reason)
    session.add(step)
    task.waiting_on_id = step.id
    _act(session, task, "add_signer", user, now, target=signer, reason=reason, new_task_id=step.id,
         to_stage="before")
    _notify(session, rt, [signer], "task_signer_added", task, now, actor=user.display_name, position="before")
    return step


def add_signer_after(session: Session, rt: Deployment, user: User, task: HumanTask, username: object,
                     reason: str | None, now: datetime) -> HumanTask:
    """加签 (after me): once the caller completes, the signer signs before the process moves on."""
    if task.state != "claimed" or task.assignee_id != user.id:
        raise Conflict("claim the task before adding a signer", code="not_claimed_by_you")
    _holding(user, task)
    signer = _signer(session, user, task, username)
    task.after_signers = [*(task.after_signers or []), signer.id]
    _act(session, task, "add_signer", user, now, target=signer, reason=reason, to_stage="after")
    _notify(session, rt, [signer], "task_signer_added", task, now, actor=user.display_name, position="after")
    return task


def _signer(session: Session, user: User, task: HumanTask, username: object, field: str = "user") -> User:
    signer = person(session, username, field)
    if signer.id == user.id:
        raise Invalid(f"{field}: you cannot add yourself as a signer", code="signer_is_self",
                      details={field: ["is yourself"]})
    if task.kind != "stage":
        raise Conflict("a signer's step cannot get signers of its own", code="signer_step")
    return signer


def open_after_signer(session: Session, rt: Deployment, parent: HumanTask, now: datetime) -> HumanTask | None:
    """The next after-signer's step (or a group's steps, the first returned) of a task its
    holder completed, or None when all signed."""
    pending = list(parent.after_signers or [])
    if not pending:
        return None
    entry = pending.pop(0)
    parent.after_signers = pending
    ids, mode = (entry["users"], entry["mode"]) if isinstance(entry, dict) else ([entry], None)
    steps = [signer_step(parent, cast(User, session.get(User, uid)), "sign_after", now, mode=mode) for uid in ids]
    session.add_all(steps)
    parent.waiting_on_id = steps[0].id
    return steps[0]


def signer_step(parent: HumanTask, signer: User, kind: str, now: datetime, *, mode: str | None = None,
                reason: str | None = None) -> HumanTask:
    """A signer's own step on ``parent`` (same engine task), claimed for them."""
    return HumanTask(id=new_id(), process_instance_id=parent.process_instance_id,
                     engine_task_id=parent.engine_task_id, name=parent.name, title=parent.title,
                     department_id=parent.department_id, lane=parent.lane, form_name=None, instructions=reason,
                     state="claimed", assignee=signer, account_id=parent.account_id,
                     process_model_id=parent.process_model_id, data=parent.data, created_at=now, claimed_at=now,
                     kind=kind, parent_task_id=parent.id, sign_mode=mode)


def sign(session: Session, rt: Deployment, user: User, step: HumanTask, now: datetime) -> tuple[HumanTask, bool]:
    """A signer signs their step; returns the parent task and whether its signers are done
    (a group signing "all" waits for every one; with "any" the first signature decides and
    the others' steps are cancelled, their signers told). A before-group done: the task is
    back with its holder."""
    if step.state != "claimed" or step.assignee_id != user.id:
        raise Conflict(f"task {step.id} is not yours to sign", code="not_claimed_by_you")
    parent = session.get(HumanTask, step.parent_task_id)
    if parent is None or parent.state not in OPEN_STATES:
        raise Conflict("the task this signature was for is closed", code="task_cancelled")
    step.state, step.completed_at, step.completed_by_id, step.submitted = "completed", now, user.id, {}
    audit(session, actor=user.username, action="task.sign", object_type="task", object_id=step.id, now=now,
          process_instance_id=step.process_instance_id, stage=step.name, mode=step.sign_mode)
    others = list(session.scalars(select(HumanTask).where(
        HumanTask.parent_task_id == parent.id, HumanTask.kind == step.kind, HumanTask.id != step.id,
        HumanTask.state.in_(OPEN_STATES))))
    if others and step.sign_mode != "any":
        parent.waiting_on_id = others[0].id  # 会签: the others still sign
        return parent, False
    for row in others:  # 或签: the first signature decided
        row.state = "cancelled"
        audit(session, actor=user.username, action="task.sign_cancelled", object_type="task", object_id=row.id,
              now=now, process_instance_id=row.process_instance_id, stage=row.name, signed_by=user.username)
    _notify(session, rt, [row.assignee for row in others if row.assignee is not None], "task_sign_decided", parent,
            now, actor=user.display_name)
    parent.waiting_on_id = None
    if parent.assignee is not None and step.kind == "sign_before":
        _notify(session, rt, [parent.assignee], "task_signed", parent, now, actor=user.display_name)
    return parent, True


def urge(session: Session, rt: Deployment, user: User, task: HumanTask, reason: str | None, now: datetime) -> int:
    """催办: remind whoever holds the task (its department's staff while unclaimed), through
    the notification channels; ``urge_limit`` per person and task per window (429 beyond).
    Returns how many people were reminded."""
    if task.state not in OPEN_STATES:
        raise Conflict(f"task {task.id} is {task.state}; there is nobody to urge", code="task_closed")
    window = timedelta(seconds=rt.config.urge_window_seconds)
    done = session.scalar(select(func.count()).select_from(TaskAction).where(
        TaskAction.task_id == task.id, TaskAction.verb == "urge", TaskAction.actor_id == user.id,
        TaskAction.created_at > now - window)) or 0
    if done >= rt.config.urge_limit:
        first = session.scalar(select(func.min(TaskAction.created_at)).where(
            TaskAction.task_id == task.id, TaskAction.verb == "urge", TaskAction.actor_id == user.id,
            TaskAction.created_at > now - window))
        wait = int(((first or now) + window - now).total_seconds()) + 1
        raise TooManyAttempts(f"you already urged this task {done} time(s) in the last "
                              f"{rt.config.urge_window_seconds // 60} minutes", code="urge_limit",
                              retry_after_seconds=max(wait, 1))
    if task.assignee is not None and task.state == "claimed":
        holders = [task.assignee]
    else:
        holders = [u for u in session.scalars(select(User).where(User.department_id == task.department_id,
                                                                 User.active)) if u.has_role("staff")]
    _act(session, task, "urge", user, now, reason=reason)
    _notify(session, rt, holders, "task_urged", task, now, actor=user.display_name, reason=reason)
    return len(holders)


def copy_to(session: Session, rt: Deployment, user: User, task: HumanTask, usernames: object,
            now: datetime) -> list[TaskCopy]:
    """抄送: read-only sight of the task for each named person, with a read receipt."""
    if not isinstance(usernames, list) or not usernames:
        raise Invalid("users: name at least one person", code="invalid", details={"users": ["is empty"]})
    people = [person(session, name, "users") for name in usernames]
    existing = {c.user_id for c in session.scalars(select(TaskCopy).where(TaskCopy.task_id == task.id))}
    copies = []
    for target in people:
        if target.id in existing:
            continue
        existing.add(target.id)
        copy = TaskCopy(id=new_id(), task_id=task.id, user_id=target.id, user=target, by_id=user.id, by=user,
                        created_at=now)
        session.add(copy)
        copies.append(copy)
        _act(session, task, "cc", user, now, target=target)
    _notify(session, rt, [c.user for c in copies], "task_cc", task, now, actor=user.display_name)
    return copies


def copies_of(session: Session, task: HumanTask) -> list[TaskCopy]:
    return list(session.scalars(select(TaskCopy).where(TaskCopy.task_id == task.id).order_by(TaskCopy.created_at)))


def actions_of(session: Session, instance_id: str) -> list[TaskAction]:
    return list(session.scalars(select(TaskAction).where(TaskAction.process_instance_id == instance_id)
                                .order_by(TaskAction.created_at, TaskAction.id)))


# --------------------------------------------------------------------------- 退回 and 撤回 (the runtime steps)


def send_back_targets(session: Session, user: User, task: HumanTask, to_stage: object) -> list[HumanTask]:
    """The completed rows of the stage to send back to, newest first; 422 when the
    instance never passed that stage. ``initiator`` is the instance's first stage."""
    _holding(user, task)
    if task.kind != "stage":
        raise Conflict("a signer's step cannot be sent back; sign it or ask its holder", code="signer_step")
    history = list(session.scalars(select(HumanTask).where(
        HumanTask.process_instance_id == task.process_instance_id, HumanTask.state == "completed",
        HumanTask.kind == "stage").order_by(HumanTask.history_seq.desc())))
    if to_stage == INITIATOR and history:
        first = min(history, key=lambda row: row.history_seq or 0).name
        return [row for row in history if row.name == first]
    rows = [row for row in history if row.name == to_stage]
    if not rows:
        passed = sorted({row.name for row in history})
        raise Invalid(f"to_stage: the instance never passed stage {to_stage!r} (passed: {', '.join(passed) or 'none'})",
                      code="stage_not_passed", details={"to_stage": ["is not a stage this instance passed"]})
    return rows


def check_withdraw(session: Session, user: User, task: HumanTask, instance: ProcessInstance) -> list[HumanTask]:
    """May the completer take the task back? Returns the open stages that would be withdrawn."""
    if task.state != "completed" or task.completed_by_id != user.id or task.kind != "stage":
        raise Conflict("only the person who completed a stage can withdraw it", code="not_your_completion")
    if task.history_seq != instance.steps_completed:
        raise Conflict("a later stage was already completed; the stage can no longer be withdrawn",
                       code="next_stage_done")
    nexts = list(session.scalars(select(HumanTask).where(HumanTask.process_instance_id == instance.id,
                                                         HumanTask.state.in_(OPEN_STATES))))
    claimed = [row for row in nexts if row.state == "claimed"]
    if claimed:
        holder = claimed[0].assignee.username if claimed[0].assignee else "someone"
        raise Conflict(f"the next stage “{claimed[0].title}” was already claimed by {holder}; ask them to send "
                       f"it back instead", code="next_stage_claimed")
    return nexts


def hand_back(session: Session, rt: Deployment, actor: User, verb: str, source: HumanTask, reopened: HumanTask,
              holder: User | None, reason: str | None, now: datetime, *, withdrawn: list[HumanTask]) -> None:
    """After the engine went back: the reopened stage goes to ``holder`` (claimed), the
    history notes why, and the people concerned are told."""
    if holder is not None and holder.active:
        reopened.state, reopened.assignee, reopened.claimed_at = "claimed", holder, now
    _act(session, source, verb, actor, now, target=holder, to_stage=reopened.name, reason=reason,
         new_task_id=reopened.id)
    if verb == "send_back" and holder is not None and holder.id != actor.id:
        _notify(session, rt, [holder], "task_sent_back", reopened, now, actor=actor.display_name,
                from_title=source.title, reason=reason)
    if verb == "withdraw":
        staff = [u for row in withdrawn for u in session.scalars(
            select(User).where(User.department_id == row.department_id, User.active)) if u.has_role("staff")]
        _notify(session, rt, {u.id: u for u in staff}.values(), "task_withdrawn", withdrawn[0] if withdrawn
                else reopened, now, actor=actor.display_name, from_title=source.title)
