"""``bpm-server doctor``: does every instance's stored engine state agree with its
rows (open tasks, BPMN timer, message subscriptions, SLA timers)?

The runtime writes the engine state and the rows in one transaction, so they
should never disagree; this is how an operator (and the fault tests) checks
that they do not, after a crash, a killed worker or a restore. Read only.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from bpm_server.engine.adapter import EngineError, Run
from bpm_server.extensions import Deployment
from bpm_server.instances.models import ProcessInstance
from bpm_server.messages.models import MessageSubscription
from bpm_server.modeling.service import called_models, compiled
from bpm_server.sla.models import SlaClock, Timer
from bpm_server.tasks.models import OPEN_STATES, HumanTask


@dataclass(frozen=True)
class Finding:
    process_instance_id: str
    problem: str

    def __str__(self) -> str:
        return f"instance {self.process_instance_id}: {self.problem}"


def examine(session: Session, rt: Deployment, *, batch: int = 200) -> Iterator[Finding]:
    """Every disagreement, instance by instance (read in batches, so any size works)."""
    last = ""
    while True:
        chunk = list(session.scalars(select(ProcessInstance).where(ProcessInstance.id > last)
                                     .order_by(ProcessInstance.id).limit(batch)))
        if not chunk:
            return
        ids = [i.id for i in chunk]
        rows = _by_instance(session.scalars(select(HumanTask).where(
            HumanTask.process_instance_id.in_(ids), HumanTask.state.in_(OPEN_STATES))))
        pending = _by_instance(session.scalars(select(Timer).where(
            Timer.process_instance_id.in_(ids), Timer.fired_at.is_(None), Timer.cancelled_at.is_(None))))
        subscriptions = _by_instance(session.scalars(select(MessageSubscription).where(
            MessageSubscription.process_instance_id.in_(ids))))
        clocks = {c.task_id: c for c in session.scalars(select(SlaClock).where(
            SlaClock.task_id.in_([t.id for ts in rows.values() for t in ts])))}
        for instance in chunk:
            yield from _examine(rt, instance, rows[instance.id], pending[instance.id],
                                subscriptions[instance.id], clocks)
        last = chunk[-1].id


def _by_instance(items: object) -> defaultdict[str, list]:
    grouped: defaultdict[str, list] = defaultdict(list)
    for item in items:  # type: ignore[attr-defined]
        grouped[item.process_instance_id].append(item)
    return grouped


def _examine(rt: Deployment, instance: ProcessInstance, rows: list[HumanTask], pending: list[Timer],
             subscriptions: list[MessageSubscription], clocks: dict[str, SlaClock]) -> Iterator[Finding]:
    iid = instance.id
    if instance.state in ("completed", "cancelled"):
        for row in rows:
            yield Finding(iid, f"is {instance.state} but task {row.id} ({row.name}) is still {row.state}")
        for timer in pending:
            yield Finding(iid, f"is {instance.state} but its {timer.kind} timer {timer.id} is still pending")
        for sub in subscriptions:
            yield Finding(iid, f"is {instance.state} but still waits for message {sub.message_name!r}")
        return
    if instance.engine_state in ("", "{}"):
        if instance.state != "error":
            yield Finding(iid, f"is {instance.state} but has no engine state")
        return
    try:
        run = Run.load(compiled(instance.version), instance.engine_state, rt.evaluator,  # type: ignore[arg-type]
                       callees=called_models(session, instance.called_versions)
                       if (session := object_session(instance)) else None)
    except EngineError as exc:
        yield Finding(iid, f"its engine state does not load: {exc.message}")
        return
    if instance.state == "error":
        return  # stopped mid-step on purpose: rows show the last good step
    ready = run.ready_task_ids()
    carried = {row.engine_task_id for row in rows}
    for row in rows:
        if row.engine_task_id not in ready:
            yield Finding(iid, f"task {row.id} ({row.name}) is {row.state} but the engine has no such ready task")
    for missing in sorted(ready - carried):
        yield Finding(iid, f"the engine has a ready task {missing} with no task row (no inbox shows it)")
    waits = run.message_wait_ids()
    subscribed = {s.engine_task_id for s in subscriptions}
    if waits != subscribed:
        yield Finding(iid, f"waits for messages at {sorted(waits)} but has subscriptions for {sorted(subscribed)}")
    held = instance.suspended_at is not None
    if held and pending:
        yield Finding(iid, f"is suspended but {len(pending)} of its timers are still pending")
    if not held:
        yield from _timers(iid, run, rows, pending, clocks)


def _timers(iid: str, run: Run, rows: list[HumanTask], pending: list[Timer],
            clocks: dict[str, SlaClock]) -> Iterator[Finding]:
    due = run.next_timer_due() if run.model.has_timer_events else None
    bpmn = [t for t in pending if t.kind == "bpmn"]
    if due is None and bpmn:
        yield Finding(iid, f"has a pending BPMN timer {bpmn[0].id} but the engine waits for no timer")
    elif due is not None and not any(t.due_at == due for t in bpmn):
        yield Finding(iid, f"the engine's next timer is due {due.isoformat()} but no timer row is armed for it")
    breach_timers = {t.task_id for t in pending if t.kind == "sla_breach"}
    for row in rows:
        clock = clocks.get(row.id)
        if clock and clock.state == "running" and clock.breached_at is None and row.id not in breach_timers:
            yield Finding(iid, f"task {row.id} ({row.name}) has a running SLA clock but no breach timer")
