"""The engine adapter: the only code in the server that imports SpiffWorkflow.

It turns BPMN XML into a ``CompiledModel`` (or a list of problems per BPMN
element), starts and resumes workflow runs, lists the human tasks that are
ready, completes them with form data and dumps the state as JSON without the
spec (the spec is compiled once per model version and injected on load; see
shared/notes/design-invariants.md).

SpiffWorkflow gotchas handled here (numbers from shared/notes/spiffworkflow-3.2-probe.md):
G1 deep loops stall silently -> ``_check_depth``; G2/G9 scripts are Python ->
the RestrictedPython sandbox; G5 parser/serializer families must match ->
Spiff parser with SPIFF_CONFIG everywhere; G7 timers refresh after the run
loop -> ``advance`` refreshes first; G8 no clock seam -> ``use_clock``;
G14 the serializer is not thread-safe -> one per thread.
"""
from __future__ import annotations

import re

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.event_definitions import timer as timer_module
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.spiff.specs.defaults import ServiceTask as SpiffServiceTask
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from bpm_server.engine.sandbox import RestrictedEvaluator, ScriptError

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
# Above this depth SpiffWorkflow's task iterator stops seeing tasks (G1).
MAX_TASK_DEPTH = 900
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


class EngineError(Exception):
    """The workflow could not move on (a script failed, no gateway condition matched, ...)."""

    def __init__(self, message: str, element_id: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.element_id = element_id
        self.line = line


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


@dataclass(frozen=True)
class ReadyTask:
    engine_task_id: str
    name: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ServiceCall:
    """A service task waiting for the server to call an external system (``<system>.<operation>``)."""

    engine_task_id: str
    element_id: str
    operation: str
    params: dict[str, Any]


@dataclass(frozen=True)
class WaitingMessage:
    """A message catch event (or receive task) the instance waits on, with the correlation it expects."""

    engine_task_id: str
    element_id: str
    name: str
    correlation: dict[str, Any]


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


class _Parser(SpiffBpmnParser):
    OVERRIDE_PARSER_CLASSES = {**SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
                               full_tag("serviceTask"): (ServiceTaskParser, _ExternalServiceTask)}


_SERIALIZER_CONFIG = {**SPIFF_CONFIG, _ExternalServiceTask: ServiceTaskConverter}


# --------------------------------------------------------------------------- clock seam

_engine_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)


class _ClockedDatetime(datetime):
    """SpiffWorkflow's timer module calls ``datetime.now`` directly (G8); this
    subclass, installed in that module only, answers from the deployment clock."""

    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        moment = _engine_clock()
        return moment.astimezone(tz) if tz else moment.astimezone().replace(tzinfo=None)


timer_module.datetime = _ClockedDatetime


def use_clock(now: Callable[[], datetime]) -> None:
    global _engine_clock
    _engine_clock = now


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


