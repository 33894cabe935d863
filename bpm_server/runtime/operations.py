"""What an operator does to a running instance (Camunda Cockpit's verbs): cancel,
suspend, resume, retry, edit its data, migrate it to another version.

Each is a runtime command like those in ``commands``: lock the instance, check
its state (409 when the operation does not apply), act, hand any engine step to
the domains through ``step``, and audit who did it and why.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.audit.service import record as audit
from bpm_server.engine.adapter import EngineError, Run
from bpm_server.engine.operations import (
    MigrationPlan,
    failed_elements,
    migrate,
    plan_migration,
    retry_failed,
    set_data,
)
from bpm_server.erp import calls as outbound_calls
from bpm_server.errors import AppError, Conflict, Invalid, NotFound
from bpm_server.extensions import Deployment
from bpm_server.external_tasks import service as external_tasks
from bpm_server.instances import service as instances
from bpm_server.instances.models import ProcessInstance
from bpm_server.messages import service as messages
from bpm_server.modeling.models import ProcessModelVersion
from bpm_server.modeling.service import callee_resolver, compiled
from bpm_server.runtime.step import Before, load, run_step
from bpm_server.sla import service as sla
from bpm_server.sla import timers
from bpm_server.tasks import service as tasks


def cancel(session: Session, rt: Deployment, instance_id: str, *, reason: str, actor: str,
           now: datetime) -> ProcessInstance:
    """End the instance: open tasks cancelled, SLA clocks and timers stopped, message
    waits and outbound calls withdrawn."""
    instance = instances.lock_instance(session, instance_id)
    if instance.state in ("completed", "cancelled"):
        raise Conflict(f"the process instance is already {instance.state}", code="instance_ended")
    for task in tasks.cancel_open(session, instance):
        sla.stop_clock(session, rt, task, now)
    sla.stop_named_clocks(session, instance.id, now)
    timers.cancel_timers(session, instance_id=instance.id, now=now)
    messages.apply_step(session, instance, [], now)
    withdrawn = outbound_calls.withdraw(session, instance.id, now)
    withdrawn += external_tasks.withdraw(session, instance.id, now)
    instance.state, instance.completed_at, instance.updated_at = "cancelled", now, now
    instance.cancelled_by, instance.cancel_reason = actor, reason
    instance.suspended_at = instance.suspended_by = instance.held_timers = None
    audit(session, actor=actor, action="instance.cancel", object_type="process_instance", object_id=instance.id,
          now=now, reason=reason, calls_withdrawn=withdrawn)
    session.flush()
    return instance


def suspend(session: Session, rt: Deployment, instance_id: str, *, reason: str | None, actor: str,
            now: datetime) -> ProcessInstance:
    """Hold the instance: nothing completes and no timer of it fires until it is resumed."""
    instance = instances.lock_instance(session, instance_id)
    if instance.state != "running":
        raise Conflict(f"only a running instance can be suspended; this one is {instance.state}",
                       code="instance_not_running")
    if instance.suspended_at is not None:
        raise Conflict("the process instance is already suspended", code="already_suspended")
    instance.held_timers = timers.hold(session, instance.id, now)
    instance.suspended_at, instance.suspended_by, instance.updated_at = now, actor, now
    audit(session, actor=actor, action="instance.suspend", object_type="process_instance", object_id=instance.id,
          now=now, reason=reason, timers_held=len(instance.held_timers))
    session.flush()
    return instance


def resume(session: Session, rt: Deployment, instance_id: str, *, reason: str | None, actor: str,
           now: datetime) -> ProcessInstance:
    """Release a suspended instance: its held timers return (those due meanwhile fire at
    once, in due order), and answers that arrived while it was held are handed on."""
    instance = instances.lock_instance(session, instance_id)
    if instance.suspended_at is None:
        raise Conflict("the process instance is not suspended", code="not_suspended")
    held = list(instance.held_timers or [])
    timers.restore(session, instance.id, held, now)
    instance.suspended_at = instance.suspended_by = instance.held_timers = None
    instance.updated_at = now
    if instance.state == "running":
        answered = {c.engine_task_id: c.response for c in outbound_calls.answered_calls(session, instance.id)}
        model, run, before = load(rt, instance)
        waiting = [(task_id, answer) for task_id, answer in answered.items() if task_id in before.service_calls]
        if waiting:
            def hand_answers(r: Run) -> None:
                for task_id, answer in waiting:
                    r.complete_service_call(task_id, answer)
            run_step(session, rt, instance, model, run, before, hand_answers, now)
    audit(session, actor=actor, action="instance.resume", object_type="process_instance", object_id=instance.id,
          now=now, reason=reason, timers_restored=len(held))
    session.flush()
    return instance


def retry(session: Session, rt: Deployment, instance_id: str, *, actor: str, now: datetime) -> ProcessInstance:
    """Run an instance in error again, from the element that failed (after its data was
    fixed, or a fixed version published and the instance migrated to it)."""
    instance = instances.lock_instance(session, instance_id)
    if instance.state != "error":
        raise Conflict(f"only an instance in error can be retried; this one is {instance.state}",
                       code="instance_not_in_error")
    failed = dict(instance.error or {})
    instance.state, instance.error = "running", None
    model = compiled(instance.version)
    if instance.engine_state in ("", "{}"):  # it failed before its first wait: start it again
        try:
            run = Run.start(model, rt.evaluator, instance.data or {},  # type: ignore[arg-type]
                            resolver=callee_resolver(session))
        except EngineError as exc:
            instances.record_error(instance, exc, now, engine_state="{}")
        else:
            run_step(session, rt, instance, model, run, Before(), None, now)
    else:
        model, run, before = load(rt, instance)
        run_step(session, rt, instance, model, run, before,
                 retry_failed if failed_elements(run) else (lambda r: r.advance()), now)
    audit(session, actor=actor, action="instance.retry", object_type="process_instance", object_id=instance.id,
          now=now, failed=failed, outcome=instance.state, error=instance.error)
    session.flush()
    return instance


def edit_data(session: Session, rt: Deployment, instance_id: str, changes: Mapping[str, Any], *, actor: str,
              now: datetime) -> ProcessInstance:
    """Change process data (admins): checked against the start form with the data it
    would leave, written where the run reads it next, audited with before and after."""
    instance = instances.lock_instance(session, instance_id)
    if instance.state in ("completed", "cancelled"):
        raise Conflict(f"the process instance is {instance.state}; its data is final", code="instance_ended")
    if not changes:
        raise Invalid("give at least one field to change", code="invalid_data", details={"data": ["is empty"]})
    merged = {**(instance.data or {}), **changes}
    instances.check_start_data(instance.version, compiled(instance.version), merged)
    before_values = {k: (instance.data or {}).get(k) for k in changes}
    if instance.engine_state in ("", "{}"):
        instance.data = instances.json_safe(merged)
    else:
        model, run, before = load(rt, instance)
        set_data(run, changes)
        state, error = instance.state, instance.error
        run_step(session, rt, instance, model, run, before, None, now)
        instance.state, instance.error = state, error  # an edit moves nothing on: a retry does
    audit(session, actor=actor, action="instance.data_edit", object_type="process_instance", object_id=instance.id,
          now=now, before=before_values, after=dict(changes))
    session.flush()
    return instance


@dataclass
class MigrationResult:
    process_instance_id: str
    from_version: int
    to_version: int
    possible: bool
    migrated: bool
    problems: list[dict[str, str]] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


def target_version(session: Session, instance: ProcessInstance, version: Any) -> ProcessModelVersion:
    """The version to migrate to: a version number of the instance's own model, or a version id."""
    query = select(ProcessModelVersion)
    if isinstance(version, int) and not isinstance(version, bool):
        found = session.scalar(query.where(ProcessModelVersion.process_model_id == instance.process_model_id,
                                           ProcessModelVersion.version == version))
    else:
        found = session.get(ProcessModelVersion, str(version))
    if found is None:
        raise NotFound(f"model {instance.process_model_id!r} has no version {version!r}", code="unknown_version")
    if found.process_model_id != instance.process_model_id:
        raise Invalid(f"version {version!r} belongs to model {found.process_model_id!r}, not to "
                      f"{instance.process_model_id!r}", code="other_model",
                      details={"version": ["is a version of another model"]})
    return found


