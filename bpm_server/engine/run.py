"""Running a compiled model: start, load, step, dump.

A ``Run`` holds one workflow instance for a request or job: it runs what needs
no human, lists the ready human tasks, the service calls and the message waits,
completes them, and dumps the state as JSON without the spec (the spec is
compiled once per model version and injected on load; see
shared/notes/design-invariants.md).
"""
from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.event_definitions import timer as timer_module
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition, TimerEventDefinition
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter, SubWorkflowTaskConverter
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from bpm_server.engine import events
from bpm_server.engine.compiler import CompiledModel, _ExternalServiceTask, _first_line, _ModelCallActivity
from bpm_server.engine.dialects.cron import CronTimerEventDefinition
from bpm_server.engine.external import topic_of
from bpm_server.engine.sandbox import BudgetExceeded, Budgets, RestrictedEvaluator, ScriptError

# Above this depth SpiffWorkflow's task iterator stops seeing tasks (G1).
MAX_TASK_DEPTH = 900


class EngineError(Exception):
    """The workflow could not move on (a script failed, no gateway condition matched, a budget ran out...).

    Every failure of an engine step leaves ``Run`` as this type: the server
    records it as the instance's error. ``budget`` names the budget that ran
    out ("cpu", "memory", "value size", "engine steps", "call depth", "loop
    depth"), None for other failures.
    """

    def __init__(self, message: str, element_id: str | None = None, line: int | None = None,
                 budget: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.element_id = element_id
        self.line = line
        self.budget = budget


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
# Cron timer cycles (dialects.cron) are stored as SpiffWorkflow's cycle timers are.
_SERIALIZER_CONFIG = {**SPIFF_CONFIG, _ExternalServiceTask: ServiceTaskConverter,
                      _ModelCallActivity: SubWorkflowTaskConverter,
                      CronTimerEventDefinition: SPIFF_CONFIG[CycleTimerEventDefinition]}

#: Finds the model a call activity calls in another model: process id -> (version id, compiled model).
CallResolver = Callable[[str], tuple[str, CompiledModel]]


# --------------------------------------------------------------------------- clock seam

def _system_clock() -> datetime:
    return datetime.now(UTC)


_engine_clock: Callable[[], datetime] = _system_clock


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


_Method = TypeVar("_Method", bound=Callable[..., Any])
_LIVE_STATES = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR


def _command(method: _Method) -> _Method:
    """Turn every failure inside a public ``Run`` method into an ``EngineError`` naming the element.

    The outermost call of a command also resets the engine-step count, so a
    completion (which advances) is one command with one step budget.
    """

    @functools.wraps(method)
    def wrapper(self: Run, *args: Any, **kwargs: Any) -> Any:
        outer = not self._in_command
        if outer:
            self._in_command, self._steps, self._current = True, 0, None
        try:
            return method(self, *args, **kwargs)
        except EngineError:
            raise
        except Exception as exc:
            raise self._as_engine_error(exc) from exc
        finally:
            if outer:
                self._in_command = False

    return wrapper  # type: ignore[return-value]


class Run:
    """One workflow instance in memory for the length of a request or job."""

    def __init__(self, model: CompiledModel, workflow: BpmnWorkflow, *, loaded: bool = False,
                 budgets: Budgets | None = None, resolver: CallResolver | None = None,
                 callees: Mapping[str, tuple[str, CompiledModel]] | None = None) -> None:
        #: The model with the human tasks of the models it called (they open stages too).
        self.model = model
        self.workflow = workflow
        self._resolver = resolver
        #: Process id of another model -> the version id this run called (recorded in the instance).
        self.called_versions: dict[str, str] = {}
        for process_id, (version_id, callee) in (callees or {}).items():
            self._join(process_id, version_id, callee)
        workflow.bpm_resolve_call = self._resolve_call
        self.budgets = budgets or Budgets()
        self._in_command = False
        self._steps = 0
        self._current: Any = None  # the task being run, to name it when something fails
        #: Signals thrown by this run's steps, for the server to broadcast to other instances.
        self.thrown_signals: list[str] = []
        #: The message catch events the stored state waited on when loaded (a new run: none).
        #: The server keeps one subscription row per wait, so while this equals
        #: ``message_wait_ids()`` after a step, the rows are already right.
        self.message_waits_at_load: frozenset[str] = self.message_wait_ids() if loaded else frozenset()

    def _join(self, process_id: str, version_id: str, callee: CompiledModel) -> dict[str, Any]:
        self.called_versions[process_id] = version_id
        self.model = self.model.including(callee)
        specs = {callee.process_id: callee.spec, **callee.subprocess_specs}
        for name, spec in specs.items():
            self.workflow.subprocess_specs.setdefault(name, spec)
        return specs

    def _resolve_call(self, process_id: str) -> dict[str, Any]:
        """The specs of another model's process, its current version at this call (see ``_ModelCallActivity``)."""
        if self._resolver is None:
            return {}
        version_id, callee = self._resolver(process_id)
        return self._join(process_id, version_id, callee)

    @classmethod
    def start(cls, model: CompiledModel, evaluator: RestrictedEvaluator, data: Mapping[str, Any],
              fired_start: str | None = None, resolver: CallResolver | None = None) -> Run:
        """Start a run. ``fired_start``: the timer start event whose firing starts it (it
        goes on at once instead of waiting for its timer; the other start events are dropped)."""
        try:
            # A copy of the specs: calls into other models add theirs to this run's only.
            workflow = BpmnWorkflow(model.spec, dict(model.subprocess_specs),
                                    script_engine=PythonScriptEngine(environment=_SandboxEnvironment(evaluator)))
        except Exception as exc:
            raise EngineError(f"the process cannot be started: {_describe(exc)}", model.process_id) from exc
        run = cls(model, workflow, budgets=_budgets_of(evaluator), resolver=resolver)
        run._begin(data, fired_start)
        return run

    @_command
    def _begin(self, data: Mapping[str, Any], fired_start: str | None) -> None:
        start = self.workflow.get_next_task(state=TaskState.READY)
        if start is not None:
            self._current = start
            start.set_data(**json.loads(json.dumps(dict(data))))
        if fired_start is not None:
            for task in self.workflow.get_tasks(max_depth=2):
                if task.parent is not None and task.parent is start and task.task_spec.name == fired_start:
                    events.fire_start_now(task)  # the timer row fired: go on now
        self.advance()
        if fired_start is not None:
            # One firing starts one path: the other start events of this run stop waiting.
            for task in self.workflow.get_tasks(state=TaskState.WAITING, max_depth=2):
                if task.parent is start and task.task_spec.name != fired_start:
                    task.cancel()

    @classmethod
    def load(cls, model: CompiledModel, state: str, evaluator: RestrictedEvaluator,
             resolver: CallResolver | None = None,
             callees: Mapping[str, tuple[str, CompiledModel]] | None = None) -> Run:
        """A stored run; ``callees`` are the versions of other models it called (process id ->
        (version id, model)), whose specs its called processes run on."""
        serializer = _serializers.serializer
        try:
            dct = json.loads(state, cls=serializer.json_decoder_cls)
            serializer.migrate(dct)
            dct["spec"] = model.spec
            specs = dict(model.subprocess_specs)
            for _version, callee in (callees or {}).values():
                specs.update({callee.process_id: callee.spec, **callee.subprocess_specs})
            dct["subprocess_specs"] = specs
            workflow = serializer.from_dict(dct)
        except Exception as exc:
            raise EngineError(f"the stored engine state cannot be read: {_describe(exc)}") from exc
        workflow.script_engine = PythonScriptEngine(environment=_SandboxEnvironment(evaluator))
        return cls(model, workflow, loaded=True, budgets=_budgets_of(evaluator), resolver=resolver,
                   callees=callees)

    @_command
    def dump(self) -> str:
        serializer = _serializers.serializer
        serializer.registry._encoder_mode = True
        try:
            dct = serializer.to_dict(self.workflow)
        except Exception as exc:
            element = self._unstorable_element()
            raise EngineError(f"the process data cannot be stored{_at(element)}: {_describe(exc)}",
                              element) from exc
        finally:
            serializer.registry._encoder_mode = False
        dct.pop("spec", None)
        dct.pop("subprocess_specs", None)
        dct[serializer.VERSION_KEY] = serializer.VERSION
        try:
            return json.dumps(dct, cls=serializer._encoder_cls, separators=(",", ":"))
        except Exception as exc:
            element = self._unstorable_element()
            raise EngineError(f"the process data cannot be stored{_at(element)}: {_describe(exc)}",
                              element) from exc

    def _unstorable_element(self) -> str | None:
        """The first task whose data the serializer cannot write (only looked for after a failure)."""
        serializer = _serializers.serializer
        for task in self.workflow.get_tasks(max_depth=10**6):
            try:
                json.dumps(serializer.registry.convert(task.data), cls=serializer._encoder_cls)
            except Exception:
                return _element_of(task)
        return None

    @_command
    def advance(self) -> None:
        """Run everything that needs no human: scripts, gateways, due timers."""
        self.workflow.refresh_timers()  # before the run loop, see G7
        self.workflow.do_engine_steps(will_complete_task=self._will_run, did_complete_task=self._did_run)
        # Signals and messages nobody in this run caught: the server routes signals itself
        # (``thrown_signals``); kept here they would only grow the stored state.
        self.workflow.get_events()
        self._check_depth()

    def _will_run(self, task: Any) -> None:
        self._current = task
        workflow = task.workflow
        if workflow.depth > self.budgets.max_call_depth:  # 0 for the top process, 1 for a called one...
            caller = _element_of(workflow.top_workflow.get_task_from_id(workflow.parent_task_id))
            raise EngineError(f"call-activity depth budget exceeded at element {caller}: more than "
                              f"{self.budgets.max_call_depth} call activities inside each other "
                              f"(does the process call itself?)", caller, budget="call depth")

    def _did_run(self, task: Any) -> None:
        self._steps += 1
        signal = events.thrown_signal(task)
        if signal is not None:
            self.thrown_signals.append(signal)
        if self._steps > self.budgets.max_engine_steps:
            name = _element_of(task)
            raise EngineError(f"engine step budget exceeded at element {name}: more than "
                              f"{self.budgets.max_engine_steps} engine steps in one command "
                              f"(an endless loop without a human task?)", name, budget="engine steps")

    def _check_depth(self) -> None:
        # One walk per task tree with the depth carried along: Task.depth walks up to the root,
        # so max(t.depth for t in tasks) would cost tasks x depth on every command.
        trees = [self.workflow.task_tree] + [sub.task_tree for sub in self.workflow.subprocesses.values()]
        deepest, deepest_live = _deepest_tasks(trees)
        if deepest is not None and deepest[1] > MAX_TASK_DEPTH:
            # Name the element the loop is at now (not the predicted end beyond it).
            task = deepest_live[0] if deepest_live is not None and deepest_live[1] > MAX_TASK_DEPTH // 2 \
                else deepest[0]
            name = _element_of(task)
            raise EngineError(f"loop too deep at element {name}: the process went round a loop too often "
                              f"(task tree depth {deepest[1]}, limit {MAX_TASK_DEPTH}); model the repetition "
                              f"as a loop activity or cap the loop", name, budget="loop depth")

    @_command
    def ready_tasks(self) -> list[ReadyTask]:
        return [ReadyTask(str(t.id), _element_of(t), dict(t.data))
                for t in self.workflow.get_tasks(state=TaskState.READY, manual=True)]

    @_command
    def ready_task_ids(self) -> frozenset[str]:
        """Engine ids of the human tasks ready now (cheap: no data is copied)."""
        return frozenset(str(t.id) for t in self.workflow.get_tasks(state=TaskState.READY, manual=True))

    @_command
    def complete(self, engine_task_id: str, data: Mapping[str, Any]) -> None:
        task = self._ready_task(engine_task_id)
        self._current = task
        task.set_data(**json.loads(json.dumps(dict(data))))
        task.run()
        self.advance()

    def _ready_task(self, engine_task_id: str) -> Any:
        for task in self.workflow.get_tasks(state=TaskState.READY, manual=True):
            if str(task.id) == engine_task_id:
                return task
        raise EngineError(f"task {engine_task_id} is not ready in the workflow")

    @_command
    def next_timer_due(self) -> datetime | None:
        """The earliest moment a waiting BPMN timer of this run becomes due (G11: walk the tasks)."""
        dues = []
        for task in self.workflow.get_tasks(state=TaskState.WAITING):
            value = events.timer_due(task)  # a timer catch, boundary, or an event-based gateway's timer
            if value is not None:
                self._current = task
                dues.append(TimerEventDefinition.get_datetime(value))
        return min(dues) if dues else None

    # ----------------------------------------------------------------- service tasks and messages

    @_command
    def pending_service_calls(self) -> list[ServiceCall]:
        """Service tasks waiting for the server to make their call, parameters evaluated."""
        calls = []
        for task in self.workflow.get_tasks(state=TaskState.STARTED):
            if not isinstance(task.task_spec, _ExternalServiceTask):
                continue
            self._current = task
            if topic_of(task.task_spec.operation_name) is not None:
                # An external task's worker gets the process data, as Camunda's fetch-and-lock does.
                calls.append(ServiceCall(str(task.id), task.task_spec.name, task.task_spec.operation_name,
                                         json.loads(json.dumps(dict(task.data), default=str))))
                continue
            try:
                params = {name: p["value"] for name, p in task.task_spec.evaluate_params(task).items()}
            except Exception as exc:
                inner = _script_error_in(exc)
                message = inner.message if inner is not None else _describe(exc)
                raise EngineError(f"service task parameter: {message}", _element_of(task),
                                  inner.line if inner is not None else None, budget=_budget_in(exc)) from None
            calls.append(ServiceCall(str(task.id), task.task_spec.name, task.task_spec.operation_name,
                                     json.loads(json.dumps(params, default=str))))
        return calls

    @_command
    def started_service_task_ids(self) -> set[str]:
        return {str(t.id) for t in self.workflow.get_tasks(state=TaskState.STARTED)
                if isinstance(t.task_spec, _ExternalServiceTask)}

    @_command
    def complete_service_call(self, engine_task_id: str, result: Any) -> None:
        """Finish a waiting service task with the system's answer (in its result variable) and move on."""
        for task in self.workflow.get_tasks(state=TaskState.STARTED):
            if str(task.id) == engine_task_id and isinstance(task.task_spec, _ExternalServiceTask):
                self._current = task
                task.data[task.task_spec.result_variable] = json.loads(json.dumps(result, default=str))
                task.complete()  # complete(), not run(): the call already happened outside (G12)
                self.advance()
                return
        raise EngineError(f"service task {engine_task_id} is not waiting in the workflow")

    @_command
    def complete_external_task(self, engine_task_id: str, variables: Mapping[str, Any]) -> None:
        """Finish a waiting external task with its worker's variables (merged into the data) and move on."""
        for task in self.workflow.get_tasks(state=TaskState.STARTED):
            if str(task.id) == engine_task_id and isinstance(task.task_spec, _ExternalServiceTask):
                self._current = task
                task.data.update(json.loads(json.dumps(dict(variables))))
                task.complete()  # the work happened outside, as for service calls (G12)
                self.advance()
                return
        raise EngineError(f"external task {engine_task_id} is not waiting in the workflow")

    @_command
    def message_wait_ids(self) -> frozenset[str]:
        """Engine ids of the message catch events waiting now (cheap: no correlation is computed)."""
        if not self.model.has_message_events and not events.has_signal_events(self.model):
            return frozenset()
        return frozenset(str(t.id) for t in self.workflow.get_tasks(state=TaskState.WAITING)
                         if events.messages_of(t.task_spec) or events.signals_of(t.task_spec))

    @_command
    def waiting_messages(self) -> list[WaitingMessage]:
        waiting = []
        for task in self.workflow.get_tasks(state=TaskState.WAITING):
            self._current = task
            for event in events.messages_of(task.task_spec):
                try:
                    keys = event.calculate_correlations(self.workflow.script_engine, event.correlation_properties,
                                                        dict(task.data))
                except Exception as exc:
                    raise EngineError(f"cannot compute the correlation of message {event.name!r}: "
                                      f"{_correlation_problem(exc)}", _element_of(task),
                                      budget=_budget_in(exc)) from None
                flat = {prop: value for props in keys.values() for prop, value in props.items()}
                waiting.append(WaitingMessage(str(task.id), task.task_spec.name, event.name,
                                              json.loads(json.dumps(flat, default=str))))
            # A signal is broadcast, never correlated: its wait is listed under a name of its own.
            waiting.extend(WaitingMessage(str(task.id), task.task_spec.name, events.SIGNAL_PREFIX + signal.name, {})
                           for signal in events.signals_of(task.task_spec))
        return waiting

    @_command
    def deliver_message(self, name: str, payload: Mapping[str, Any], correlation: Mapping[str, Any]) -> None:
        """Hand a message to the waiting catch event and move on. The server has already
        matched the correlation; the engine evaluates its retrieval expressions on
        the payload, so the correlation values travel in it too."""
        body = json.loads(json.dumps({**dict(payload), **dict(correlation)}))
        event = None
        for task in self.workflow.get_tasks(state=TaskState.WAITING):
            for definition in events.messages_of(task.task_spec):
                if definition.name != name:
                    continue
                self._current = task
                try:
                    keys = definition.calculate_correlations(self.workflow.script_engine,
                                                             definition.correlation_properties, body)
                except Exception as exc:
                    raise EngineError(f"cannot compute the correlation of message {name!r}: "
                                      f"{_correlation_problem(exc)}", _element_of(task),
                                      budget=_budget_in(exc)) from None
                event = BpmnEvent(MessageEventDefinition(name), payload=body, correlations=keys)
                break
            if event is not None:
                break
        if event is None:
            raise EngineError(f"the process is not waiting for message {name!r}")
        self.workflow.send_event(event)
        self.advance()

    @_command
    def deliver_signal(self, name: str) -> bool:
        """A signal thrown elsewhere reaches this run's waiting catches; False if none waits for it."""
        for task in self.workflow.get_tasks(state=TaskState.WAITING):
            for definition in events.signals_of(task.task_spec):
                if definition.name == name:
                    self._current = task
                    # The waiting definition itself: events match by class too (G5).
                    self.workflow.catch(BpmnEvent(definition, payload={}))
                    self.advance()
                    return True
        return False

    @property
    def is_completed(self) -> bool:
        return self._is_completed()

    @_command
    def _is_completed(self) -> bool:
        return self.workflow.is_completed()

    @property
    def data(self) -> dict[str, Any]:
        """The process data as the latest finished step left it."""
        return self._data()

    @_command
    def _data(self) -> dict[str, Any]:
        if self.workflow.is_completed():
            return dict(self.workflow.data)
        last = self.workflow.last_task
        return dict(last.data) if last is not None else {}

    def _as_engine_error(self, exc: Exception) -> EngineError:
        task = _task_in_traceback(exc) or self._current
        current = _element_of(task) if task is not None else None
        if isinstance(exc, SpiffWorkflowException):
            return _engine_error(exc, current)
        if isinstance(exc, ScriptError):
            return _script_engine_error(exc, current)
        return EngineError(f"the engine failed{_at(current)}: {_describe(exc)}", current)


def _deepest_tasks(roots: list[Any]) -> tuple[tuple[Any, int] | None, tuple[Any, int] | None]:
    """(deepest task, its depth) and the same among READY/WAITING/STARTED/ERROR tasks, over the trees."""
    deepest: tuple[Any, int] | None = None
    live: tuple[Any, int] | None = None
    stack = [(root, 0) for root in roots]
    while stack:
        task, depth = stack.pop()
        if deepest is None or depth > deepest[1]:
            deepest = (task, depth)
        if task.state & _LIVE_STATES and (live is None or depth > live[1]):
            live = (task, depth)
        stack.extend((child, depth + 1) for child in task.children)
    return deepest, live


def _budgets_of(evaluator: RestrictedEvaluator) -> Budgets:
    return getattr(evaluator, "budgets", None) or Budgets()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_first_line(exc)}" if str(exc) else type(exc).__name__


