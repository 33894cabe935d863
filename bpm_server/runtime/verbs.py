"""The task verbs as runtime commands: each locks the task's instance, checks, acts,
and for 退回 / 撤回 / the last 加签 signature runs the engine through ``step``
like every other command. The bookkeeping lives in ``tasks.verbs``."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.engine.rewind import rewind, rewindable
from bpm_server.errors import Conflict, Invalid, NotFound
from bpm_server.extensions import Deployment
from bpm_server.identity.models import User
from bpm_server.instances import service as instances
from bpm_server.instances.models import ProcessInstance
from bpm_server.runtime.commands import _ensure_moving, complete_locked
from bpm_server.runtime.step import load, run_step
from bpm_server.tasks import service as tasks
from bpm_server.tasks import signers, verbs
from bpm_server.tasks.models import HumanTask


def _locked(session: Session, user: User, task_id: str) -> tuple[ProcessInstance, HumanTask]:
    instance = instances.lock_instance_of_task(session, task_id)
    if instance is None:
        raise NotFound(f"task {task_id!r} does not exist", code="unknown_task")
    task = tasks.get_task(session, task_id, fresh=True)
    if not verbs.can_view(session, user, task):
        tasks.authorize_view(user, task)  # 403 naming the department, as for claim and complete
    return instance, task


def _reason(reason: object, required: bool = True) -> str | None:
    text = reason.strip() if isinstance(reason, str) else ""
    if required and not text:
        raise Invalid("reason: say why", code="reason_required", details={"reason": ["is required"]})
    return text or None


def transfer(session: Session, rt: Deployment, user: User, task_id: str, to: object, reason: object,
             now: datetime) -> HumanTask:
    _instance, task = _locked(session, user, task_id)
    return verbs.transfer(session, rt, user, task, to, _reason(reason) or "", now)


def release(session: Session, rt: Deployment, user: User, task_id: str, now: datetime) -> HumanTask:
    _instance, task = _locked(session, user, task_id)
    return verbs.release(session, user, task, now)


def add_signer(session: Session, rt: Deployment, user: User, task_id: str, username: object, position: str,
               reason: object, now: datetime, *, users: object = None, mode: str = "all") -> HumanTask:
    """加签: one signer (``username``), or a group (``users``) signing all (会签) or any (或签)."""
    instance, task = _locked(session, user, task_id)
    _ensure_moving(instance)
    if users is not None:
        return signers.add_signers(session, rt, user, task, users, mode, position, _reason(reason, required=False),
                                   now)
    add = verbs.add_signer_before if position == "before" else verbs.add_signer_after
    return add(session, rt, user, task, username, _reason(reason, required=False), now)


def urge(session: Session, rt: Deployment, user: User, task_id: str, reason: object, now: datetime) -> int:
    _instance, task = _locked(session, user, task_id)
    return verbs.urge(session, rt, user, task, _reason(reason, required=False), now)


def copy_to(session: Session, rt: Deployment, user: User, task_id: str, users: object, now: datetime) -> list:
    _instance, task = _locked(session, user, task_id)
    return verbs.copy_to(session, rt, user, task, users, now)


def _go_back(session: Session, rt: Deployment, instance: ProcessInstance, candidates: list[HumanTask],
             now: datetime) -> HumanTask:
    """Run the engine back to the newest of ``candidates`` still in the run; the reopened row."""
    _ensure_moving(instance)
    model, run, before = load(rt, instance)
    target = rewindable(run, [row.engine_task_id for row in candidates])
    if target is None:
        raise Conflict("the process can no longer go back to that stage", code="cannot_go_back")
    rewind_to: Callable[[Any], None] = lambda r: rewind(r, target)  # noqa: E731 - the step's action
    outcome = run_step(session, rt, instance, model, run, before, rewind_to, now)
    if outcome.error is not None:
        raise Conflict(f"the process could not go back: {outcome.error.message}", code="cannot_go_back")
    reopened = session.scalar(select(HumanTask).where(HumanTask.process_instance_id == instance.id,
                                                      HumanTask.engine_task_id == target,
                                                      HumanTask.state == "ready"))
    if reopened is None:
        raise Conflict("the process went back but the stage did not reopen", code="cannot_go_back")
    return reopened


def send_back(session: Session, rt: Deployment, user: User, task_id: str, to_stage: object, reason: object,
              now: datetime) -> HumanTask:
    """退回: the stage goes back to an earlier one (or the initiator's), with the reason;
    the reopened stage goes to whoever completed it before. Returns the reopened task."""
    instance, task = _locked(session, user, task_id)
    text = _reason(reason)
    candidates = verbs.send_back_targets(session, user, task, to_stage)
    previous = candidates[0].completed_by
    if to_stage == verbs.INITIATOR and instance.started_by:
        previous = session.scalar(select(User).where(User.username == instance.started_by)) or previous
    reopened = _go_back(session, rt, instance, candidates, now)
    verbs.hand_back(session, rt, user, "send_back", task, reopened, previous, text, now, withdrawn=[])
    return reopened


def withdraw(session: Session, rt: Deployment, user: User, task_id: str, reason: object,
             now: datetime) -> HumanTask:
    """撤回: the completer takes their stage back while the next one is unclaimed (409 after)."""
    instance, task = _locked(session, user, task_id)
    nexts = verbs.check_withdraw(session, user, task, instance)
    reopened = _go_back(session, rt, instance, [task], now)
    verbs.hand_back(session, rt, user, "withdraw", task, reopened, user, _reason(reason, required=False), now,
                    withdrawn=nexts)
    return reopened


def finish_task(session: Session, rt: Deployment, user: User, task_id: str, data: Any, now: datetime) -> HumanTask:
    """Complete a task, whatever it is: a stage, a stage with signers after its holder,
    or a signer's step (the last after-signer's signature moves the process on)."""
    instance, task = _locked(session, user, task_id)
    if task.kind != "stage":
        parent, done = verbs.sign(session, rt, user, task, now)
        if task.kind == "sign_after" and done and verbs.open_after_signer(session, rt, parent, now) is None:
            _complete_held(session, rt, instance, parent, now)
        return task
    if task.waiting_on_id:
        raise Conflict("the task waits for a signer; it comes back to you once they have signed",
                       code="waiting_for_signer")
    if task.after_signers:
        tasks.check_completion(user, task, data)
        tasks.note_version(session, instance)
        tasks.validate_form(session, task, data)
        _ensure_moving(instance)
        task.submitted = dict(data)
        verbs.open_after_signer(session, rt, task, now)
        return task
    return complete_locked(session, rt, user, instance, task, data, now)


def _complete_held(session: Session, rt: Deployment, instance: ProcessInstance, parent: HumanTask,
                   now: datetime) -> None:
    """Every after-signer signed: the stage completes with what its holder submitted."""
    _ensure_moving(instance)
    holder = parent.assignee
    if holder is None:
        raise Conflict("the stage has no holder to complete it for", code="no_holder")
    data = dict(parent.submitted or {})
    model, run, before = load(rt, instance)
    tasks.record_completion(instance, parent, holder, data, now)
    run_step(session, rt, instance, model, run, before, lambda r: r.complete(parent.engine_task_id, data), now,
             completed_task=parent)
    tasks.audit_completion(session, parent, holder, now)
