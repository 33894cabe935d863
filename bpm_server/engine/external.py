"""Service tasks that external workers do (Camunda 7 external tasks, Camunda 8 job workers).

A service task is an *external task* on topic T when it says so in any of the
three ways diagrams do:

- Camunda 7: ``camunda:type="external" camunda:topic="T"``;
- Camunda 8: ``<zeebe:taskDefinition type="T"/>`` in its extension elements
  (every Zeebe service task is done by a job worker of its type);
- ours: ``<spiffworkflow:serviceTaskOperator id="external/T"/>``.

The engine leaves such a task STARTED (like every service task); the server
hands it to workers that fetch and lock it over HTTP, and completes it with the
worker's variables.
"""
from __future__ import annotations

import re
from typing import Any

from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
ZEEBE_NS = "http://camunda.org/schema/zeebe/1.0"
EXTERNAL_PREFIX = "external/"
TOPIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")


def topic_of(operation_name: str | None) -> str | None:
    """The topic of an external task's operation name (``external/<topic>``), None for other calls."""
    if operation_name and operation_name.startswith(EXTERNAL_PREFIX):
        return operation_name[len(EXTERNAL_PREFIX):]
    return None


def _declared_topic(node: Any) -> tuple[str | None, str | None]:
    """(topic, the attribute that declared it) from the Camunda 7 or 8 markup of a service task."""
    if node.get(f"{{{CAMUNDA_NS}}}type") == "external":
        return (node.get(f"{{{CAMUNDA_NS}}}topic") or "").strip(), "camunda:topic"
    for definition in node.iter(f"{{{ZEEBE_NS}}}taskDefinition"):
        return (definition.get("type") or "").strip(), "zeebe:taskDefinition type"
    return None, None


class ExternalAwareServiceTaskParser(ServiceTaskParser):
    """Spiff's service task parser, plus the Camunda 7/8 ways of naming an external task."""

    def create_task(self) -> Any:
        topic, attribute = _declared_topic(self.node)
        if topic is None:
            spec = super().create_task()
            declared = topic_of(spec.operation_name)
            if declared is not None and not TOPIC.fullmatch(declared):
                raise ValidationException(f"external task topic {declared!r} must be letters, digits, "
                                          f"'_', '.', ':' or '-' (at most 200)", node=self.node,
                                          file_name=self.filename)
            return spec
        if not TOPIC.fullmatch(topic):
            raise ValidationException(f"the external task needs a topic in {attribute} (letters, digits, '_', "
                                      f"'.', ':' or '-'); found {topic!r}", node=self.node, file_name=self.filename)
        extensions = self.parse_extensions()
        return self.spec_class(self.spec, self.bpmn_id, operation_name=EXTERNAL_PREFIX + topic, operation_params={},
                               result_variable=None, prescript=extensions.get("preScript"),
                               postscript=extensions.get("postScript"), **self.bpmn_attributes)
