"""The yardstick for the compatibility table: does SpiffWorkflow 3.2 alone run a diagram to completion?

Each of SpiffWorkflow's own parsers (plain BPMN, Camunda, Spiff) is tried with
its default script engine, the way the library's own users run diagrams: user
and manual tasks are completed with empty data, due timers are made due at
once, nothing else is sent in. The server should complete every diagram one of
these completes (tests/engine/test_corpus.py). Third-party scripts run here,
so callers run this in a child process with a time limit (``bpm_server.corpus``).
"""
from __future__ import annotations

from io import BytesIO

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from bpm_server.engine.compiler import BPMN_NS, _safe_xml

MAX_ROUNDS = 200
_PAST = "2000-01-01T00:00:00+00:00"


def spiff_completes(xml: bytes) -> str | None:
    """The name of the first SpiffWorkflow parser whose run completes the diagram, else None."""
    try:
        root = _safe_xml(xml)
    except etree.XMLSyntaxError:
        return None
    executable = [p.get("id") for p in root.iter(f"{{{BPMN_NS}}}process") if p.get("isExecutable") == "true"]
    for name, parser_class in (("bpmn", BpmnParser), ("camunda", CamundaParser), ("spiff", SpiffBpmnParser)):
        for process_id in executable:
            try:
                if _completes(parser_class, xml, process_id):
                    return name
            except Exception:  # any failure of the library: "does not complete"
                continue
    return None


def _completes(parser_class: type, xml: bytes, process_id: str | None) -> bool:
    parser = parser_class()
    parser.add_bpmn_io(BytesIO(xml), "corpus.bpmn")
    workflow = BpmnWorkflow(parser.get_spec(process_id), parser.get_subprocess_specs(process_id))
    for _round in range(MAX_ROUNDS):
        workflow.refresh_timers()
        workflow.do_engine_steps()
        if workflow.is_completed():
            return True
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        if ready:
            for task in ready:
                task.run()
            continue
        timers = [t for t in workflow.get_tasks(state=TaskState.WAITING)
                  if isinstance(getattr(t.task_spec, "event_definition", None), TimerEventDefinition)
                  and isinstance(t.internal_data.get("event_value"), str)]
        if not timers:
            return False
        for task in timers:  # "move the clock": every waiting timer is due now
            task.internal_data["event_value"] = _PAST
    return False
