"""Whatever goes wrong inside an engine step ends as an ``EngineError`` naming the element.

The server records an ``EngineError`` as the instance's error; anything else
would be a 500 and an instance left half-moved. These tests drive the engine
adapter the way the server does (start, load, complete, dump, deliver).
"""
from __future__ import annotations

from xml.sax.saxutils import escape

import pytest

from bpm_server.engine.adapter import BpmnInvalid, EngineError, Run, compile_bpmn
from bpm_server.engine.sandbox import Budgets, RestrictedEvaluator
from tests.fixtures.diagrams import HEADER, script_task, sequence, user_task


def call_activity(task_id: str, called: str) -> str:
    return f'<bpmn:callActivity id="{task_id}" name="{task_id}" calledElement="{called}"/>'


def multi_instance_script(task_id: str, cardinality: str, script: str = "done = True") -> str:
    return (f'<bpmn:scriptTask id="{task_id}" name="{task_id}">'
            f'<bpmn:multiInstanceLoopCharacteristics isSequential="false">'
            f'<bpmn:loopCardinality>{escape(cardinality)}</bpmn:loopCardinality>'
            f'</bpmn:multiInstanceLoopCharacteristics><bpmn:script>{escape(script)}</bpmn:script></bpmn:scriptTask>')


def loop(process_id: str, body_task: str, body_id: str, condition: str) -> bytes:
    """start -> body -> check; check loops back to body while ``condition``, else ends."""
    body = ('<bpmn:startEvent id="start"/>' + body_task +
            '<bpmn:exclusiveGateway id="check" default="finish"/><bpmn:endEvent id="end"/>'
            f'<bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="{body_id}"/>'
            f'<bpmn:sequenceFlow id="f1" sourceRef="{body_id}" targetRef="check"/>'
            f'<bpmn:sequenceFlow id="again" sourceRef="check" targetRef="{body_id}">'
            f'<bpmn:conditionExpression>{escape(condition)}</bpmn:conditionExpression></bpmn:sequenceFlow>'
            '<bpmn:sequenceFlow id="finish" sourceRef="check" targetRef="end"/>')
    return (HEADER + f'<bpmn:process id="{process_id}" isExecutable="true">{body}</bpmn:process>'
            '</bpmn:definitions>').encode()


def processes(*bodies: tuple[str, ...]) -> bytes:
    """Several executable processes in one diagram: (process id, *its nodes), each start -> nodes -> end."""
    parts = []
    for pid, *nodes in bodies:
        xml = sequence(pid, *nodes).decode()
        xml = xml[xml.index("<bpmn:process"):xml.index("</bpmn:definitions>")]
        for ref in ('id="start"', 'id="end"', 'Ref="start"', 'Ref="end"', 'sequenceFlow id="f'):  # ids: per document
            xml = xml.replace(ref, ref.replace('"', f'"{pid}_', 1))
        parts.append(xml)
    return (HEADER + "".join(parts) + "</bpmn:definitions>").encode()


MESSAGES = """
  <bpmn:collaboration id="collab">
    <bpmn:correlationKey name="order">
      <bpmn:correlationPropertyRef>order_no</bpmn:correlationPropertyRef>
    </bpmn:correlationKey>
  </bpmn:collaboration>
  <bpmn:message id="paid" name="paid"/>
  <bpmn:correlationProperty id="order_no" name="Order number">
    <bpmn:correlationPropertyRetrievalExpression messageRef="paid">
      <bpmn:formalExpression>EXPRESSION</bpmn:formalExpression>
    </bpmn:correlationPropertyRetrievalExpression>
  </bpmn:correlationProperty>
"""


def message_wait(expression: str) -> bytes:
    catch = ('<bpmn:intermediateCatchEvent id="wait_paid"><bpmn:messageEventDefinition id="md" messageRef="paid"/>'
             '</bpmn:intermediateCatchEvent>')
    xml = sequence("pay", catch, user_task("ship")).decode()
    head, rest = xml.split("<bpmn:process", 1)
    return (head + MESSAGES.replace("EXPRESSION", escape(expression)) + "<bpmn:process" + rest).encode()


@pytest.fixture
def evaluator() -> RestrictedEvaluator:
    return RestrictedEvaluator(budgets=Budgets(cpu_seconds=0.2))


def engine_error(call, *args) -> EngineError:
    with pytest.raises(EngineError) as info:
        call(*args)
    return info.value