def compile_bpmn(xml: bytes, entry_process: str | None = None) -> CompiledModel:
    """Parse and check a diagram; raise ``BpmnInvalid`` listing every problem found."""
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
    executable = [p.get("id") for p in root.iter(f"{{{BPMN_NS}}}process") if p.get("isExecutable") == "true"]
    if not executable:
        raise BpmnInvalid([Problem(None, "the diagram has no executable process (isExecutable=\"true\")")])
    process_id = entry_process or executable[0]
    if entry_process and entry_process not in executable:
        raise BpmnInvalid([Problem(entry_process, f"entry process {entry_process!r} is not an executable process "
                                                  f"in this diagram (found: {', '.join(executable)})")])
    parser = _Parser(validator=VALIDATOR)
    try:
        parser.add_bpmn_xml(etree.ElementTree(root), filename="upload.bpmn")
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id)
    except ValidationException as exc:
        raise BpmnInvalid([Problem(exc.id or None, _first_line(exc), exc.line_number or None)]) from None
    except (SpiffWorkflowException, KeyError, AttributeError, TypeError, ValueError) as exc:
        raise BpmnInvalid([Problem(getattr(exc, "id", None), f"cannot build the process: {exc}")]) from None

    model = CompiledModel(process_id, spec, subprocess_specs, {}, [])
    timers = messages = False
    for task_spec in _all_task_specs(model):
        if getattr(task_spec, "manual", False):
            ext = task_spec.extensions or {}
            model.human_tasks[task_spec.name] = HumanTaskSpec(
                name=task_spec.name, title=task_spec.bpmn_name or task_spec.name, lane=task_spec.lane,
                properties=dict(ext.get("properties") or {}), instructions=ext.get("instructionsForEndUser"))
        model.scripts.extend(_scripts_of(task_spec))
        definitions = _event_definitions(getattr(task_spec, "event_definition", None))
        timers = timers or any(isinstance(d, TimerEventDefinition) for d in definitions)
        messages = messages or any(isinstance(d, MessageEventDefinition) for d in definitions)
        if type(task_spec).__name__ == "StartEvent" and task_spec in model.spec.task_specs.values():
            model.start_properties.update((task_spec.extensions or {}).get("properties") or {})
    problems = [Problem(element, f"script error: {exc.message}", exc.line)
                for element, source, mode in model.scripts
                for exc in _check_script(source, mode)]
    problems += [Problem(spec.name, f"service task operator {spec.operation_name!r} must be "
                                    f"'<system>.<operation>', e.g. 'erp.request_invoice'")
                 for spec in _all_task_specs(model) if isinstance(spec, _ExternalServiceTask)
                 and not re.fullmatch(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*", spec.operation_name or "")]
    if problems:
        raise BpmnInvalid(problems)
    model.has_timer_events, model.has_message_events = timers, messages
    return model


def _event_definitions(definition: Any) -> list[Any]:
    """An element's event definitions, those inside a multiple/parallel-multiple definition included."""
    if definition is None:
        return []
    nested = getattr(definition, "event_definitions", None) or []
    return [definition, *(d for inner in nested for d in _event_definitions(inner))]


def _first_line(exc: Exception) -> str:
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
    if isinstance(getattr(event, "expression", None), str):
        found.append((element, event.expression, "eval"))
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


# --------------------------------------------------------------------------- running


class _SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """Routes every script and expression of a diagram through the sandbox."""

    def __init__(self, evaluator: RestrictedEvaluator) -> None:
        super().__init__({})
        self.evaluator = evaluator

    def evaluate(self, expression: str, context: dict, external_context: dict | None = None) -> Any:
        return self.evaluator.evaluate(expression, {**(external_context or {}), **context})

    def execute(self, script: str, context: dict, external_context: dict | None = None) -> bool:
        external = external_context or {}
        result = self.evaluator.execute(script, {**external, **context})
        for key in [k for k in context if k not in result]:
            del context[key]
        context.update({k: v for k, v in result.items() if k not in external})
        return True


class _Serializers(threading.local):
    # The serializer registry flips shared state while encoding (G14): one per thread.
    def __init__(self) -> None:
        self.serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_SERIALIZER_CONFIG))


_serializers = _Serializers()


