"""Compiling BPMN: from uploaded XML to a ``CompiledModel`` or a list of problems.

The XML is checked first (size, no DTD or entities, a BPMN root, an executable
process), then parsed with the Spiff parser; every script and expression of the
diagram is checked by the sandbox before the model is accepted. A model is
compiled once per model version and its spec injected when a run is loaded
(see ``bpm_server.engine.run``).
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import CallActivity
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import CallActivityParser
from SpiffWorkflow.spiff.specs.defaults import CallActivity as SpiffCallActivity
from SpiffWorkflow.spiff.specs.defaults import ServiceTask as SpiffServiceTask
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition

from bpm_server.engine.dialects import swap_cron_timers, translate
from bpm_server.engine.dialects.checks import more_expressions
from bpm_server.engine.external import ExternalAwareServiceTaskParser, topic_of
from bpm_server.engine.sandbox import RestrictedEvaluator, ScriptError

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
MAX_BPMN_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a diagram, tied to the BPMN element at fault when known."""

    element_id: str | None
    message: str
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"element_id": self.element_id, "message": self.message, "line": self.line}


class BpmnInvalid(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.element_id or 'diagram'}: {p.message}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class HumanTaskSpec:
    name: str  # the BPMN element id
    title: str
    lane: str | None
    properties: Mapping[str, str]
    instructions: str | None


@dataclass
class CompiledModel:
    process_id: str
    spec: Any
    subprocess_specs: dict[str, Any]
    human_tasks: dict[str, HumanTaskSpec]
    scripts: list[tuple[str, str, str]] = field(default_factory=list)  # (element id, source, "exec"/"eval")
    start_properties: dict[str, str] = field(default_factory=dict)  # of the none start event (its form)
    # Whether any element waits on a timer / a message: lets the server skip
    # looking for timer and subscription rows of models that can have none.
    has_timer_events: bool = True
    has_message_events: bool = True
    # Forms written inside the diagram (Camunda formData), by the name their task's property gives.
    generated_forms: dict[str, Any] = field(default_factory=dict)
    # Service tasks that name an external task type (zeebe:taskDefinition, camunda:type="external").
    service_types: dict[str, str] = field(default_factory=dict)
    # Processes of other models the call activities call (process id -> call activity ids),
    # resolved to the callee's current version when the call starts.
    external_calls: dict[str, list[str]] = field(default_factory=dict)
    # Service task element id -> (operation name, parameter expressions): what the upload checks
    # against the deployment's connectors.
    service_tasks: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)

    def including(self, callee: CompiledModel) -> CompiledModel:
        """This model with a called model's human tasks (its own win on a name clash) and events known too."""
        return replace(self, human_tasks={**callee.human_tasks, **self.human_tasks},
                       has_timer_events=self.has_timer_events or callee.has_timer_events,
                       has_message_events=self.has_message_events or callee.has_message_events)


# --------------------------------------------------------------------------- service tasks


class _ExternalServiceTask(SpiffServiceTask):
    """A Spiff service task that does not call out from inside the engine.

    SpiffWorkflow would call the service synchronously during ``do_engine_steps``
    (with the instance locked and no retries). Returning None instead leaves the
    task STARTED: the server calls the system from a job, with retries, and
    completes the task with the answer (the external-task pattern).
    """

    def _execute(self, task: Any) -> None:
        return None


class _ModelCallActivity(SpiffCallActivity):
    """A call activity that can call the entry process of another model.

    Such a process is not in the model's specs: the run's resolver (set on the
    top workflow as ``bpm_resolve_call`` by ``Run``) finds the callee model's
    current version when the call starts, and its specs join the run's."""

    def start_workflow(self, my_task: Any) -> None:
        top = my_task.workflow.top_workflow
        resolve = getattr(top, "bpm_resolve_call", None)
        if self.spec not in top.subprocess_specs and resolve is not None:
            for name, spec in resolve(self.spec).items():
                top.subprocess_specs.setdefault(name, spec)
        super().start_workflow(my_task)


class _Parser(SpiffBpmnParser):
    OVERRIDE_PARSER_CLASSES = {**SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,  # noqa: RUF012 - SpiffWorkflow's class table
                               full_tag("serviceTask"): (ExternalAwareServiceTaskParser, _ExternalServiceTask),
                               full_tag("callActivity"): (CallActivityParser, _ModelCallActivity)}


# --------------------------------------------------------------------------- parsing


