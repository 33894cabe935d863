"""Camunda (Quartz) cron expressions in timer cycles: checked field by field at upload,
and run as a cycle timer that fires at each next cron moment.

Quartz writes ``seconds minutes hours day-of-month month day-of-week [year]``
with ``?`` for "no specific value" and 1 = Sunday; croniter (which computes the
next moments) takes ``minutes hours day-of-month month day-of-week seconds``
with 0 = Sunday, so the fields are reordered and the day numbers shifted.
"""
from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from typing import Any

from croniter import croniter  # type: ignore[import-untyped]
from SpiffWorkflow.bpmn.specs.event_definitions import timer as timer_module
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# (name, low, high, names, extra characters allowed)
_FIELDS = (("seconds", 0, 59, (), ""), ("minutes", 0, 59, (), ""), ("hours", 0, 23, (), ""),
           ("day of month", 1, 31, (), "?LW"), ("month", 1, 12, _MONTHS, ""),
           ("day of week", 1, 7, _DAYS, "?L#"), ("year", 1970, 2099, (), ""))
_ITEM = re.compile(r"^(\*|[A-Z0-9]+(?:-[A-Z0-9]+)?)(?:/(\d+))?$")


class CronProblem(Exception):
    """A cron expression with a bad field; the message names the field."""


def looks_like_cron(text: str) -> bool:
    return len(text.split()) in (6, 7) and not text.strip().upper().startswith(("R", "P"))


def _value(token: str, field: tuple[Any, ...]) -> int:
    name, low, high, names, _ = field
    if token in names:
        return names.index(token) + low
    if not token.isdigit():
        raise CronProblem(f"{name} field: {token!r} is not a number"
                          + (f" or one of {', '.join(names)}" if names else ""))
    number = int(token)
    if not low <= number <= high:
        raise CronProblem(f"{name} field: {number} is outside {low}-{high}")
    return number


def _check_field(text: str, field: tuple[Any, ...]) -> None:
    name, _, _, _, extra = field
    if text == "?":
        if "?" not in extra:
            raise CronProblem(f"{name} field: '?' is only allowed for day of month and day of week")
        return
    for item in text.upper().split(","):
        if ("L" in extra and item in ("L", "LW")) or ("W" in extra and item.endswith("W") and item[:-1].isdigit()):
            continue
        if "#" in extra and "#" in item:
            day, _, nth = item.partition("#")
            _value(day, field)
            if not nth.isdigit() or not 1 <= int(nth) <= 5:
                raise CronProblem(f"{name} field: {item!r} needs a week number 1-5 after '#'")
            continue
        if "L" in extra and item.endswith("L") and len(item) > 1:
            _value(item[:-1], field)
            continue
        match = _ITEM.match(item)
        if not match:
            raise CronProblem(f"{name} field: cannot read {item!r}")
        if match.group(1) != "*":
            for bound in match.group(1).split("-"):
                _value(bound, field)
        if match.group(2) is not None and int(match.group(2)) == 0:
            raise CronProblem(f"{name} field: a step of 0 never moves on")


def check(expression: str) -> None:
    """Raise ``CronProblem`` naming the first bad field of a Quartz cron expression."""
    fields = expression.split()
    if len(fields) not in (6, 7):
        raise CronProblem(f"a cron expression has 6 or 7 fields (seconds minutes hours day-of-month month "
                          f"day-of-week [year]); this one has {len(fields)}")
    for text, field in zip(fields, _FIELDS, strict=False):
        _check_field(text, field)
    if len(fields) == 7 and fields[6] != "*":
        raise CronProblem("year field: only '*' is supported")
    if fields[3] != "?" and fields[5] != "?" and "*" not in (fields[3], fields[5]):
        raise CronProblem("day of month and day of week are both set: write '?' in one of them")
    try:
        croniter(_as_croniter(expression))
    except (ValueError, KeyError) as exc:
        raise CronProblem(f"cannot be scheduled: {exc}") from None


def _as_croniter(expression: str) -> str:
    fields = expression.upper().split()[:6]
    seconds, minutes, hours, dom, month, dow = fields
    dow = re.sub(r"\d", lambda m: str((int(m.group(0)) - 1) % 7), dow) if dow != "?" else "*"
    dom = "*" if dom == "?" else dom
    return " ".join((minutes, hours, dom, month, dow, seconds))


def next_moment(expression: str, after: datetime) -> datetime:
    return croniter(_as_croniter(expression), after.astimezone(UTC)).get_next(datetime)


class CronTimerEventDefinition(CycleTimerEventDefinition):
    """A timer cycle written as a cron expression: fires at every next cron moment, forever.

    Keeps the ``{"cycles", "next"}`` shape of SpiffWorkflow's cycle timers in
    the task's internal data, so the server's timer table reads it the same way."""

    def cycle_complete(self, my_task: Any) -> bool:
        now = timer_module.datetime.now(UTC)  # the deployment's clock (run.py installs it in that module)
        event_value = my_task._get_internal_data("event_value")
        expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
        if event_value is None:
            event_value = {"cycles": -1, "next": next_moment(expression, now).isoformat(), "duration": 0}
        ready = False
        if datetime.fromisoformat(event_value["next"]) < now:
            event_value["next"] = next_moment(expression, now).isoformat()
            ready = True
        my_task._set_internal_data(event_value=event_value)
        return ready


def literal_cron(expression: str) -> str | None:
    """The cron text of a timer expression that is a quoted cron literal, else None."""
    try:
        value = ast.literal_eval(expression.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, str) and looks_like_cron(value) else None