def migrate_instance(session: Session, rt: Deployment, instance_id: str, version: Any, *, dry_run: bool,
                     actor: str, now: datetime) -> MigrationResult:
    """Move a running (or failed) instance to another version of its model; a dry run
    says whether it can move and why not, and changes nothing."""
    instance = instances.lock_instance(session, instance_id)
    target = target_version(session, instance, version)
    result = MigrationResult(instance.id, instance.version.version, target.version, False, False)
    if instance.state not in ("running", "error") or instance.engine_state in ("", "{}"):
        result.problems.append({"element_id": instance.process_model_id,
                                "problem": f"the instance is {instance.state}; only running work can move"})
        return result
    if target.id == instance.version_id:
        result.problems.append({"element_id": instance.process_model_id,
                                "problem": "the instance already runs this version"})
        return result
    _model, run, _before = load(rt, instance)
    target_model = compiled(target)
    try:
        plan: MigrationPlan = plan_migration(run, target_model)
    except EngineError as exc:
        result.problems.append({"element_id": exc.element_id or instance.process_model_id, "problem": exc.message})
        return result
    result.possible, result.problems, result.changed = plan.possible, plan.problems, plan.changed
    if dry_run or not plan.possible:
        return result
    state, error = instance.state, instance.error
    moved = migrate(run, target_model)
    kept = _keep_task_rows(session, instance.id, moved)
    instance.version_id, instance.version = target.id, target
    run_step(session, rt, instance, target_model, moved,
             Before(ready=kept, service_calls=frozenset(moved.started_service_task_ids())), None, now)
    if state == "error" and instance.state == "running":
        instance.state, instance.error = state, error  # still failed: a retry on the new version runs it
    result.migrated = True
    audit(session, actor=actor, action="instance.migrate", object_type="process_instance", object_id=instance.id,
          now=now, from_version=result.from_version, to_version=result.to_version, changed=result.changed)
    session.flush()
    return result


