"""The commands that change an instance. Each one: lock the instance, load the run,
apply the command, run the engine, hand the step's outcome to the domains
(``step.hand_off``). Entry points (views, pages, jobs, the CLI) call these; the
caller owns the transaction.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from bpm_server.accounts.models import Account
from bpm_server.accounts.service import get_account, internal_account
from bpm_server.errors import AppError, Conflict, Invalid
from bpm_server.extensions import Deployment
from bpm_server.external_tasks import service as external_tasks
from bpm_server.external_tasks.models import ExternalTask
from bpm_server.identity.models import User
from bpm_server.instances import service as instances
from bpm_server.instances.models import ProcessInstance
from bpm_server.messages import service as messages
from bpm_server.modeling.models import ProcessModelVersion
from bpm_server.outbound import service as outbound
from bpm_server.runtime.accounts import fire_daily
from bpm_server.runtime.starting import start_instance, start_version
from bpm_server.runtime.step import load, run_step
from bpm_server.sla import batch, daily, start_timers, timers
from bpm_server.sla import service as sla
from bpm_server.sla.models import Timer
from bpm_server.sla.policies import START_PROCESS_TIMER
from bpm_server.tasks import service as tasks
from bpm_server.tasks.models import HumanTask

log = logging.getLogger(__name__)

# The BPMN engine counts its timer as due only once the moment has passed (due <
# now); fired at exactly ``due`` it would re-arm the same timer. So the test clock
# fires BPMN timers a microsecond later.
_ENGINE_TICK = timedelta(microseconds=1)


def complete_locked(session: Session, rt: Deployment, user: User, instance: ProcessInstance, task: HumanTask,
                    data: Any, now: datetime) -> HumanTask:
    """A person completes a stage with its form data; the instance moves on. The caller
    (``verbs.finish_task``) holds the instance's lock and read the task under it, so the
    task cannot be one a competing request completed while it waited."""
    task_id = task.id
    tasks.check_completion(user, task, data)
    tasks.note_version(session, instance)
    tasks.validate_form(session, task, data)
    _ensure_moving(instance)
    try:
        model, run, before = load(rt, instance)
        tasks.record_completion(instance, task, user, data, now)
        run_step(session, rt, instance, model, run, before, lambda r: r.complete(task.engine_task_id, data), now,
                 completed_task=task)
    except StaleDataError:
        raise Conflict(f"task {task_id} was completed by someone else at the same moment",
                       code="concurrent_change") from None
    tasks.audit_completion(session, task, user, now)
    return task


def _ensure_moving(instance: ProcessInstance) -> None:
    if instance.state != "running":
        raise Conflict(f"the process instance is {instance.state}; its tasks cannot be completed",
                       code="instance_not_running")
    if instance.suspended_at is not None:
        raise Conflict("the process instance is suspended; nothing in it moves until it is resumed",
                       code="instance_suspended")


def deliver_message(session: Session, rt: Deployment, *, name: str, correlation: Mapping[str, Any],
                    payload: Mapping[str, Any], message_id: str, now: datetime) -> messages.Delivery:
    """Hand a correlated message to the one instance waiting for it (once per message id)."""
    received = messages.receive(session, name=name, correlation=correlation, payload=payload,
                                message_id=message_id, now=now)
    if isinstance(received, messages.Delivery):  # a repeat: the first delivery's answer
        return received
    if isinstance(received, messages.StartByMessage):  # a model's message start event waits for it
        account = _account_for_start(session, {**dict(payload), **dict(correlation)}, now)
        started = start_version(session, rt, received.version, account, {}, now=now, started_by=f"message:{name}",
                              action=lambda r: r.deliver_message(name, payload, correlation))
        return messages.record_start(session, received, started.id)
    instance = instances.lock_instance(session, received.process_instance_id)
    overdue = timers.overdue_engine_timer(session, instance.id, now)
    if overdue is not None and instance.state == "running" and instance.suspended_at is None:
        # A timer that fell due before the message arrived wins (an event-based gateway's
        # race): fire it first; if it took the wait, the message finds none (404, nothing kept).
        fire_timer(session, rt, overdue.id, now)
    element_id = messages.still_waiting(session, received, name)
    _ensure_moving(instance)
    model, run, before = load(rt, instance)
    run_step(session, rt, instance, model, run, before, lambda r: r.deliver_message(name, payload, correlation), now)
    return messages.record_delivery(session, received, element_id)


def advance(session: Session, rt: Deployment, instance_id: str, now: datetime) -> ProcessInstance:
    """Run whatever became runnable without a person: due BPMN timers, waiting scripts."""
    instance = instances.lock_instance(session, instance_id)
    if instance.state == "running" and instance.suspended_at is None:
        model, run, before = load(rt, instance)
        run_step(session, rt, instance, model, run, before, lambda r: r.advance(), now)
    return instance


def finish_service_call(session: Session, rt: Deployment, instance_id: str, engine_task_id: str, result: Any,
                        now: datetime) -> bool:
    """Give a waiting service task the external system's answer. False when the instance
    no longer waits for it (ended, or interrupted)."""
    instance = instances.lock_instance(session, instance_id)
    if instance.state != "running" or instance.suspended_at is not None:
        return False  # a suspended instance gets the answer (kept on the call row) when resumed
    model, run, before = load(rt, instance)
    if engine_task_id not in before.service_calls:
        return False
    run_step(session, rt, instance, model, run, before, lambda r: r.complete_service_call(engine_task_id, result),
             now)
    return True


def complete_external_task(session: Session, rt: Deployment, task_id: str, *, worker_id: str,
                           variables: Mapping[str, Any], now: datetime) -> ExternalTask:
    """A worker that holds the lock completes an external task; the instance moves on."""
    task = external_tasks.get(session, task_id)
    instance = instances.lock_instance(session, task.process_instance_id)
    task = external_tasks.check_lock(session, task_id, worker_id, now)  # read again under the instance's lock
    _ensure_moving(instance)
    model, run, before = load(rt, instance)
    if task.engine_task_id not in before.service_calls:
        raise Conflict(f"the process instance no longer waits for external task {task_id}",
                       code="external_task_not_waiting")
    external_tasks.record_completion(session, task, worker_id, now)
    run_step(session, rt, instance, model, run, before,
             lambda r: r.complete_external_task(task.engine_task_id, variables), now)
    return task


def fire_timer(session: Session, rt: Deployment, timer_id: str, now: datetime) -> str:
    """Act on one due timer, once (a timer handed out twice acts once). Returns what happened."""
    timer = timers.claim(session, timer_id, now)
    if timer is None:
        return "already fired or cancelled"
    if timer.kind == "bpmn" and timer.process_instance_id:
        return f"instance {advance(session, rt, timer.process_instance_id, now).state}"
    if timer.kind == start_timers.KIND:  # a timer start event of a model version
        return _start_by_timer(session, rt, timer, now)
    if timer.kind == outbound.TIMER_KIND:  # an attempt of an outbound call or notification
        return outbound.fire_timer(session, rt, timer, now)
    if timer.kind == START_PROCESS_TIMER:  # an escalation asked for a process
        return _start_for_escalation(session, rt, timer.payload, now)
    if timer.kind == daily.KIND:  # the accounts' daily evaluation
        return fire_daily(session, rt, timer, now)
    return sla.fire(session, rt, timer, now)


def fire_timers(session: Session, rt: Deployment, timer_ids: list[str], now: datetime) -> batch.Fired:
    """Fire a batch's stage SLA timers together, in the caller's transaction (``sla.batch``:
    none of them moves an instance). The ids it leaves are the caller's to fire one by one."""
    return batch.fire_batch(session, rt, timer_ids, now)


