"""Running a compiled model: start, load, step, dump.

A ``Run`` holds one workflow instance for a request or job: it runs what needs
no human, lists the ready human tasks, the service calls and the message waits,
completes them, and dumps the state as JSON without the spec (the spec is
compiled once per model version and injected on load; see
shared/notes/design-invariants.md).
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.event_definitions import timer as timer_module
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from bpm_server.engine.compiler import CompiledModel, _ExternalServiceTask, _first_line
from bpm_server.engine.sandbox import RestrictedEvaluator, ScriptError

# Above this depth SpiffWorkflow's task iterator stops seeing tasks (G1).
MAX_TASK_DEPTH = 900


class EngineError(Exception):
    """The workflow could not move on (a script failed, no gateway condition matched, ...)."""

    def __init__(self, message: str, element_id: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.element_id = element_id
        self.line = line


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

# The parser (compiler.py) builds service tasks as ``_ExternalServiceTask``; the
# serializer must know that class to dump and load runs that contain one.
_SERIALIZER_CONFIG = {**SPIFF_CONFIG, _ExternalServiceTask: ServiceTaskConverter}


# --------------------------------------------------------------------------- clock seam

def _system_now() -> datetime:
    return datetime.now(UTC)


_engine_clock: Callable[[], datetime] = _system_now


class _ClockedDatetime(datetime):
    """SpiffWorkflow's timer module calls ``datetime.now`` directly (G8); this
    subclass, installed in that module only, answers from the deployment clock."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
        moment = _engine_clock()
        return moment.astimezone(tz) if tz else moment.astimezone().replace(tzinfo=None)


timer_module.datetime = _ClockedDatetime


def use_clock(now: Callable[[], datetime]) -> None:
    global _engine_clock
    _engine_clock = now


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
    def start(cls, model: CompiledModel, evaluator: RestrictedEvaluator, data: Mapping[str, Any]) -> Run:
        workflow = BpmnWorkflow(model.spec, model.subprocess_specs,
                                script_engine=PythonScriptEngine(environment=_SandboxEnvironment(evaluator)))
        start = workflow.get_next_task(state=TaskState.READY)
        if start is not None:
            start.set_data(**json.loads(json.dumps(dict(data))))
        run = cls(model, workflow)
        run.advance()
        return run

    @classmethod
    def load(cls, model: CompiledModel, state: str, evaluator: RestrictedEvaluator) -> Run:
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
