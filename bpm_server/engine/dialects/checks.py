"""Expressions of a parsed diagram that the compiler's own list of scripts leaves out:
gateway conditions (SpiffWorkflow wraps them in condition objects), multi-instance
cardinalities and completion conditions, standard-loop conditions. The sandbox
checks each at upload, so a diagram that uploads does not fail on one later."""
from __future__ import annotations

from typing import Any


def more_expressions(task_spec: Any) -> list[tuple[str, str, str]]:
    element = getattr(task_spec, "bpmn_id", None) or task_spec.name
    found: list[tuple[str, str, str]] = []
    for condition, _target in getattr(task_spec, "cond_task_specs", None) or []:
        args = getattr(condition, "args", None)
        if args and isinstance(args[0], str):
            found.append((element, args[0], "eval"))
    for attr in ("cardinality", "condition"):
        value = getattr(task_spec, attr, None)
        if isinstance(value, str) and value.strip():
            found.append((element, value, "eval"))
    return found