def _start_by_timer(session: Session, rt: Deployment, timer: Timer, now: datetime) -> str:
    """One firing of a timer start event: one instance, and the cycle's next firing armed."""
    if not start_timers.is_current(session, timer):
        return "the model version was replaced or archived: nothing started"
    start_timers.rearm(session, timer, now)
    version = session.get_one(ProcessModelVersion, timer.version_id)
    element = timer.payload["element_id"]
    try:
        with session.begin_nested():  # a start that fails leaves no half-written instance
            started = start_version(session, rt, version, internal_account(session, now), {}, now=now,
                                    started_by=f"timer:{element}", fired_start=element)
    except AppError as exc:
        log.warning("timer start event %s of %s could not start: %s", element, version.process_model_id, exc)
        return f"timer start {version.process_model_id} failed: {exc}"
    return f"started {version.process_model_id} instance {started.id} ({started.state})"


def _account_for_start(session: Session, body: Mapping[str, Any], now: datetime) -> Account:
    """A message that starts an instance names its account (``account_id`` in the correlation
    or payload); without one the instance belongs to the internal account."""
    account_id = body.get("account_id")
    if account_id is None:
        return internal_account(session, now)
    if not isinstance(account_id, str):
        raise Invalid("account_id must be a text", code="invalid_account_id", details={"account_id": ["not a text"]})
    return get_account(session, account_id)


def _start_for_escalation(session: Session, rt: Deployment, request: Mapping[str, Any], now: datetime) -> str:
    model_id = request["process_model_id"]
    try:
        with session.begin_nested():  # a start that fails leaves nothing behind, and fires nothing again
            started = start_instance(session, rt, process_model_id=model_id, account_id=request["account_id"],
                                     data=request.get("data") or {}, now=now, started_by="escalation")
    except AppError as exc:
        log.warning("escalation could not start %s: %s", model_id, exc)
        return f"start_process {model_id} failed: {exc}"
    return f"started {model_id} instance {started.id}"


def advance_test_clock(session: Session, rt: Deployment, target: datetime, *, limit: int | None = None) -> Advance:
    """Move the test clock toward ``target``, firing every timer that falls due on the way,
    each at its own moment and in order, as real time would.

    With ``limit``, at most that many fire and the clock stops at the last one's moment
    (``done`` is False if more are due): the caller commits each batch, so a long advance
    keeps what it did and never holds one transaction for minutes."""
    clock = cast(MovableClock, rt.clock)
    # As the pump would have: the next daily evaluation is armed before time moves past it.
    daily.arm(session, rt.config.accounts_daily_at, rt.calendar.time_zone, clock.now())
    fired = 0
    while limit is None or fired < limit:
        due = timers.due_timers(session, target, limit=1)
        if not due:
            break
        timer = due[0]
        moment = timer.due_at + (_ENGINE_TICK if timer.kind == "bpmn" else timedelta(0))
        if moment > clock.now():
            clock.set(moment)
        fire_timer(session, rt, timer.id, clock.now())
        session.flush()
        fired += 1
    else:
        if timers.due_timers(session, target, limit=1):
            return Advance(fired, done=False)
    # Land on the target, taking back the engine tick a timer due exactly there added; but never
    # further back than that: another advance may already have gone further.
    if clock.now() <= target + _ENGINE_TICK:
        clock.set(target)
    return Advance(fired, done=True)


class MovableClock(Protocol):
    def now(self) -> datetime: ...

    def set(self, moment: datetime) -> None: ...


@dataclass(frozen=True)
class Advance:
    fired: int
    done: bool
