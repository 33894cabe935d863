"""Diagrams drawn for other engines (Camunda 7 ``camunda:``, Camunda 8 ``zeebe:``), rewritten
into what our parser reads, or refused naming the element and the attribute.

``translate`` works on the parsed XML tree before SpiffWorkflow's parser sees
it: expressions become Python (``expressions``), timer literals quoted strings
(``timers``), assignments and forms ``spiffworkflow:property`` entries, input
and output mappings pre- and post-scripts. What cannot be carried over without
changing its meaning (Java delegates, listeners, untranslatable expressions,
attributes we do not know) is a problem; the upload is then refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from bpm_server.engine.dialects import camunda, zeebe
from bpm_server.engine.dialects.common import (
    BPMN,
    CAMUNDA,
    ZEEBE,
    Found,
    local,
)
from bpm_server.engine.dialects.cron import CronTimerEventDefinition, literal_cron
from bpm_server.engine.dialects.expressions import Untranslatable, feel_to_python, is_feel, is_juel, juel_to_python
from bpm_server.engine.dialects.timers import TimerProblem
from bpm_server.engine.dialects.timers import to_python as timer_to_python

__all__ = ["Translation", "swap_cron_timers", "translate"]

_EXPRESSION_TAGS = {"conditionExpression", "completionCondition", "loopCardinality", "condition"}
_TIMER_TAGS = {"timeDuration", "timeDate", "timeCycle"}


@dataclass
class Translation:
    problems: list[tuple[str | None, str, int | None]] = field(default_factory=list)
    forms: dict[str, dict[str, Any]] = field(default_factory=dict)  # generated form name -> JSON Schema
    service_types: dict[str, str] = field(default_factory=dict)  # service task id -> external task type/topic


def translate(root: etree._Element) -> Translation:
    """Rewrite the dialects of a diagram in place; what could not be carried over is listed in ``problems``."""
    found = Found()
    for node in list(root.iter(etree.Element)):
        tag = node.tag if isinstance(node.tag, str) else ""
        if tag.startswith(f"{{{BPMN}}}"):
            _standard(node, found)
            camunda.element(node, found)
        elif tag.startswith(f"{{{CAMUNDA}}}"):
            camunda.extension(node, found)
        elif tag.startswith(f"{{{ZEEBE}}}"):
            zeebe.extension(node, found)
    return Translation(found.problems, found.forms, found.service_types)


def _standard(node: etree._Element, found: Found) -> None:
    """BPMN expressions and timers, whatever dialect they are written in."""
    name = local(node)
    if name not in _EXPRESSION_TAGS | _TIMER_TAGS or node.text is None or not node.text.strip():
        return
    language = (node.get("language") or "").lower()
    if language and not any(word in language for word in ("python", "juel", "feel")):
        found.problem(node, f"{name} is written in {node.get('language')!r}; only Python, JUEL and FEEL "
                            f"expressions can run here")
        return
    if node.get(f"{{{CAMUNDA}}}resource"):
        found.problem(node, f"{name} reads its expression from an external resource (camunda:resource)")
        return
    text = node.text
    try:
        if name in _TIMER_TAGS:
            node.text = timer_to_python(name, text)
        elif is_feel(text):
            node.text = feel_to_python(text)
        elif is_juel(text):
            node.text = juel_to_python(text)
    except (Untranslatable, TimerProblem) as exc:
        found.problem(node, f"cannot translate {name} {text.strip()!r}: {exc}")


def swap_cron_timers(task_specs: list[Any]) -> None:
    """Cycle timers whose text is a cron expression run as ``CronTimerEventDefinition``."""
    for spec in task_specs:
        event = getattr(spec, "event_definition", None)
        expression = getattr(event, "expression", None)
        if (event is not None and type(event).__name__ == "CycleTimerEventDefinition" and isinstance(expression, str)
                and literal_cron(expression)):
            spec.event_definition = CronTimerEventDefinition(event.name, expression,
                                                             description=event.description)