def _correlation_problem(exc: BaseException) -> str:
    inner = _script_error_in(exc)
    return inner.message if inner is not None else _describe(exc)


def _at(element: str | None) -> str:
    return f" at element {element}" if element else ""


def _budget_in(exc: BaseException) -> str | None:
    inner = _script_error_in(exc)
    return inner.budget if isinstance(inner, BudgetExceeded) else None


def _script_error_in(exc: BaseException) -> ScriptError | None:
    """The sandbox's error behind a SpiffWorkflow exception (it re-raises inside its ``except``)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, ScriptError):
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def _element_of(task: Any) -> str:
    """The BPMN id of a task's element (a multi-instance child's spec is named "x [child]")."""
    spec = task.task_spec
    return getattr(spec, "bpmn_id", None) or spec.name


def _task_in_traceback(exc: BaseException) -> Any:
    """The innermost engine task the failing code was working on (SpiffWorkflow names it ``my_task``)."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("my_task")
        if candidate is not None and hasattr(candidate, "task_spec"):
            found = candidate
        tb = tb.tb_next
    return found


def _script_engine_error(exc: ScriptError, element: str | None) -> EngineError:
    if isinstance(exc, BudgetExceeded):
        return EngineError(exc.message.replace(" exceeded:", f" exceeded{_at(element)}:", 1), element, exc.line,
                           budget=exc.budget)
    return EngineError(f"script error: {exc.message}", element, exc.line)


def _engine_error(exc: SpiffWorkflowException, fallback: str | None = None) -> EngineError:
    task = getattr(exc, "task", None)
    element = _element_of(task) if task is not None else fallback
    line = getattr(exc, "line_number", None) or None
    inner = _script_error_in(exc)
    if isinstance(inner, ScriptError):
        error = _script_engine_error(inner, element)
        if isinstance(inner, BudgetExceeded):
            return error
        return EngineError(inner.message, element, line or inner.line)
    return EngineError(_first_line(exc), element, line)
