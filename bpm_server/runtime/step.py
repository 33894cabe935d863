"""One step of an instance: run the engine once, compute what changed, hand it on.

Every command in ``commands`` ends here. ``settle`` runs the command's action
on the engine and settles what the engine alone can decide (service tasks of
the built-in ERP in a deployment without one are answered at once), then computes the
step's ``StepOutcome`` from the engine, once. ``hand_off`` gives that outcome
to the domains in a fixed order:

1. the instance row (``instances.record_step``): engine state, data, end;
2. task rows (``tasks.apply_step``): closed stages cancelled, new ones created;
3. SLA clocks and timers (``sla.apply_step``): clocks stop and start, the
   instance's next BPMN timer is armed;
4. message subscriptions (``messages.apply_step``), when the waits changed;
5. outbound calls (``erp.calls.apply_step``), for service tasks started;
   external tasks (``external_tasks.apply_step``), for workers to fetch;
   a tier review that ended approved sets the account's tier (``accounts.apply_tier_review``);
6. audit, by the command itself, last.

No domain inspects the engine or calls back into the runtime.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, object_session

from bpm_server.accounts import service as accounts
from bpm_server.engine.adapter import (
    CompiledModel,
    EngineError,
    ReadyTask,
    Run,
    ServiceCall,
    WaitingMessage,
)
from bpm_server.erp import calls as outbound_calls
from bpm_server.errors import Conflict
from bpm_server.extensions import Deployment
from bpm_server.external_tasks import service as external_tasks
from bpm_server.identity.models import User
from bpm_server.instances import service as instances
from bpm_server.instances.models import ProcessInstance
from bpm_server.messages import service as messages
from bpm_server.modeling.service import called_models, callee_resolver, compiled
from bpm_server.sla import service as sla
from bpm_server.tasks import service as tasks
from bpm_server.tasks.models import HumanTask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Before:
    """What the stored run had open when loaded, to tell what a step changed."""

    ready: frozenset[str] = frozenset()
    service_calls: frozenset[str] = frozenset()


@dataclass
class StepOutcome:
    """What one step did, computed once from the engine (a plain value)."""

    engine_state: str
    data: dict[str, Any] = field(default_factory=dict)
    completed: bool = False
    error: EngineError | None = None
    opened: list[ReadyTask] = field(default_factory=list)       # human tasks that became ready
    closed: frozenset[str] = frozenset()                        # ready before, not any more
    next_timer: datetime | None = None                          # the run's earliest BPMN timer
    message_waits: list[WaitingMessage] | None = None           # None: the same waits as before
    calls_started: list[ServiceCall] = field(default_factory=list)
    calls_skipped: list[ServiceCall] = field(default_factory=list)
    external_started: list[ServiceCall] = field(default_factory=list)  # external tasks for workers
    service_closed: frozenset[str] = frozenset()                # service tasks waiting before, not any more


def load(rt: Deployment, instance: ProcessInstance) -> tuple[CompiledModel, Run, Before]:
    model = compiled(instance.version)
    session = object_session(instance)
    try:
        run = Run.load(model, instance.engine_state, rt.evaluator,  # type: ignore[arg-type]
                       resolver=callee_resolver(session) if session else None,
                       callees=called_models(session, instance.called_versions) if session else None)
    except EngineError as exc:  # a damaged row: say so (bpm-server doctor lists them all)
        raise Conflict(f"the stored state of process instance {instance.id} cannot be read: {exc.message}",
                       code="instance_state_unreadable") from None
    return run.model, run, Before(run.ready_task_ids(), frozenset(run.started_service_task_ids()))


def settle(run: Run, before: Before, action: Callable[[Run], None] | None) -> StepOutcome:
    """Apply ``action`` to the run and let the engine go as far as it can; never raises
    for what the diagram did (an engine failure is the outcome's ``error``)."""
    started: list[ServiceCall] = []
    skipped: list[ServiceCall] = []
    external: list[ServiceCall] = []
    try:
        if action is not None:
            action(run)
        seen = set(before.service_calls)
        while True:
            new = [c for c in run.pending_service_calls() if c.engine_task_id not in seen]
            if not new:
                break
            seen.update(c.engine_task_id for c in new)
            for call in new:
                if external_tasks.is_external(call):  # done by a worker that fetches it
                    external.append(call)
                elif not outbound_calls.is_skipped(call):
                    started.append(call)
                else:  # no ERP in this deployment: the diagram decides what a skipped call means
                    skipped.append(call)
                    run.complete_service_call(call.engine_task_id,
                                              outbound_calls.skipped_response(outbound_calls.target_of(call)[0]))
        completed = run.is_completed
        ready = run.ready_tasks()
        waits_now = run.message_wait_ids() if not completed else frozenset()
        waits = None if waits_now == run.message_waits_at_load else ([] if completed else run.waiting_messages())
        outcome = StepOutcome(
            engine_state=run.dump(), data=run.data, completed=completed,
            opened=[t for t in ready if t.engine_task_id not in before.ready],
            closed=before.ready - {t.engine_task_id for t in ready},
            next_timer=None if completed else run.next_timer_due(), message_waits=waits,
            calls_started=started, calls_skipped=skipped, external_started=external,
            # Only looked for when a service task waited: it walks the task tree.
            service_closed=before.service_calls - (set() if completed or not before.service_calls
                                                   else run.started_service_task_ids()))
    except EngineError as exc:
        return StepOutcome(engine_state=_dump_after_failure(run), error=exc)
    return outcome


def _dump_after_failure(run: Run) -> str:
    # The state as the failure left it (the failed task in ERROR), so a retry can resume it.
    try:
        return run.dump()
    except EngineError:
        return ""


def hand_off(session: Session, rt: Deployment, instance: ProcessInstance, model: CompiledModel,
             outcome: StepOutcome, now: datetime, *, completed_task: HumanTask | None = None) -> None:
    """Give the step's outcome to the domains, in the order of the module docstring."""
    if outcome.error is not None:
        instances.record_error(instance, outcome.error, now, engine_state=outcome.engine_state or None)
        # The completed stage stays completed (its data is kept); its clock stops.
        sla.apply_step(session, rt, instance, model, opened=[], closed=[completed_task] if completed_task else [],
                       next_timer=None, arm_engine_timer=False, now=now)
        session.flush()
        return
    instances.record_step(instance, engine_state=outcome.engine_state, data=outcome.data,
                          completed=outcome.completed, now=now, max_data_bytes=rt.config.max_process_data_bytes)
    opened, closed = tasks.apply_step(session, instance, model, opened=outcome.opened, closed=outcome.closed,
                                      completed=completed_task, now=now)
    sla.apply_step(session, rt, instance, model, opened=opened, closed=closed, next_timer=outcome.next_timer,
                   arm_engine_timer=True, now=now)
    if outcome.message_waits is not None:
        messages.apply_step(session, instance, outcome.message_waits, now)
    if outcome.calls_started or outcome.calls_skipped:
        outbound_calls.apply_step(session, rt, instance, started=outcome.calls_started,
                                  skipped=outcome.calls_skipped, now=now)
    if outcome.external_started or outcome.service_closed:
        external_tasks.apply_step(session, instance, started=outcome.external_started,
                                  closed=outcome.service_closed, now=now)
    if outcome.completed and instance.process_model_id == accounts.TIER_REVIEW_MODEL:
        person = session.get(User, completed_task.completed_by_id) \
            if completed_task is not None and completed_task.completed_by_id else None
        approver = person.username if person is not None else None
        accounts.apply_tier_review(session, instance, approver=approver, now=now)
    session.flush()


def run_step(session: Session, rt: Deployment, instance: ProcessInstance, model: CompiledModel, run: Run,
             before: Before, action: Callable[[Run], None] | None, now: datetime, *,
             completed_task: HumanTask | None = None, signal_depth: int = 0) -> StepOutcome:
    outcome = settle(run, before, action)
    if run.called_versions != (instance.called_versions or {}):  # a call into another model started
        instance.called_versions = dict(run.called_versions)
    # run.model: the model with the human tasks of the models the run called
    hand_off(session, rt, instance, run.model, outcome, now, completed_task=completed_task)
    if outcome.error is None and run.thrown_signals:
        _broadcast(session, rt, instance.id, run.thrown_signals, now, signal_depth)
    return outcome


MAX_SIGNAL_DEPTH = 10  # signals that set off signals in other instances, that set off...


def _broadcast(session: Session, rt: Deployment, thrower_id: str, names: list[str], now: datetime,
               depth: int) -> None:
    """A signal reaches every other instance waiting for it, in the same transaction (the
    thrower's own catches already caught it inside the engine). Suspended or ended
    instances are skipped, as a message to them would be."""
    if depth >= MAX_SIGNAL_DEPTH:
        log.warning("signal chain from instance %s stopped after %d hops", thrower_id, depth)
        return
    for name in dict.fromkeys(names):
        for waiter_id in messages.signal_waiters(session, name, exclude=thrower_id):
            waiter = instances.lock_instance(session, waiter_id)
            if waiter.state != "running" or waiter.suspended_at is not None:
                continue
            model, run, before = load(rt, waiter)
            run_step(session, rt, waiter, model, run, before, functools.partial(_catch_signal, name), now,
                     signal_depth=depth + 1)


def _catch_signal(name: str, run: Run) -> None:
    run.deliver_signal(name)