# ---------------------------------------------------------------- budgets, seen from the engine


def test_a_runaway_script_stops_with_the_cpu_budget_and_its_element(evaluator):
    model = compile_bpmn(sequence("spin", script_task("compute", "for i in range(10**6):\n"
                                                                  "    for j in range(10**6):\n        pass"),
                                  user_task("t")))
    error = engine_error(Run.start, model, evaluator, {})
    assert (error.element_id, error.budget) == ("compute", "cpu")
    assert "CPU time budget exceeded at element compute" in error.message


def test_a_huge_string_is_refused_with_the_value_size_budget(evaluator):
    model = compile_bpmn(sequence("big", user_task("first"), script_task("grow", "x = 'a' * 10**10"),
                                  user_task("t")))
    run = Run.start(model, evaluator, {})
    error = engine_error(run.complete, run.ready_tasks()[0].engine_task_id, {})
    assert (error.element_id, error.budget) == ("grow", "value size")
    assert error.line == 1


def test_a_huge_power_in_a_gateway_condition_is_refused(evaluator):
    model = compile_bpmn(loop("cond", script_task("work", "n = 1"), "work", "10 ** 10 ** 8 > n"))
    error = engine_error(Run.start, model, evaluator, {})
    assert (error.element_id, error.budget) == ("check", "value size")


def test_call_activities_nested_deeper_than_the_budget_end_with_the_call_depth_budget():
    # p0 calls p1 calls p2 ... calls p7: eight levels, no cycle (the upload check refuses cycles).
    chain = [(f"p{i}", call_activity(f"call_p{i + 1}", f"p{i + 1}")) for i in range(7)] + [("p7", user_task("t"))]
    model = compile_bpmn(processes(*chain), "p0")
    assert Run.start(model, RestrictedEvaluator(), {}).ready_tasks()[0].name == "t"

    error = engine_error(Run.start, model, RestrictedEvaluator(budgets=Budgets(max_call_depth=5)), {})
    assert (error.element_id, error.budget) == ("call_p6", "call depth")  # the sixth call inside a call
    assert "more than 5 call activities" in error.message


def test_an_endless_automatic_loop_ends_with_the_engine_step_budget():
    evaluator = RestrictedEvaluator(budgets=Budgets(max_engine_steps=100))
    model = compile_bpmn(loop("spin", script_task("bump", "n = 1"), "bump", "True"))
    error = engine_error(Run.start, model, evaluator, {})
    assert error.budget == "engine steps"
    assert error.element_id in {"bump", "check"}
    assert "more than 100 engine steps" in error.message


def test_a_huge_multi_instance_ends_with_the_engine_step_budget():
    evaluator = RestrictedEvaluator(budgets=Budgets(max_engine_steps=50))
    model = compile_bpmn(sequence("mi", multi_instance_script("each", "1000"), user_task("t")))
    error = engine_error(Run.start, model, evaluator, {})
    assert (error.element_id, error.budget) == ("each", "engine steps")
    # The same diagram within the budget runs.
    assert Run.start(compile_bpmn(sequence("mi", multi_instance_script("each", "10"), user_task("t"))),
                     evaluator, {}).ready_tasks()[0].name == "t"


def test_the_step_budget_is_per_command(evaluator):
    # 60 rounds of a human loop, 3 engine steps each, under a budget of 10 steps per command.
    small = RestrictedEvaluator(budgets=Budgets(max_engine_steps=10))
    model = compile_bpmn(loop("rework", user_task("work"), "work", "redo"))
    run = Run.start(model, small, {})
    for _ in range(60):
        run = Run.load(model, run.dump(), small)
        run.complete(run.ready_tasks()[0].engine_task_id, {"redo": True})
    assert [t.name for t in run.ready_tasks()] == ["work"]


# ---------------------------------------------------------------- the loop guard (G1)


def test_a_rework_loop_run_500_times_never_stalls_silently(evaluator):
    model = compile_bpmn(loop("rework", user_task("work"), "work", "redo"))
    run = Run.start(model, evaluator, {})
    error = None
    for _ in range(500):
        ready = run.ready_tasks()
        assert ready, "the instance has no ready task but did not fail: a silent stall"
        assert not run.is_completed
        try:
            run.complete(ready[0].engine_task_id, {"redo": True})
        except EngineError as exc:
            error = exc
            break
    if error is not None:  # SpiffWorkflow 3.2 cannot go on; it must say so, naming where
        assert (error.element_id, error.budget) == ("work", "loop depth")
        assert error.message.startswith("loop too deep at element work")
    else:
        assert [t.name for t in run.ready_tasks()] == ["work"]


