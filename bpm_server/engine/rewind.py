"""Taking a run back to an earlier human task (退回, 撤回): SpiffWorkflow's
``reset_from_task_id`` makes that task ready again with the data it had when it
was completed, and drops everything that came after it (open stages of other
branches included)."""
from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from SpiffWorkflow.exceptions import SpiffWorkflowException, TaskNotFoundException
from SpiffWorkflow.util.task import TaskState

from bpm_server.engine.run import EngineError, Run, _engine_error


def rewindable(run: Run, engine_task_ids: Iterable[str]) -> str | None:
    """The first of ``engine_task_ids`` (newest first) still in the run as a completed
    task, or None: an earlier send-back may have dropped the task a stage ran as."""
    for engine_id in engine_task_ids:
        try:
            task = run.workflow.get_task_from_id(UUID(engine_id))
        except (TaskNotFoundException, ValueError):
            continue
        if task.state == TaskState.COMPLETED and task.task_spec.manual:
            return engine_id
    return None


def rewind(run: Run, engine_task_id: str) -> None:
    """Make the completed human task ``engine_task_id`` ready again, then move on
    (nothing else runs: a ready human task waits for its person)."""
    try:
        run.workflow.reset_from_task_id(UUID(engine_task_id))
    except SpiffWorkflowException as exc:
        raise _engine_error(exc) from None
    except (KeyError, ValueError) as exc:
        raise EngineError(f"the run cannot go back to task {engine_task_id}: {exc}") from None
    run.advance()