def _keep_task_rows(session: Session, instance_id: str, moved: Run) -> frozenset[str]:
    """Re-point open task rows at the re-predicted tasks of the same element, so that a
    stage keeps its row, its claim and its SLA clock across the migration. Returns the
    engine ids the rows now carry (a row whose element is gone keeps its old id and is
    closed by the step)."""
    ready = {t.engine_task_id: t.name for t in moved.ready_tasks()}
    taken: set[str] = set()
    ids: set[str] = set()
    for row in tasks.open_rows(session, instance_id):
        if row.engine_task_id in ready and row.engine_task_id not in taken:
            match: str | None = row.engine_task_id
        else:
            match = next((engine_id for engine_id, name in ready.items()
                          if name == row.name and engine_id not in taken), None)
        if match is not None:
            row.engine_task_id = match
            taken.add(match)
        ids.add(row.engine_task_id)
    return frozenset(ids)


def migrate_model_instances(session: Session, rt: Deployment, model_id: str, to_version: int, *,
                            from_version: int | None, dry_run: bool, actor: str, now: datetime,
                            limit: int = 500) -> list[MigrationResult]:
    """Migrate (or dry-run) every running or failed instance of a model, each on its own:
    one that cannot move is reported and the others go on."""
    query = (select(ProcessInstance.id).join(ProcessModelVersion, ProcessModelVersion.id == ProcessInstance.version_id)
             .where(ProcessInstance.process_model_id == model_id, ProcessInstance.state.in_(("running", "error")),
                    ProcessModelVersion.version != to_version))
    if from_version is not None:
        query = query.where(ProcessModelVersion.version == from_version)
    if session.scalar(select(ProcessModelVersion.id).where(ProcessModelVersion.process_model_id == model_id,
                                                           ProcessModelVersion.version == to_version)) is None:
        raise NotFound(f"model {model_id!r} has no version {to_version}", code="unknown_version")
    results = []
    for instance_id in session.scalars(query.order_by(ProcessInstance.created_at, ProcessInstance.id).limit(limit)):
        try:
            with session.begin_nested():  # one instance's failure undoes only its own changes
                results.append(migrate_instance(session, rt, instance_id, to_version, dry_run=dry_run,
                                                actor=actor, now=now))
        except (AppError, EngineError) as exc:
            message = exc.message
            results.append(MigrationResult(instance_id, 0, to_version, False, False,
                                           [{"element_id": getattr(exc, "element_id", None) or model_id,
                                             "problem": message}]))
    return results