# ---------------------------------------------------------------- no raw exception escapes


@pytest.mark.parametrize("cardinality", ["'three'", "None", "2.5"])
def test_a_bad_multi_instance_cardinality_names_the_element(evaluator, cardinality):
    model = compile_bpmn(sequence("mi", user_task("first"), multi_instance_script("each", cardinality),
                                  user_task("t")))
    run = Run.start(model, evaluator, {})
    error = engine_error(run.complete, run.ready_tasks()[0].engine_task_id, {})
    assert error.element_id == "each"
    assert "TypeError" in error.message


def test_a_script_error_inside_a_completion_names_the_element(evaluator):
    model = compile_bpmn(sequence("s", user_task("first"), script_task("calc", "total = amount * 2"),
                                  user_task("t")))
    run = Run.start(model, evaluator, {})
    error = engine_error(run.complete, run.ready_tasks()[0].engine_task_id, {})
    assert error.element_id == "calc" and "amount" in error.message


def test_a_correlation_that_cannot_be_computed_names_the_event(evaluator):
    model = compile_bpmn(message_wait("payment['order']"))
    run = Run.start(model, evaluator, {})
    error = engine_error(run.waiting_messages)
    assert error.element_id == "wait_paid" and "correlation" in error.message
    error = engine_error(run.deliver_message, "paid", {"amount": 3}, {})
    assert error.element_id == "wait_paid" and "correlation" in error.message


def test_a_correlation_that_runs_away_names_the_event_and_the_budget(evaluator):
    model = compile_bpmn(message_wait("sum(1 for i in range(10**6) for j in range(10**6))"))
    run = Run.start(model, evaluator, {})
    error = engine_error(run.deliver_message, "paid", {}, {})
    assert (error.element_id, error.budget) == ("wait_paid", "cpu")


def test_a_stored_state_that_cannot_be_read_is_an_engine_error(evaluator):
    model = compile_bpmn(sequence("s", user_task("t")))
    for state in ("", "{not json", '{"tasks": 3}'):
        error = engine_error(Run.load, model, state, evaluator)
        assert "stored engine state cannot be read" in error.message


def test_data_that_cannot_be_stored_names_the_element(evaluator):
    model = compile_bpmn(sequence("s", user_task("t")))
    run = Run.start(model, evaluator, {})
    task = next(t for t in run.workflow.get_tasks() if t.task_spec.name == "t")
    task.data["handle"] = object()  # what a buggy helper or engine change could leave behind
    error = engine_error(run.dump)
    assert error.element_id == "t" and "cannot be stored" in error.message


def test_a_healthy_run_is_unaffected(evaluator):
    model = compile_bpmn(sequence("ok", script_task("calc", "total = sum(x * 2 for x in items)"), user_task("t")))
    run = Run.start(model, evaluator, {"items": [1, 2, 3]})
    run = Run.load(model, run.dump(), evaluator)
    assert run.ready_tasks()[0].data["total"] == 12


# ---------------------------------------------------------------- the upload check


def test_a_process_that_calls_itself_is_refused_at_upload_naming_the_call_activity():
    with pytest.raises(BpmnInvalid) as info:
        compile_bpmn(sequence("selfcall", user_task("first"), call_activity("again", "selfcall")))
    [problem] = info.value.problems
    assert problem.element_id == "again"
    assert "selfcall -> selfcall" in problem.message


def test_a_call_cycle_through_another_process_is_refused_at_upload():
    xml = processes(("caller", call_activity("to_callee", "callee")),
                    ("callee", user_task("t"), call_activity("back_to_caller", "caller")))
    with pytest.raises(BpmnInvalid) as info:
        compile_bpmn(xml, "caller")
    assert [p.element_id for p in info.value.problems] == ["back_to_caller"]
    assert "caller -> callee -> caller" in info.value.problems[0].message


def test_calling_the_same_process_twice_in_a_row_is_not_a_cycle():
    xml = processes(("caller", call_activity("first_call", "callee"), call_activity("second_call", "callee")),
                    ("callee", user_task("t")))
    run = Run.start(compile_bpmn(xml, "caller"), RestrictedEvaluator(), {})
    assert [t.name for t in run.ready_tasks()] == ["t"]