MAX_PROLOG_BYTES = 64 * 1024
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
DOCTYPE_REFUSED = ("the diagram contains a DOCTYPE declaration; DTDs and entity declarations are not allowed "
                   "in BPMN uploads (they can read server files)")


def _safe_xml(xml: bytes) -> etree._Element:
    # No entity expansion, no DTD, no network: a diagram must not read files (XXE).
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True)
    return etree.fromstring(xml, parser)


def compile_bpmn(xml: bytes, entry_process: str | None = None, other_models: Collection[str] = ()) -> CompiledModel:
    """Parse and check a diagram; raise ``BpmnInvalid`` listing every problem found."""
    return compile_parsed([("upload.bpmn", checked_bpmn_root(xml))], entry_process, (), other_models)


def checked_bpmn_root(xml: bytes) -> etree._Element:
    """One BPMN file's root element, after the checks every uploaded file passes (size, no DTD, a BPMN root)."""
    if len(xml) > MAX_BPMN_BYTES:
        raise BpmnInvalid([Problem(None, f"the diagram is larger than {MAX_BPMN_BYTES // (1024 * 1024)} MB")])
    try:
        root = _safe_xml(xml)
    except etree.XMLSyntaxError as exc:
        if _DOCTYPE.search(xml[:MAX_PROLOG_BYTES]):
            raise BpmnInvalid([Problem(None, DOCTYPE_REFUSED)]) from None
        raise BpmnInvalid([Problem(None, f"malformed XML: {exc.msg}", exc.lineno)]) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        # Even unexpanded, a stored entity would reach every tool that later
        # downloads the diagram; BPMN never needs a DTD.
        raise BpmnInvalid([Problem(None, DOCTYPE_REFUSED)])
    if root.tag != f"{{{BPMN_NS}}}definitions":
        raise BpmnInvalid([Problem(None, f"not a BPMN 2.0 document: the root element is {root.tag!r}, "
                                         f"expected bpmn:definitions in namespace {BPMN_NS}")])
    return root