class Run:
    """One workflow instance in memory for the length of a request or job."""

    def __init__(self, model: CompiledModel, workflow: BpmnWorkflow, *, loaded: bool = False) -> None:
        self.model = model
        self.workflow = workflow
        #: The message catch events the stored state waited on when loaded (a new run: none).
        #: The server keeps one subscription row per wait, so while this equals
        #: ``message_wait_ids()`` after a step, the rows are already right.
        self.message_waits_at_load: frozenset[str] = self.message_wait_ids() if loaded else frozenset()

    @classmethod
    def start(cls, model: CompiledModel, evaluator: RestrictedEvaluator, data: Mapping[str, Any]) -> "Run":
        workflow = BpmnWorkflow(model.spec, model.subprocess_specs,
                                script_engine=PythonScriptEngine(environment=_SandboxEnvironment(evaluator)))
        start = workflow.get_next_task(state=TaskState.READY)
        if start is not None:
            start.set_data(**json.loads(json.dumps(dict(data))))
        run = cls(model, workflow)
        run.advance()
        return run

    @classmethod
    def load(cls, model: CompiledModel, state: str, evaluator: RestrictedEvaluator) -> "Run":
        serializer = _serializers.serializer
        dct = json.loads(state, cls=serializer.json_decoder_cls)
        serializer.migrate(dct)
        dct["spec"] = model.spec
        dct["subprocess_specs"] = model.subprocess_specs
        workflow = serializer.from_dict(dct)
        workflow.script_engine = PythonScriptEngine(environment=_SandboxEnvironment(evaluator))
        return cls(model, workflow, loaded=True)

    def dump(self) -> str:
        serializer = _serializers.serializer
        serializer.registry._encoder_mode = True
        try:
            dct = serializer.to_dict(self.workflow)
        finally:
            serializer.registry._encoder_mode = False
        dct.pop("spec", None)
        dct.pop("subprocess_specs", None)
        dct[serializer.VERSION_KEY] = serializer.VERSION
        return json.dumps(dct, cls=serializer._encoder_cls, separators=(",", ":"))

    def advance(self) -> None:
        """Run everything that needs no human: scripts, gateways, due timers."""
        try:
            self.workflow.refresh_timers()  # before the run loop, see G7
            self.workflow.do_engine_steps()
        except (WorkflowTaskException, WorkflowException) as exc:
            raise _engine_error(exc) from None
        except ScriptError as exc:
            raise EngineError(f"script error: {exc.message}", None, exc.line) from None
        self._check_depth()

    def _check_depth(self) -> None:
        deepest = max((t.depth for t in self.workflow.get_tasks(max_depth=10**6)), default=0)
        if deepest > MAX_TASK_DEPTH:
            raise EngineError(f"the process looped too often (task tree depth {deepest}); "
                              f"use a loop activity or cap the loop")

    def ready_tasks(self) -> list[ReadyTask]:
        return [ReadyTask(str(t.id), t.task_spec.name, dict(t.data))
                for t in self.workflow.get_tasks(state=TaskState.READY, manual=True)]

    def complete(self, engine_task_id: str, data: Mapping[str, Any]) -> None:
        task = self._ready_task(engine_task_id)
        task.set_data(**json.loads(json.dumps(dict(data))))
        try:
            task.run()
        except (WorkflowTaskException, WorkflowException) as exc:
            raise _engine_error(exc) from None
        self.advance()

    def _ready_task(self, engine_task_id: str) -> Any:
        for task in self.workflow.get_tasks(state=TaskState.READY, manual=True):
            if str(task.id) == engine_task_id:
                return task
        raise EngineError(f"task {engine_task_id} is not ready in the workflow")

    def next_timer_due(self) -> datetime | None:
        """The earliest moment a waiting BPMN timer of this run becomes due (G11: walk the tasks)."""
        dues = []
        for task in self.workflow.get_tasks(state=TaskState.WAITING):
            event = getattr(task.task_spec, "event_definition", None)
            value = task.internal_data.get("event_value") if isinstance(event, TimerEventDefinition) else None
            if isinstance(value, dict):  # cycle timers keep {"next": ISO, ...}
                value = value.get("next")
            if isinstance(value, str):
                dues.append(TimerEventDefinition.get_datetime(value))
        return min(dues) if dues else None

    # ----------------------------------------------------------------- service tasks and messages

    def pending_service_calls(self) -> list[ServiceCall]:
        """Service tasks waiting for the server to make their call, parameters evaluated."""
        calls = []
        for task in self.workflow.get_tasks(state=TaskState.STARTED):
            if not isinstance(task.task_spec, _ExternalServiceTask):
                continue
            try:
                params = {name: p["value"] for name, p in task.task_spec.evaluate_params(task).items()}
            except (WorkflowTaskException, WorkflowException) as exc:
                raise _engine_error(exc) from None
            except ScriptError as exc:
                raise EngineError(f"service task parameter: {exc.message}", task.task_spec.name, exc.line) from None
            calls.append(ServiceCall(str(task.id), task.task_spec.name, task.task_spec.operation_name,
                                     json.loads(json.dumps(params, default=str))))
        return calls

    def started_service_task_ids(self) -> set[str]:
        return {str(t.id) for t in self.workflow.get_tasks(state=TaskState.STARTED)
                if isinstance(t.task_spec, _ExternalServiceTask)}

    def complete_service_call(self, engine_task_id: str, result: Any) -> None:
        """Finish a waiting service task with the system's answer (in its result variable) and move on."""
        for task in self.workflow.get_tasks(state=TaskState.STARTED):
            if str(task.id) == engine_task_id and isinstance(task.task_spec, _ExternalServiceTask):
                task.data[task.task_spec.result_variable] = json.loads(json.dumps(result, default=str))
                task.complete()  # complete(), not run(): the call already happened outside (G12)
                self.advance()
                return
        raise EngineError(f"service task {engine_task_id} is not waiting in the workflow")

    def message_wait_ids(self) -> frozenset[str]:
        """Engine ids of the message catch events waiting now (cheap: no correlation is computed)."""
        if not self.model.has_message_events:
            return frozenset()
        return frozenset(str(t.id) for t in self.workflow.get_tasks(state=TaskState.WAITING)
                         if isinstance(getattr(t.task_spec, "event_definition", None), MessageEventDefinition))

    def waiting_messages(self) -> list[WaitingMessage]:
        waiting = []
        for task in self.workflow.get_tasks(state=TaskState.WAITING):
            event = getattr(task.task_spec, "event_definition", None)
            if not isinstance(event, MessageEventDefinition):
                continue
            try:
                keys = event.calculate_correlations(self.workflow.script_engine, event.correlation_properties,
                                                    dict(task.data))
            except (ScriptError, WorkflowException, NameError, KeyError) as exc:
                raise EngineError(f"cannot compute the correlation of message {event.name!r}: {exc}",
                                  task.task_spec.name) from None
            flat = {prop: value for props in keys.values() for prop, value in props.items()}
            waiting.append(WaitingMessage(str(task.id), task.task_spec.name, event.name,
                                          json.loads(json.dumps(flat, default=str))))
        return waiting

    def deliver_message(self, name: str, payload: Mapping[str, Any], correlation: Mapping[str, Any]) -> None:
        """Hand a message to the waiting catch event and move on. The server has already
        matched the correlation; the engine evaluates its retrieval expressions on
        the payload, so the correlation values travel in it too."""
        body = json.loads(json.dumps({**dict(payload), **dict(correlation)}))
        event = None
        for task in self.workflow.get_tasks(state=TaskState.WAITING):
            definition = getattr(task.task_spec, "event_definition", None)
            if isinstance(definition, MessageEventDefinition) and definition.name == name:
                keys = definition.calculate_correlations(self.workflow.script_engine,
                                                         definition.correlation_properties, body)
                event = BpmnEvent(MessageEventDefinition(name), payload=body, correlations=keys)
                break
        if event is None:
            raise EngineError(f"the process is not waiting for message {name!r}")
        try:
            self.workflow.send_event(event)
        except (WorkflowTaskException, WorkflowException) as exc:
            raise _engine_error(exc) from None
        self.advance()

    @property
    def is_completed(self) -> bool:
        return self.workflow.is_completed()

    @property
    def data(self) -> dict[str, Any]:
        """The process data as the latest finished step left it."""
        if self.workflow.is_completed():
            return dict(self.workflow.data)
        last = self.workflow.last_task
        return dict(last.data) if last is not None else {}


def _engine_error(exc: SpiffWorkflowException) -> EngineError:
    task = getattr(exc, "task", None)
    element = task.task_spec.name if task is not None else None
    line = getattr(exc, "line_number", None) or None
    inner = getattr(exc, "exception", None)
    message = inner.message if isinstance(inner, ScriptError) else _first_line(exc)
    return EngineError(message, element, line)
