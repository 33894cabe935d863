"""Deciding with one DMN table outside a process: the account rules.

Account rules are DMN decision tables evaluated against an account's facts
(no workflow is running when a signal arrives), so the table is parsed by
SpiffWorkflow's DMN parser and run by its ``DMNEngine`` on a stand-in task
whose data are the facts. Every expression runs in the same sandbox as a
diagram's (``RestrictedEvaluator``). The upload checks are ``dmn``'s.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.dmn.parser.BpmnDmnParser import BpmnDmnParser

from bpm_server.engine.compiler import BpmnInvalid, Problem
from bpm_server.engine.dmn import checked_dmn_root, dmn_problems
from bpm_server.engine.run import _SandboxEnvironment
from bpm_server.engine.sandbox import RestrictedEvaluator, ScriptError


class DecisionFailed(Exception):
    """A table could not be evaluated against these facts (names the table and the reason)."""


@dataclass(frozen=True)
class Table:
    """A checked decision table: its decision id and name, input expressions and output names."""

    decision_id: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    output_entries: tuple[tuple[str | None, ...], ...]  # per rule, the raw output cells
    xml: bytes


def check_table(name: str, xml: bytes) -> Table:
    """The table of one DMN file, or ``BpmnInvalid`` listing every problem."""
    root = checked_dmn_root(name, xml)
    problems = dmn_problems(name, root)
    if problems:
        raise BpmnInvalid(problems)
    ns = etree.QName(root).namespace
    decision = root.find(f"{{{ns}}}decision")
    assert decision is not None  # dmn_problems refuses a file without one
    table = decision.find(f"{{{ns}}}decisionTable")
    assert table is not None

    def text(element: etree._Element | None) -> str | None:
        node = element.find(f"{{{ns}}}text") if element is not None else None
        return (node.text or "").strip() or None if node is not None else None

    inputs = tuple(text(i.find(f"{{{ns}}}inputExpression")) or "" for i in table.findall(f"{{{ns}}}input"))
    outputs = tuple(o.get("name") or "" for o in table.findall(f"{{{ns}}}output"))
    entries = tuple(tuple(text(e) for e in rule.findall(f"{{{ns}}}outputEntry"))
                    for rule in table.findall(f"{{{ns}}}rule"))
    if not entries:
        raise BpmnInvalid([Problem(table.get("id"), f"DMN file {name}: the decision table has no rule")])
    return Table(decision.get("id") or "", decision.get("name") or "", inputs, outputs, entries, xml)


class _Workflow:
    def __init__(self, engine: PythonScriptEngine) -> None:
        self.script_engine = engine


class _FactsTask:
    """What ``DMNEngine`` reads of a task: its data and its workflow's script engine."""

    def __init__(self, facts: Mapping[str, Any], engine: PythonScriptEngine) -> None:
        self.data = dict(facts)
        self.workflow = _Workflow(engine)


def decide(table: Table, facts: Mapping[str, Any], evaluator: RestrictedEvaluator) -> list[dict[str, Any]]:
    """The outputs of every rule that matches ``facts`` (one dict per rule; none when nothing matches)."""
    parser = BpmnDmnParser()
    parser.add_dmn_xml(etree.fromstring(table.xml))
    engine = parser.get_engine(table.decision_id, None)
    task = _FactsTask(facts, PythonScriptEngine(environment=_SandboxEnvironment(evaluator)))
    try:
        rules = engine.decide(task)
        return [rule.output_as_dict(task) for rule in rules]
    except Exception as exc:  # a rule's expression failing on these facts, whatever it raised
        # SpiffWorkflow wraps a failing cell in an exception that wants a real task;
        # report the innermost cause, which names the expression.
        cause: BaseException = exc
        while cause.__context__ is not None and not isinstance(cause, ScriptError):
            cause = cause.__context__
        raise DecisionFailed(f"decision {table.decision_id!r}: {cause}") from exc


def input_values(table: Table, facts: Mapping[str, Any], evaluator: RestrictedEvaluator) -> list[Any]:
    """Each input expression's value for these facts: what a firing is remembered by."""
    try:
        return [evaluator.evaluate(expression, facts) for expression in table.inputs]
    except ScriptError as exc:
        raise DecisionFailed(f"decision {table.decision_id!r}: {exc}") from exc


__all__ = ["DecisionFailed", "Table", "check_table", "decide", "input_values"]
