"""What a compiled model knows about the events it waits on, and how a broken
event reference is reported. The server skips looking for
timer and subscription rows of models without timer or message elements, so
these flags must never say "none" for a model that has one."""
from __future__ import annotations

from pathlib import Path

import pytest

from bpm_server.engine.adapter import BpmnInvalid, compile_bpmn
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


def _catch(ref: str) -> str:
    return (f'<bpmn:intermediateCatchEvent id="wait_for_po" name="Wait for PO">'
            f'<bpmn:messageEventDefinition id="def_po" messageRef="{ref}"/></bpmn:intermediateCatchEvent>')


def _with_message(xml: bytes, message_id: str) -> bytes:
    return xml.replace(b"<bpmn:process", f'<bpmn:message id="{message_id}" name="po"/><bpmn:process'.encode(), 1)


def test_an_event_referring_to_an_undefined_message_is_named() -> None:
    with pytest.raises(BpmnInvalid) as raised:
        compile_bpmn(sequence("orders", _catch("Message_missing")))
    [problem] = raised.value.problems
    assert problem.element_id == "wait_for_po"
    assert "message 'Message_missing', which is not defined in the diagram" in problem.message


def test_a_prefixed_message_reference_says_which_plain_id_to_write() -> None:
    # Some modelers write QNames ("semantic:Message_po"); SpiffWorkflow resolves plain ids only.
    with pytest.raises(BpmnInvalid) as raised:
        compile_bpmn(_with_message(sequence("orders", _catch("semantic:Message_po")), "Message_po"))
    [problem] = raised.value.problems
    assert problem.element_id == "wait_for_po" and 'write messageRef="Message_po"' in problem.message
    assert compile_bpmn(_with_message(sequence("orders", _catch("Message_po")), "Message_po")).has_message_events


def test_a_qname_in_the_diagrams_own_namespace_resolves_to_the_plain_id() -> None:
    # Trisotech writes messageRef="semantic:Message_po" with xmlns:semantic bound to the
    # definitions' targetNamespace: that QName names Message_po, and the diagram runs.
    own = _with_message(sequence("orders", _catch("semantic:Message_po")), "Message_po").replace(
        b'id="defs"', b'xmlns:semantic="http://example.com/bpmn" id="defs"', 1)
    assert compile_bpmn(own).has_message_events
    elsewhere = own.replace(b'xmlns:semantic="http://example.com/bpmn"', b'xmlns:semantic="http://other.example"')
    with pytest.raises(BpmnInvalid) as raised:  # another namespace's Message_po is not this one
        compile_bpmn(elsewhere)
    assert 'write messageRef="Message_po"' in raised.value.problems[0].message


@pytest.mark.parametrize(("node", "element", "words"), [
    ('<bpmn:serviceTask id="archive" name="Archive"/>', "archive", "the service task calls no system"),
    ('<bpmn:intermediateCatchEvent id="pause"><bpmn:timerEventDefinition id="td"/></bpmn:intermediateCatchEvent>',
     "pause", "the timer has no time: give it a timeDate, timeDuration or timeCycle"),
])
def test_the_engines_parser_refusals_are_said_in_a_process_owners_words(node, element, words) -> None:
    with pytest.raises(BpmnInvalid) as raised:
        compile_bpmn(sequence("p", node))
    [problem] = raised.value.problems
    assert problem.element_id == element and words in problem.message
