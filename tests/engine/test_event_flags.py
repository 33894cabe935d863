"""What a compiled model knows about its waits: the server skips looking for
timer and subscription rows of models without timer or message elements, so
these flags must never say "none" for a model that has one."""
from __future__ import annotations

from pathlib import Path

from bpm_server.engine.adapter import compile_bpmn
from tests.fixtures.diagrams import sequence, user_task

ROOT = Path(__file__).resolve().parents[2]


def test_account_project_waits_for_a_message_but_has_no_timer_element() -> None:
    model = compile_bpmn((ROOT / "process_models/account-project/account-project.bpmn").read_bytes())
    assert model.has_message_events is True  # the ERP's invoice_issued
    assert model.has_timer_events is False   # its deadlines are SLA timers, not BPMN ones


def test_a_timer_catch_event_is_seen() -> None:
    model = compile_bpmn((ROOT / "tests/fixtures/timer_then_task.bpmn").read_bytes())
    assert model.has_timer_events is True
    assert model.has_message_events is False


def test_a_plain_sequence_waits_on_nothing() -> None:
    model = compile_bpmn(sequence("plain", user_task("first"), user_task("second")))
    assert (model.has_timer_events, model.has_message_events) == (False, False)
