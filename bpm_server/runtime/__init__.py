"""The process runtime: every command that changes an instance goes through here.

Commands (``commands``): ``start_instance``, ``finish_task`` (``verbs``: a stage,
or a signer's step) and ``complete_locked``,
``deliver_message``, ``advance`` (due BPMN timers), ``finish_service_call``,
``fire_timer`` (any due timer row, dispatched by kind), ``fire_timers`` (a
batch of SLA timers together) and
``advance_test_clock``; the accounts' evaluation (``accounts``: ``evaluate_account``,
``evaluate_daily``, the daily timer's firing). Each locks the instance, loads its run, applies the
command, runs the engine, and hands the step's outcome to the domains in a
fixed order (``step``): instance row, task rows, SLA clocks and timers,
message subscriptions, outbound calls, audit.

Only entry points (views, pages, jobs, the CLI) import this package; domains
never do.
"""
from __future__ import annotations

from bpm_server.runtime.accounts import evaluate_account, evaluate_daily, local_day
from bpm_server.runtime.commands import (
    Advance,
    advance,
    advance_test_clock,
    complete_external_task,
    deliver_message,
    finish_service_call,
    fire_timer,
    fire_timers,
    start_instance,
)
from bpm_server.runtime.verbs import finish_task

__all__ = ["Advance", "advance", "advance_test_clock", "complete_external_task", "deliver_message",
           "evaluate_account", "evaluate_daily", "finish_service_call", "finish_task", "fire_timer", "fire_timers",
           "local_day",
           "start_instance"]
