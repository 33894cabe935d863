"""Budgets of diagram code: CPU time, memory and size of values, per evaluation.

Each case is something a process owner can write by mistake (or on purpose)
that, without a budget, held a request for minutes or grew the server until
the kernel killed it. With the budgets it ends in a ``BudgetExceeded`` that
names the budget and the line, and the next evaluation runs normally.
"""
from __future__ import annotations

import pytest

from bpm_server.engine.sandbox import BudgetExceeded, Budgets, RestrictedEvaluator, ScriptError

# A small CPU budget keeps the runaway cases short.
FAST = Budgets(cpu_seconds=0.2)


@pytest.fixture
def evaluator() -> RestrictedEvaluator:
    return RestrictedEvaluator(budgets=FAST)


def budget_error(call, *args) -> BudgetExceeded:
    with pytest.raises(BudgetExceeded) as info:
        call(*args)
    return info.value


# ---------------------------------------------------------------- sizes, refused before they are computed

SIZE_CASES = [
    "x = 'a' * 10**10",
    "x = 10 ** 10 ** 8",
    "x = [0] * 10**9",
    "x = (1, 2) * 10**9",
    "x = 1 << 10**9",
    "n = 10**50000\nx = n * n * n",
    "s = 'a' * 1000\nfor i in range(30):\n    s += s",
    "s = 'a' * 1000\nfor i in range(30):\n    s = s + s",
    "s = [1]\nfor i in range(40):\n    s *= 2",
    "x = f'{1:>{10**10}}'",
    "x = '%10000000000d' % 1",
    "x = '%*d' % (10**10, 1)",
    "x = 'ab'.replace('', 'x' * 10**6)",
    "x = ','.join(['a' * 1000] * 10**4)",
    "x = 'a'.ljust(10**10)",
    "x = str.rjust('a', 10**10)",
    "x = 'a\\t'.expandtabs(10**10)",
    "x = 'aaaa'.translate({97: 'b' * 10**6})",
    "x = [1]\nfor i in range(40):\n    x.extend(x)",
    "x = (1).to_bytes(10**10, 'big')",
    "x = [0] * 10**6\ny = [x] * 10**6",  # a million references to a million-element list: too big to store
]


@pytest.mark.parametrize("script", SIZE_CASES, ids=[c.splitlines()[-1] for c in SIZE_CASES])
def test_oversized_values_are_refused(evaluator, script):
    error = budget_error(evaluator.execute, script, {})
    assert error.budget == "value size"
    assert "value size budget exceeded" in error.message


def test_the_size_limit_is_the_deployments():
    small = RestrictedEvaluator(budgets=Budgets(max_value_length=100))
    assert small.execute("x = 'a' * 100", {})["x"] == "a" * 100
    assert budget_error(small.execute, "x = 'a' * 101", {}).budget == "value size"
    assert budget_error(small.evaluate, "[0] * 101", {}).budget == "value size"


def test_sizes_are_checked_in_conditions_too(evaluator):
    error = budget_error(evaluator.evaluate, "len('a' * 10**10) > 3", {})
    assert error.budget == "value size"


def test_ordinary_arithmetic_and_text_still_work(evaluator):
    result = evaluator.execute(
        "total = 2 ** 64 + 3 * 7\nlabel = 'Nr. %05d' % 42 + '-' * 3\npadded = f'{total:>30}'\n"
        "joined = ', '.join(['a', 'b'])\nitems = [1, 2] * 3\nitems.extend([9])\nshifted = 1 << 10\n"
        "text = 'a-b'.replace('-', '+')\nrate = 1.5 ** 2", {})
    assert result["total"] == 2 ** 64 + 21
    assert result["label"] == "Nr. 00042---"
    assert result["padded"] == f"{2 ** 64 + 21:>30}"
    assert result["joined"] == "a, b" and result["items"] == [1, 2, 1, 2, 1, 2, 9]
    assert result["shifted"] == 1024 and result["text"] == "a+b" and result["rate"] == 2.25



def test_replace_is_refused_exactly_when_its_result_would_exceed_the_limit(evaluator):
    # The length is worked out before the text is built: each case sits on the limit (10**6).
    fits = evaluator.execute(
        "same = ('a' * 999990).replace('a', 'b')\n"  # as long as before
        "none = ('a' * 10).replace('a', 'x' * 999999, 0)\n"  # a count of 0 replaces nothing
        "some = 'aaa'.replace('a', 'bb', 2)\n"
        "edge = ('ab' * 10).replace('a', 'x' * 99999)\n"  # 20 + 10 * 99998 = 10**6
        "gaps = 'a'.replace('', 'x' * 499999)", {})  # 1 + 2 * 499999 = 999999
    assert fits["same"] == "b" * 999990 and fits["none"] == "a" * 10 and fits["some"] == "bbbba"
    assert len(fits["edge"]) == 10**6 and len(fits["gaps"]) == 999999
    for script in ("x = ('ab' * 10).replace('a', 'x' * 99999 + 'y')", "x = 'a'.replace('', 'x' * 500000)",
                   "x = ('ab' * 10).replace('a', 'x' * 999999, 1)"):
        error = budget_error(evaluator.execute, script, {})
        assert error.budget == "value size" and "would exceed" in error.message, script


def test_int_to_bytes_works_and_its_length_is_capped_however_it_is_given(evaluator):
    # bytes are not kept as process data: each result is read back as its list of byte values.
    result = evaluator.execute("a = list((255).to_bytes())\nb = list((1).to_bytes(2, 'big'))\n"
                               "c = list((1).to_bytes(length=2, byteorder='little'))", {})
    assert (result["a"], result["b"], result["c"]) == ([255], [0, 1], [1, 0])
    for script in ("x = (1).to_bytes(2 * 10**6, 'big')", "x = (1).to_bytes(length=2 * 10**6, byteorder='big')"):
        error = budget_error(evaluator.execute, script, {})
        assert error.budget == "value size" and "int.to_bytes() would exceed" in error.message, script


