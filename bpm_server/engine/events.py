"""BPMN events as the server sees them: what a waiting task waits for, the model's start
events, the schedule of a timer start event, and the signals a step threw.

SpiffWorkflow keeps an event-based gateway's events on the gateway itself (one
``MultipleEventDefinition`` holding the message and timer definitions of the
catch events behind it), so a WAITING gateway waits for several things at once;
everything here looks inside such definitions.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import ThrowingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition

from bpm_server.engine.compiler import Problem
from bpm_server.engine.sandbox import RestrictedEvaluator, ScriptError

SIGNAL_PREFIX = "signal:"  # how a signal wait is named among message waits


def definitions_of(definition: Any) -> list[Any]:
    """The event definitions a task's definition stands for (a multiple one: those inside)."""
    if definition is None:
        return []
    if isinstance(definition, MultipleEventDefinition):
        return [d for inner in definition.event_definitions for d in definitions_of(inner)]
    return [definition]


def messages_of(task_spec: Any) -> list[Any]:
    return [d for d in definitions_of(getattr(task_spec, "event_definition", None))
            if isinstance(d, MessageEventDefinition)]


def signals_of(task_spec: Any) -> list[Any]:
    return [d for d in definitions_of(getattr(task_spec, "event_definition", None))
            if isinstance(d, SignalEventDefinition)]


def has_signal_events(model: Any) -> bool:
    """Whether any element of the model waits for a signal (kept on the model after the first look)."""
    known = getattr(model, "_has_signal_events", None)
    if known is None:
        specs = [*model.spec.task_specs.values(),
                 *(t for sub in model.subprocess_specs.values() for t in sub.task_specs.values())]
        known = any(signals_of(t) for t in specs)
        model._has_signal_events = known
    return bool(known)


def has_timer(task_spec: Any) -> bool:
    return any(isinstance(d, TimerEventDefinition)
               for d in definitions_of(getattr(task_spec, "event_definition", None)))


def timer_due(task: Any) -> str | None:
    """The ISO moment a WAITING task's timer falls due (an event-based gateway keeps it too)."""
    if not has_timer(task.task_spec):
        return None
    value = task.internal_data.get("event_value")
    if isinstance(value, dict):  # cycle timers keep {"next": ISO, "cycles": n, ...}
        value = value.get("next") if value.get("cycles", 1) != 0 else None
    return value if isinstance(value, str) else None


def thrown_signal(task: Any) -> str | None:
    """The signal name a completed throw event (intermediate or end) sent, else None."""
    if isinstance(task.task_spec, ThrowingEvent):
        names = [d.name for d in signals_of(task.task_spec)]
        return names[0] if names else None
    return None


# --------------------------------------------------------------------------- start events


def fire_start_now(task: Any) -> None:
    """Make a timer start event's task fire once, at once: the server's timer row already
    fired (and arms the next firing itself)."""
    definition = getattr(task.task_spec, "event_definition", None)
    if isinstance(definition, CycleTimerEventDefinition):
        # One cycle left, due long ago: SpiffWorkflow runs the path once, then ends the cycle.
        task._set_internal_data(event_value={"cycles": 1, "next": "2000-01-01T00:00:00+00:00", "duration": 1.0})
    else:
        task._set_internal_data(event_fired=True)


@dataclass(frozen=True)
class StartTrigger:
    """A start event of the entry process that waits for something: a timer or a message."""

    element_id: str
    kind: str  # "timer" or "message"
    name: str  # the message name; for a timer, its expression
    timer: str | None = None  # "date", "duration" or "cycle"


def start_triggers(spec: Any) -> list[StartTrigger]:
    found = []
    for task_spec in spec.task_specs.values():
        if not isinstance(task_spec, StartEvent):
            continue
        element = getattr(task_spec, "bpmn_id", None) or task_spec.name
        for definition in definitions_of(getattr(task_spec, "event_definition", None)):
            if isinstance(definition, MessageEventDefinition):
                found.append(StartTrigger(element, "message", definition.name))
            elif isinstance(definition, TimerEventDefinition):
                found.append(StartTrigger(element, "timer", definition.expression, _timer_kind(definition)))
    return found


def _timer_kind(definition: Any) -> str:
    if isinstance(definition, CycleTimerEventDefinition):
        return "cycle"
    if isinstance(definition, DurationTimerEventDefinition):
        return "duration"
    if isinstance(definition, TimeDateEventDefinition):
        return "date"
    return "date"


@dataclass(frozen=True)
class StartSchedule:
    """When a timer start event fires: first at ``first``, then every ``every`` seconds,
    ``repeat`` more times after the first (-1: for ever)."""

    first: datetime
    every: float
    repeat: int

    def as_payload(self) -> dict[str, Any]:
        return {"every": self.every, "repeat": self.repeat}


class StartTimerInvalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def start_schedule(trigger: StartTrigger, evaluator: RestrictedEvaluator, now: datetime) -> StartSchedule | None:
    """The schedule of a timer start event from ``now`` (its publication); None when it
    never fires again (a date already past). Raises ``StartTimerInvalid`` with a reason."""
    try:
        value = evaluator.evaluate(trigger.name, {})
    except ScriptError as exc:
        raise StartTimerInvalid(f"the timer expression {trigger.name!r} cannot be evaluated: {exc.message}") from None
    if not isinstance(value, str):
        raise StartTimerInvalid(f"the timer expression {trigger.name!r} gives {value!r}, not an ISO 8601 text "
                                f"(write it quoted, e.g. \"R/P1D\")")
    try:
        if trigger.timer == "cycle":
            cycles, start, duration = TimerEventDefinition.parse_iso_recurring_interval(value)
            if cycles == 0:
                return None
            if duration.total_seconds() <= 0:
                raise StartTimerInvalid(f"the timer cycle {value!r} has no interval")
            return StartSchedule(start, duration.total_seconds(), cycles - 1 if cycles > 0 else -1)
        if trigger.timer == "duration":
            parsed = TimerEventDefinition.parse_iso_duration(value)
            return StartSchedule(now + TimerEventDefinition.get_timedelta_from_start(parsed, now), 0, 0)
        moment = TimerEventDefinition.parse_time_or_duration(value)
    except StartTimerInvalid:
        raise
    except Exception:
        raise StartTimerInvalid(f"the timer value {value!r} is not an ISO 8601 "
                                f"{'repeating interval (e.g. R3/PT10M)' if trigger.timer == 'cycle' else trigger.timer}"
                                ) from None
    if not isinstance(moment, datetime):
        raise StartTimerInvalid(f"the timer date {value!r} is not an ISO 8601 date and time")
    return StartSchedule(moment, 0, 0) if moment > now else None


def next_firing(due: datetime, every: float, repeat: int) -> tuple[datetime, int] | None:
    """After a firing at ``due``: the next moment and the repeats left after it (None: done)."""
    if repeat == 0 or every <= 0:
        return None
    return due + timedelta(seconds=every), (repeat - 1 if repeat > 0 else -1)


def start_event_problems(spec: Any) -> list[Problem]:
    """Upload check: every timer start event's expression gives a schedule the server can arm
    (whether a date is already past does not matter here: such a timer is just never armed)."""
    now = datetime(2000, 1, 1, tzinfo=UTC)
    evaluator = RestrictedEvaluator()
    problems = []
    for trigger in start_triggers(spec):
        if trigger.kind == "timer":
            try:
                start_schedule(trigger, evaluator, now)
            except StartTimerInvalid as exc:
                problems.append(Problem(trigger.element_id, f"timer start event: {exc.message}"))
    return problems