def compile_parsed(roots: Sequence[tuple[str, etree._Element]], entry_process: str | None = None,
                   dmn_roots: Sequence[tuple[str, etree._Element]] = (),
                   other_models: Collection[str] = ()) -> CompiledModel:
    """Build and check a model from checked BPMN roots (file name, root; the first holds the entry
    process) and DMN roots.

    Call activities reach processes of any of the roots (a multi-file model,
    see ``bpm_server.engine.packages``) and the entry processes of ``other_models``."""
    root = roots[0][1]
    executable = [p.get("id", "") for p in root.iter(f"{{{BPMN_NS}}}process") if p.get("isExecutable") == "true"]
    if not executable:
        raise BpmnInvalid([Problem(None, "the diagram has no executable process (isExecutable=\"true\")")])
    process_id = entry_process or executable[0]
    if entry_process and entry_process not in executable:
        raise BpmnInvalid([Problem(entry_process, f"entry process {entry_process!r} is not an executable process "
                                                  f"in this diagram (found: {', '.join(executable)})")])
    dangling = [problem for _name, each in roots for problem in _dangling_event_refs(each)]
    if dangling:
        raise BpmnInvalid(dangling)
    # Every file's dialects (Camunda 7/8) rewritten before SpiffWorkflow parses it.
    forms: dict[str, Any] = {}
    service_types: dict[str, str] = {}
    for name, each in roots:
        translation = translate(each)
        if translation.problems:
            where = f"{name}: " if len(roots) > 1 else ""
            raise BpmnInvalid([Problem(element, where + message, line)
                               for element, message, line in translation.problems])
        forms.update(translation.forms)
        service_types.update(translation.service_types)
    parser = _Parser(validator=VALIDATOR)
    try:
        for name, each in roots:
            parser.add_bpmn_xml(etree.ElementTree(each), filename=name)
        for name, each in dmn_roots:
            parser.add_dmn_xml(each, filename=name)
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id, require_call_activity_specs=False)
    except ValidationException as exc:
        raise BpmnInvalid([Problem(exc.id or None, _plain(_first_line(exc)), exc.line_number or None)]) from None
    except (SpiffWorkflowException, KeyError, AttributeError, TypeError, ValueError) as exc:
        raise BpmnInvalid([Problem(getattr(exc, "id", None), f"cannot build the process: {exc}")]) from None
    external = {name for name, found in subprocess_specs.items() if found is None and name in other_models}
    subprocess_specs = {name: found for name, found in subprocess_specs.items() if name not in external}
    missing = sorted(name for name, found in subprocess_specs.items() if found is None)
    if missing:
        known = ", ".join(sorted(parser.get_process_ids()))
        raise BpmnInvalid([Problem(t.bpmn_id or t.name, f"the call activity calls process {t.spec!r}, which is "
                                                       f"not in the model's files (processes found: {known}) "
                                                       f"nor the entry process of another model")
                           for each in [spec, *(s for s in subprocess_specs.values() if s is not None)]
                           for t in each.task_specs.values()
                           if isinstance(t, CallActivity) and t.spec in missing])

    model = CompiledModel(process_id, spec, subprocess_specs, {}, [], generated_forms=forms,
                          service_types=service_types)
    swap_cron_timers(_all_task_specs(model))
    for each in [spec, *subprocess_specs.values()]:
        for task_spec in each.task_specs.values():
            if isinstance(task_spec, CallActivity) and task_spec.spec in external:
                model.external_calls.setdefault(task_spec.spec, []).append(task_spec.bpmn_id or task_spec.name)
    timers = messages = False
    for task_spec in _all_task_specs(model):
        if getattr(task_spec, "manual", False):
            ext = task_spec.extensions or {}
            # Keyed by the BPMN element: a multi-instance child's spec is named "x [child]",
            # but each of its tasks is a stage of element x (会签 / 或签).
            element = getattr(task_spec, "bpmn_id", None) or task_spec.name
            model.human_tasks[element] = HumanTaskSpec(
                name=element, title=task_spec.bpmn_name or element, lane=task_spec.lane,
                properties=dict(ext.get("properties") or {}), instructions=ext.get("instructionsForEndUser"))
        model.scripts.extend(_scripts_of(task_spec))
        model.scripts.extend(more_expressions(task_spec))
        if isinstance(task_spec, _ExternalServiceTask):
            model.service_tasks[getattr(task_spec, "bpmn_id", None) or task_spec.name] = (
                task_spec.operation_name or "", {name: str(p.get("value") or "") for name, p in
                                                 (task_spec.operation_params or {}).items() if isinstance(p, dict)})
        definitions = _event_definitions(getattr(task_spec, "event_definition", None))
        timers = timers or any(isinstance(d, TimerEventDefinition) for d in definitions)
        messages = messages or any(isinstance(d, MessageEventDefinition) for d in definitions)
        if type(task_spec).__name__ == "StartEvent" and task_spec in model.spec.task_specs.values():
            model.start_properties.update((task_spec.extensions or {}).get("properties") or {})
    problems = [Problem(element, f"script error: {exc.message}", exc.line)
                for element, source, mode in model.scripts
                for exc in _check_script(source, mode)]
    problems += _call_cycles(model)
    problems += [Problem(spec.name, f"service task operator {spec.operation_name!r} must be "
                                    f"'<system>.<operation>', e.g. 'erp.request_invoice'")
                 for spec in _all_task_specs(model) if isinstance(spec, _ExternalServiceTask)
                 and spec.name not in model.service_types
                 and topic_of(spec.operation_name) is None and not (spec.operation_name or "").startswith("http/")
                 and not re.fullmatch(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*", spec.operation_name or "")]
    if problems:
        raise BpmnInvalid(problems)
    model.has_timer_events, model.has_message_events = timers, messages
    return model


_REFERENCED = (("message", "messageRef"), ("signal", "signalRef"), ("error", "errorRef"),
               ("escalation", "escalationRef"))


def _dangling_event_refs(root: etree._Element) -> list[Problem]:
    """Event definitions whose message/signal/error/escalation is not defined exactly once.
    Checked before SpiffWorkflow's parser, whose own report of this fails with a TypeError.
    A reference written as a QName of the diagram's own target namespace is resolved in place."""
    problems = []
    for kind, attribute in _REFERENCED:
        defined = Counter(e.get("id") for e in root.iter(f"{{{BPMN_NS}}}{kind}"))
        for definition in root.iter(f"{{{BPMN_NS}}}{kind}EventDefinition"):
            ref = definition.get(attribute)
            if not ref or defined[ref] == 1:
                continue
            owner = definition.getparent()
            prefix, local = ref.split(":", 1) if ":" in ref else (None, None)  # ids have no colon: a QName
            if local and defined[local] == 1 and definition.nsmap.get(prefix) == root.get("targetNamespace"):
                # A QName in the diagram's own namespace (Trisotech and others write them) names
                # that id; SpiffWorkflow looks up plain ids only, so the reference is rewritten.
                definition.set(attribute, local)
                continue
            if local and defined[local] == 1:
                message = (f"the {kind} event refers to {kind} {ref!r} by a prefixed name; this engine resolves "
                           f"plain ids only: write {attribute}=\"{local}\"")
            else:
                where = "is not defined in the diagram" if not defined[ref] else f"is defined {defined[ref]} times"
                message = (f"the {kind} event refers to {kind} {ref!r}, which {where} "
                           f"(add one bpmn:{kind} with id {ref!r}, or pick an existing one)")
            problems.append(Problem(owner.get("id") if owner is not None else None, message, definition.sourceline))
    return problems


def _call_cycles(model: CompiledModel) -> list[Problem]:
    """Call activities that call a process already being run above them (itself, or a caller).

    Such a process would start itself again and again; at run time the call-depth
    budget stops it, but it is visible here, so the upload is refused naming the
    call activity that closes the cycle.
    """
    processes = {model.process_id: model.spec, **model.subprocess_specs}
    calls: dict[str, list[tuple[str, str]]] = {}  # process id -> [(call activity id, called process id)]
    for pid, spec in processes.items():
        calls[pid] = [(getattr(t, "bpmn_id", None) or t.name, t.spec) for t in spec.task_specs.values()
                      if isinstance(t, CallActivity) and isinstance(getattr(t, "spec", None), str)]
    problems: list[Problem] = []
    reported: set[str] = set()

    def visit(pid: str, path: list[str]) -> None:
        for element, called in calls.get(pid, []):
            if called in path:
                if element not in reported:
                    reported.add(element)
                    cycle = " -> ".join([*path[path.index(called):], called])
                    problems.append(Problem(element, f"the call activity calls process {called!r}, which is "
                                                     f"already running it ({cycle}): the calls would never end"))
            elif called in calls:
                visit(called, [*path, called])

    visit(model.process_id, [model.process_id])
    return problems


def _event_definitions(definition: Any) -> list[Any]:
    """An element's event definitions, those inside a multiple/parallel-multiple definition included."""
    if definition is None:
        return []
    nested = getattr(definition, "event_definitions", None) or []
    return [definition, *(d for inner in nested for d in _event_definitions(inner))]


# SpiffWorkflow's parser messages that a process owner could not act on, said in their words.
_PLAIN = (
    (re.compile(r"^A Service Task must have an operator\.?$"),
     "the service task calls no system: name a declared connector system (spiffworkflow:serviceTaskOperator) "
     "or make it an external task (camunda:type=\"external\" with a topic)"),
    (re.compile(r"^Time Specification Error\. Unknown Time Specification"),
     "the timer has no time: give it a timeDate, timeDuration or timeCycle"),
    (re.compile(r"^Data Store with name (?P<name>.+) has no implementation\.?$"),
     "data store {name!r} cannot be read or written here (no data store of that name is implemented): "
     "remove its data associations or keep the data in process variables"),
)


def _plain(message: str) -> str:
    for pattern, plain in _PLAIN:
        match = pattern.match(message.strip())
        if match:
            return plain.format(**match.groupdict())
    return message


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__


def _all_task_specs(model: CompiledModel) -> list[Any]:
    specs = list(model.spec.task_specs.values())
    for sub in model.subprocess_specs.values():
        specs.extend(sub.task_specs.values())
    return specs


def _scripts_of(task_spec: Any) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    element = getattr(task_spec, "bpmn_id", None) or task_spec.name
    if isinstance(getattr(task_spec, "script", None), str):
        found.append((element, task_spec.script, "exec"))
    for attr in ("prescript", "postscript"):
        if getattr(task_spec, attr, None):
            found.append((element, getattr(task_spec, attr), "exec"))
    for condition, _target in getattr(task_spec, "cond_task_specs", []) or []:
        if isinstance(condition, str):
            found.append((element, condition, "eval"))
    event = getattr(task_spec, "event_definition", None)
    expression = getattr(event, "expression", None)
    if isinstance(expression, str):
        found.append((element, expression, "eval"))
    for param in (getattr(task_spec, "operation_params", None) or {}).values():
        if isinstance(param, dict) and isinstance(param.get("value"), str):
            found.append((element, param["value"], "eval"))
    for prop in getattr(event, "correlation_properties", None) or []:
        if isinstance(prop.retrieval_expression, str):
            found.append((element, prop.retrieval_expression, "eval"))
    return found


def _check_script(source: str, mode: str) -> list[ScriptError]:
    try:
        _evaluator_for_checks.check(source, mode)  # type: ignore[arg-type]
    except ScriptError as exc:
        return [exc]
    return []


_evaluator_for_checks = RestrictedEvaluator()