def test_the_refusal_names_the_operation(evaluator):
    error = budget_error(evaluator.execute, "x = [1]\nfor i in range(40):\n    x.extend(x)", {})
    assert "list.extend() would exceed" in error.message
    error = budget_error(evaluator.execute, "s = [0] * 600000\ns += s", {})
    assert "result of += would exceed" in error.message

# ---------------------------------------------------------------- CPU time

CPU_CASES = [
    "for i in range(10**6):\n    for j in range(10**6):\n        pass",
    "x = [i * j for i in range(10**6) for j in range(10**6)]",
    "x = sum(1 for i in range(10**6) for j in range(10**6))",
    "def f(n):\n    return 0 if n == 0 else f(n - 1) + f(n - 1)\nx = f(60)",
    "f = lambda n: 0 if n == 0 else f(n - 1) + f(n - 1)\nx = f(60)",
    # catching everything does not keep it running
    "for i in range(10**6):\n    try:\n        for j in range(10**6):\n            pass\n    except:\n        pass",
    "for i in range(10**6):\n    try:\n        for j in range(10**6):\n            pass\n"
    "    except Exception:\n        pass",
]


@pytest.mark.parametrize("script", CPU_CASES, ids=[c.splitlines()[-1] for c in CPU_CASES])
def test_endless_computation_is_stopped_by_the_cpu_budget(evaluator, script):
    error = budget_error(evaluator.execute, script, {})
    assert error.budget == "cpu"
    assert "CPU time budget exceeded" in error.message and "0.2 s" in error.message
    assert error.line is not None


def test_a_condition_that_computes_forever_is_stopped(evaluator):
    error = budget_error(evaluator.evaluate, "any(i == -1 for i in range(10**6) for j in range(10**6))", {})
    assert error.budget == "cpu"


def test_while_true_never_runs(evaluator):
    # Refused when the diagram is uploaded (and so never started).
    with pytest.raises(ScriptError) as info:
        evaluator.check("while True:\n    pass", "exec")
    assert "while loops are not allowed" in info.value.message


def test_the_budget_is_per_evaluation(evaluator):
    # Many short evaluations in a row never add up to one long one.
    for _ in range(5):
        assert evaluator.execute("x = sum(i for i in range(100000))", {})["x"] == 4999950000
    budget_error(evaluator.execute, CPU_CASES[0], {})
    assert evaluator.execute("for i in range(3):\n    y = i", {})["y"] == 2


# ---------------------------------------------------------------- memory


def test_memory_growth_is_stopped_by_the_memory_budget():
    evaluator = RestrictedEvaluator(budgets=Budgets(cpu_seconds=30, memory_bytes=64 * 1024 * 1024))
    error = budget_error(evaluator.execute, "x = [list(range(10**6)) for i in range(1000)]", {})
    assert error.budget == "memory"
    assert "64 MB" in error.message


def test_a_result_bigger_than_the_memory_budget_is_refused_before_it_is_built():
    # 10**6 list slots are 8 MB: counted ahead against a 4 MB budget, the list is never made
    # (after the fact, the script would already be done and nothing would stop it).
    evaluator = RestrictedEvaluator(budgets=Budgets(cpu_seconds=30, memory_bytes=4 * 1024 * 1024))
    error = budget_error(evaluator.execute, "x = [0] * 1000000", {})
    assert error.budget == "memory"
    assert "4 MB" in error.message
    # The same list on the default budget is fine.
    assert len(RestrictedEvaluator().execute("x = [0] * 1000000", {})["x"]) == 1000000


# ---------------------------------------------------------------- configuration


def test_budgets_must_be_positive():
    with pytest.raises(ValueError, match="cpu_seconds"):
        Budgets(cpu_seconds=0)
    with pytest.raises(ValueError, match="max_engine_steps"):
        Budgets(max_engine_steps=-1)


def test_a_deployment_sets_its_budgets_in_the_environment():
    from bpm_server.app import script_budgets
    from bpm_server.config import Config

    defaults = script_budgets(Config.from_env({}, env_file=None))
    assert defaults == Budgets()  # safe defaults: 1 s, 256 MB, 1,000,000 elements, 10,000 steps, depth 20
    assert (defaults.cpu_seconds, defaults.memory_bytes, defaults.max_engine_steps, defaults.max_call_depth) == (
        1.0, 256 * 1024 * 1024, 10_000, 20)

    config = Config.from_env({"BPM_SCRIPT_CPU_SECONDS": "2.5", "BPM_SCRIPT_MEMORY_MB": "512",
                              "BPM_SCRIPT_MAX_VALUE_LENGTH": "5000", "BPM_SCRIPT_MAX_INT_BITS": "64",
                              "BPM_ENGINE_MAX_STEPS": "300", "BPM_ENGINE_MAX_CALL_DEPTH": "3"}, env_file=None)
    assert script_budgets(config) == Budgets(cpu_seconds=2.5, memory_bytes=512 * 1024 * 1024,
                                             max_value_length=5000, max_int_bits=64,
                                             max_engine_steps=300, max_call_depth=3)


@pytest.mark.parametrize("value", ["0", "-1", "lots"])
def test_a_budget_that_is_not_a_positive_number_is_refused_at_start_up(value):
    from bpm_server.config import Config

    with pytest.raises(ValueError, match="BPM_ENGINE_MAX_STEPS"):
        Config.from_env({"BPM_ENGINE_MAX_STEPS": value}, env_file=None)
