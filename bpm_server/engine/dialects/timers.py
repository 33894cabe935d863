"""Timer expressions of every dialect, as the Python expression SpiffWorkflow evaluates.

SpiffWorkflow evaluates ``<timeDuration>PT4H</timeDuration>`` as Python (G2)
and fails when the timer is armed. Here an ISO 8601 literal (duration, date,
``R3/PT10M`` cycle) or a cron cycle becomes a quoted string, checked now; JUEL
and FEEL expressions are translated; anything else stays a Python expression
(spiff-arena's dialect), and a constant one is checked like a literal.
"""
from __future__ import annotations

import ast
import re

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from bpm_server.engine.dialects import cron
from bpm_server.engine.dialects.expressions import feel_to_python, is_feel, is_juel, juel_to_python

_ISO = re.compile(r"^(R\d*/.+|P[0-9YMWDTHS.,]+|\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?)$", re.IGNORECASE)

# A bare word such as PT4X or P1Q is a mistyped ISO literal, not a variable: say so now.
_ISO_ATTEMPT = re.compile(r"^[PR]T?\d[0-9A-Za-z]*$")


class TimerProblem(Exception):
    pass


def check_value(kind: str, value: str) -> None:
    """Raise ``TimerProblem`` if ``value`` cannot be read as a timer of this kind."""
    try:
        if kind == "timeCycle":
            if cron.looks_like_cron(value):
                cron.check(value)
                return
            if not value.upper().startswith("R"):
                raise TimerProblem(f"timer cycle {value!r} is neither a repeating interval (e.g. R3/PT10M) "
                                   f"nor a cron expression")
            TimerEventDefinition.parse_iso_recurring_interval(value)
        elif kind == "timeDuration":
            TimerEventDefinition.parse_iso_duration(value)
            if not value.upper().startswith("P"):
                raise ValueError
        else:
            TimerEventDefinition.parse_time_or_duration(value)
    except cron.CronProblem as exc:
        raise TimerProblem(f"cron expression {value!r}: {exc}") from None
    except TimerProblem:
        raise
    except Exception:
        examples = {"timeDuration": "PT4H", "timeDate": "2026-03-02T09:00:00+08:00", "timeCycle": "R3/PT10M"}
        raise TimerProblem(f"timer {kind} {value!r} is not valid ISO 8601 (e.g. {examples.get(kind, 'PT4H')})"
                           ) from None


def to_python(kind: str, text: str) -> str:
    """The Python expression for a timer's text; raises ``TimerProblem`` or ``Untranslatable``."""
    stripped = text.strip()
    if is_feel(stripped):
        return feel_to_python(stripped)
    if is_juel(stripped):
        return juel_to_python(stripped)
    if (_ISO.match(stripped) or _ISO_ATTEMPT.match(stripped)
            or (kind == "timeCycle" and cron.looks_like_cron(stripped))):
        check_value(kind, stripped)
        return repr(stripped)
    try:
        constant = ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return stripped  # a Python expression computed at run time (checked by the sandbox)
    if not isinstance(constant, str):
        raise TimerProblem(f"timer {kind} {stripped!r} is not a text such as \"PT4H\"")
    check_value(kind, constant)
    return stripped
