"""What an operator does to a run, beside moving it on: retry what failed, edit its
data, move it to another version of its model (SpiffWorkflow 3.2's ``diff``
module), and list what it waits on.

Kept beside ``run`` (which only starts, loads, steps and dumps runs) so the
engine's own failure modes stay in one place: every SpiffWorkflow exception is
turned into ``EngineError`` naming the element.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState

from bpm_server.engine.compiler import CompiledModel
from bpm_server.engine.run import EngineError, Run, _engine_error, _serializers

#: Task states an operation must not leave dangling on a removed element.
_ACTIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR


def failed_elements(run: Run) -> list[str]:
    """The element ids of the tasks that failed (state ERROR)."""
    return sorted({t.task_spec.name for t in run.workflow.get_tasks(state=TaskState.ERROR)})


def retry_failed(run: Run) -> None:
    """Run the failed tasks again (a script fixed by a data edit or a new version), then move on."""
    failed = list(run.workflow.get_tasks(state=TaskState.ERROR))
    if not failed:
        raise EngineError("no task of this run failed; there is nothing to retry")
    try:
        for task in failed:
            # Back to READY with the data it had: the engine then runs it as it first did.
            task._set_state(TaskState.READY)
    except SpiffWorkflowException as exc:
        raise _engine_error(exc) from None
    run.advance()


def set_data(run: Run, changes: Mapping[str, Any]) -> None:
    """Change process data where the run will read it next: on every task not finished
    yet (ready, waiting, failed, predicted) and on the last finished one."""
    values = json.loads(json.dumps(dict(changes)))
    touched = list(run.workflow.get_tasks(state=TaskState.NOT_FINISHED_MASK | TaskState.ERROR))
    if run.workflow.last_task is not None:
        touched.append(run.workflow.last_task)
    for task in touched:
        task.data.update(values)


@dataclass(frozen=True)
class MigrationPlan:
    """Whether a run can move to another version, and if not, why (per element)."""

    possible: bool
    problems: list[dict[str, str]] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # elements of open tasks whose definition changed


def plan_migration(run: Run, target: CompiledModel) -> MigrationPlan:
    """Diff the run against ``target``. A run cannot move while a task it has open
    (ready, waiting, running, failed) is on an element the target no longer has:
    SpiffWorkflow would carry the removed element on and run it anyway (G15)."""
    if target.process_id != run.model.process_id:
        return MigrationPlan(False, [{"element_id": target.process_id,
                                      "problem": f"the target runs process {target.process_id!r}, "
                                                 f"this instance runs {run.model.process_id!r}"}])
    try:
        top, subprocess_diffs = diff_workflow(_serializers.serializer.registry, run.workflow, target.spec,
                                              target.subprocess_specs)
    except SpiffWorkflowException as exc:
        raise _engine_error(exc) from None
    except (KeyError, AttributeError, TypeError) as exc:  # SpiffWorkflow's own failures on odd diagrams
        raise EngineError(f"the versions cannot be compared: {exc}") from None
    problems = [{"element_id": t.task_spec.name,
                 "problem": f"the instance has {TaskState.get_name(t.state).lower()} work on "
                            f"{t.task_spec.bpmn_name or t.task_spec.name!r}, which the target version removed"}
                for t in top.removed if t.state & _ACTIVE]
    for sub_id, sub_diff in subprocess_diffs.items():
        sub = run.workflow.subprocesses[sub_id]
        if sub_diff is None and not sub.is_completed():
            problems.append({"element_id": sub.spec.name,
                             "problem": f"the target version no longer has the subprocess {sub.spec.name!r}"})
        elif sub_diff is not None:
            problems.extend({"element_id": t.task_spec.name,
                             "problem": f"open work on {t.task_spec.name!r}, removed in the target version"}
                            for t in sub_diff.removed if t.state & _ACTIVE)
    changed = sorted({t.task_spec.name for t in top.changed if t.state & _ACTIVE})
    return MigrationPlan(not problems, problems, changed)


def migrate(run: Run, target: CompiledModel) -> Run:
    """Move the run onto ``target`` (check ``plan_migration`` first). Returns the run on
    the new model; its ready tasks are re-predicted, so their engine ids change: the
    caller maps its task rows by element id."""
    try:
        top, subprocess_diffs = diff_workflow(_serializers.serializer.registry, run.workflow, target.spec,
                                              target.subprocess_specs)
        migrate_workflow(top, run.workflow, target.spec)
        for sub_id, sub_diff in subprocess_diffs.items():
            sub = run.workflow.subprocesses[sub_id]
            if sub_diff is not None:
                migrate_workflow(sub_diff, sub, target.subprocess_specs[sub.spec.name])
        run.workflow.subprocess_specs = target.subprocess_specs
    except SpiffWorkflowException as exc:
        raise _engine_error(exc) from None
    moved = Run(target, run.workflow, budgets=run.budgets)
    # Never equal to what the step ends with: the subscription rows are rewritten,
    # since the waits were re-predicted under new engine ids.
    moved.message_waits_at_load = frozenset({"(migrated)"})
    moved.advance()
    return moved
