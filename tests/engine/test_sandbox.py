"""Behaviour of the RestrictedPython sandbox that runs diagram scripts and conditions."""
from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta

import pytest

from bpm_server.engine import sandbox
from bpm_server.engine.sandbox import RestrictedEvaluator, ScriptError

FIXED_NOW = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)


@pytest.fixture
def evaluator() -> RestrictedEvaluator:
    return RestrictedEvaluator(helpers={"now": lambda: FIXED_NOW, "double": lambda x: 2 * x})


def raises_script_error(call, *args) -> ScriptError:
    with pytest.raises(ScriptError) as info:
        call(*args)
    return info.value


# ---------------------------------------------------------------- expressions


class TestEvaluate:
    def test_gateway_condition_true_and_false(self, evaluator):
        assert evaluator.evaluate('customer_decision == "rejected"', {"customer_decision": "rejected"}) is True
        assert evaluator.evaluate('customer_decision == "rejected"', {"customer_decision": "accepted"}) is False

    def test_compound_condition_with_builtins_and_methods(self, evaluator):
        context = {"rework_rounds": 3, "items": [{"qty": 2}, {"qty": 5}], "status": " Open "}
        expression = 'rework_rounds >= 3 and sum(i["qty"] for i in items) > 6 and status.strip().lower() == "open"'
        assert evaluator.evaluate(expression, context) is True

    def test_surrounding_whitespace_from_xml_is_ignored(self, evaluator):
        assert evaluator.evaluate("\n    amount > 100\n  ", {"amount": 150}) is True

    def test_helpers_are_callable(self, evaluator):
        one_day = {"timedelta_days": timedelta(days=1)}
        assert evaluator.evaluate("now() + timedelta_days", one_day) == FIXED_NOW + timedelta(days=1)
        assert evaluator.evaluate("double(21)", {}) == 42

    def test_context_is_not_mutated(self, evaluator):
        context = {"items": [1, 2], "d": {"k": 1}}
        snapshot = copy.deepcopy(context)
        assert evaluator.evaluate('items.append(3) or d.pop("k") and len(items)', context) == 3
        assert context == snapshot

    def test_undefined_variable_is_a_script_error(self, evaluator):
        error = raises_script_error(evaluator.evaluate, 'customer_decision == "rejected"', {})
        assert error.message == "name 'customer_decision' is not defined"
        assert error.line == 1

    def test_assignment_instead_of_comparison_is_a_syntax_error(self, evaluator):
        error = raises_script_error(evaluator.evaluate, 'customer_decision = "rejected"', {"customer_decision": "x"})
        assert error.message.startswith("syntax error")
        assert error.line == 1

    def test_empty_expression(self, evaluator):
        assert raises_script_error(evaluator.evaluate, "   ", {}).message == "expression is empty"

    def test_statements_are_not_expressions(self, evaluator):
        assert "syntax error" in raises_script_error(evaluator.evaluate, "x = 1", {}).message

    def test_f_strings_work(self, evaluator):
        assert evaluator.evaluate('f"{name}: {amount:.2f}"', {"name": "ACME", "amount": 3.5}) == "ACME: 3.50"


# ---------------------------------------------------------------- scripts


class TestExecute:
    def test_process_style_script(self, evaluator):
        context = {"rejections": [], "rejection_reason": "too expensive", "rework_rounds": 0}
        script = (
            'rejections = rejections + [{"reason": rejection_reason}]\n'
            "rework_rounds = rework_rounds + 1\n"
        )
        result = evaluator.execute(script, context)
        assert result == {
            "rejections": [{"reason": "too expensive"}],
            "rejection_reason": "too expensive",
            "rework_rounds": 1,
        }

    def test_augmented_assignment(self, evaluator):
        script = "n += 1\ntotal -= 2\nfactor *= 3\nratio /= 4\nwords += ['b']\nflags |= 4\ntext += '!'"
        result = evaluator.execute(script, {"n": 1, "total": 10, "factor": 2, "ratio": 2.0, "words": ["a"],
                                            "flags": 1, "text": "hi"})
        assert result == {"n": 2, "total": 8, "factor": 6, "ratio": 0.5, "words": ["a", "b"], "flags": 5, "text": "hi!"}

    def test_comprehensions_loops_and_conditionals(self, evaluator):
        script = (
            "squares = [i * i for i in range(5) if i % 2 == 0]\n"
            "by_name = {o['name']: o['qty'] for o in orders}\n"
            "total = 0\n"
            "for name, qty in by_name.items():\n"
            "    if qty > 1:\n"
            "        total += qty\n"
            "    else:\n"
            "        total -= 1\n"
            "first, (second, third) = 1, (2, 3)\n"
            "ranked = sorted(orders, key=lambda o: -o['qty'])\n"
            "pairs = list(zip(range(2), ['x', 'y']))\n"
            "unique = sorted(set([3, 1, 3]))\n"
        )
        result = evaluator.execute(script, {"orders": [{"name": "a", "qty": 1}, {"name": "b", "qty": 4}]})
        assert result["squares"] == [0, 4, 16]
        assert result["by_name"] == {"a": 1, "b": 4}
        assert result["total"] == 3
        assert (result["first"], result["second"], result["third"]) == (1, 2, 3)
        assert [o["name"] for o in result["ranked"]] == ["b", "a"]
        assert result["pairs"] == [(0, "x"), (1, "y")]
        assert result["unique"] == [1, 3]
        assert "name" in result and "qty" in result  # loop variables are ordinary variables

    def test_dict_list_and_str_methods(self, evaluator):
        script = (
            "items.append(4)\n"
            "items.extend([5])\n"
            "last = items.pop()\n"
            'd["k"] = d.get("missing", 0) + 1\n'
            'd.update({"z": 26})\n'
            'del d["gone"]\n'
            "keys = sorted(d.keys())\n"
            'shout = s.upper().replace("O", "0")\n'
            'parts = "a,b,c".split(",")\n'
            'joined = "-".join(parts)\n'
            "items[0] = 100\n"
            "window = items[1:3]\n"
        )
        result = evaluator.execute(script, {"items": [1, 2, 3], "d": {"gone": True}, "s": "hello world"})
        assert result["items"] == [100, 2, 3, 4]
        assert result["last"] == 5
        assert result["d"] == {"k": 1, "z": 26}
        assert result["keys"] == ["k", "z"]
        assert result["shout"] == "HELL0 W0RLD"
        assert result["joined"] == "a-b-c"
        assert result["window"] == [2, 3]

    def test_context_is_not_mutated(self, evaluator):
        context = {"items": [1, 2], "nested": {"list": [1]}, "count": 1}
        snapshot = copy.deepcopy(context)
        result = evaluator.execute("items.append(3)\nnested['list'].append(2)\ncount += 1\nnew = 1", context)
        assert context == snapshot
        assert result == {"items": [1, 2, 3], "nested": {"list": [1, 2]}, "count": 2, "new": 1}

    def test_helpers_callable_but_not_returned(self, evaluator):
        result = evaluator.execute("started = now()\ntwice = double(5)", {"a": 1})
        assert result == {"a": 1, "started": FIXED_NOW, "twice": 10}
        assert "now" not in result and "double" not in result

    def test_non_data_values_are_dropped(self, evaluator):
        script = (
            "def helper(x):\n"
            "    return x + 1\n"
            "value = helper(1)\n"
            "fn = lambda: 1\n"
            "types = {1, 2}\n"
            "builtin = len\n"
            "err = ValueError('x')\n"
        )
        result = evaluator.execute(script, {})
        assert result == {"value": 2}
        assert all(not key.startswith("_") for key in result)

    def test_del_removes_a_variable(self, evaluator):
        assert evaluator.execute("del temp", {"temp": 1, "keep": 2}) == {"keep": 2}

    def test_variable_shadows_helper_and_is_kept(self, evaluator):
        result = evaluator.execute("result = now", {"now": "2024-01-01"})
        assert result == {"now": "2024-01-01", "result": "2024-01-01"}

    def test_reassigned_helper_name_is_data(self, evaluator):
        assert evaluator.execute("double = 2", {}) == {"double": 2}

    def test_print_is_a_harmless_no_op(self, evaluator):
        assert evaluator.execute("print('hello', 1)\nx = 1", {}) == {"x": 1}

    def test_script_defined_functions_and_try_except(self, evaluator):
        script = (
            "def safe_ratio(a, b):\n"
            "    try:\n"
            "        return a / b\n"
            "    except ZeroDivisionError:\n"
            "        return None\n"
            "r1 = safe_ratio(1, 2)\n"
            "r2 = safe_ratio(1, 0)\n"
        )
        assert evaluator.execute(script, {}) == {"r1": 0.5, "r2": None}

    def test_untouched_non_plain_context_values_are_kept(self, evaluator):
        # a date is not in the plain-data whitelist, but the script did not touch it
        result = evaluator.execute("x = 1", {"day": date(2024, 1, 2)})
        assert result == {"day": date(2024, 1, 2), "x": 1}

    def test_non_plain_values_created_by_the_script_are_dropped(self, evaluator):
        assert evaluator.execute("day2 = day.replace(day=3)", {"day": date(2024, 1, 2)}) == {"day": date(2024, 1, 2)}

    def test_growing_a_list_while_iterating_it_terminates(self, evaluator):
        assert evaluator.execute("for x in items:\n    items.append(x)", {"items": [1, 2]})["items"] == [1, 2, 1, 2]

    def test_empty_script_returns_copy_of_context(self, evaluator):
        context = {"a": [1]}
        result = evaluator.execute("", context)
        assert result == context and result["a"] is not context["a"]


# ---------------------------------------------------------------- attacks


ATTACKS = [
    # (source, words expected in the message)
    ("import os", "import is not allowed"),
    ("from os import path", "import is not allowed"),
    ('__import__("os")', '"__import__" is an invalid variable name'),
    ('open("/etc/passwd").read()', "'open' is not available"),
    ("().__class__.__mro__[1].__subclasses__()", "invalid attribute name"),
    ('getattr(x, "__class__")', "'getattr' is not available"),
    ('eval("1")', "Eval calls are not allowed"),
    ('exec("x=1")', "Exec calls are not allowed"),
    ("globals()", "'globals' is not available"),
    ("locals()", "'locals' is not available"),
    ("vars()", "'vars' is not available"),
    ("type(x)", "'type' is not available"),
    ('compile("1", "f", "eval")', "'compile' is not available"),
    ("(lambda: 0).__code__", '"__code__" is an invalid attribute name'),
    ("x.__dict__", '"__dict__" is an invalid attribute name'),
    ("x._private", '"_private" is an invalid attribute name'),
    ('f"{x.__class__}"', '"__class__" is an invalid attribute name'),
    ('"{0.__class__}".format(1)', "str.format() is not allowed"),
    ('str.format("{0.__class__}", 1)', "str.format() is not allowed"),
    ('"{a.__class__}".format_map({"a": 1})', "str.format_map() is not allowed"),
    ("str.mro()", "access to attribute 'mro' is not allowed"),
    ("def g():\n    yield 1\ng().gi_frame", '"gi_frame" is a restricted name'),
    ("try:\n    pass\nexcept* Exception:\n    pass", "TryStar statements are not allowed"),
    ("class Evil:\n    pass", "class definitions are not allowed"),
    ("while True:\n    pass", "while loops are not allowed"),
    ("t = (1, 2)\nt[0] = 5", "objects of type tuple cannot be modified"),
    ("for i in range(10**12):\n    pass", "range() is limited"),
    ("s = 'a'\ns *= 10**10", "would exceed"),
    ("n = 10\nn **= 10**9", "too large a number"),
    ("s = [0] * 600000\ns += s", "would exceed"),
    ("t = 'a' * 999999\nt += 'bc'", "would exceed"),
    ("n = 1\nn <<= 10**6", "too large a number"),
    ("for x in iter(int, 1):\n    pass", "'iter' is not available"),
]


class TestAttacks:
    @pytest.mark.parametrize(("source", "expected"), ATTACKS, ids=[a[0].splitlines()[-1] for a in ATTACKS])
    def test_attack_is_blocked_with_useful_message(self, evaluator, source, expected):
        error = raises_script_error(evaluator.execute, source, {"x": 1})
        assert expected in error.message
        assert error.line is not None

    @pytest.mark.parametrize(
        "expression",
        ['__import__("os").system("id")', "().__class__", 'open("/etc/passwd")', '"{0.__class__}".format(1)'],
    )
    def test_attacks_in_expressions_are_blocked_too(self, evaluator, expression):
        raises_script_error(evaluator.evaluate, expression, {})

    def test_forbidden_constructs_are_found_at_upload_time(self, evaluator):
        for source in ("import os", "x.__class__", "class A: pass", "while x: pass", 'eval("1")'):
            raises_script_error(evaluator.check, source, "exec")
        raises_script_error(evaluator.check, "__import__('os')", "eval")

    def test_runtime_only_problems_pass_the_upload_check(self, evaluator):
        # Names are resolved at run time, so these compile; they fail when run.
        evaluator.check('open("/etc/passwd")', "exec")
        evaluator.check('"{0}".format(1)', "eval")

    def test_no_dangerous_builtins_are_reachable(self):
        reachable = set(sandbox._SAFE_BUILTINS)
        forbidden = {"open", "eval", "exec", "compile", "getattr", "setattr", "delattr", "globals",
                     "locals", "vars", "type", "object", "input", "__import__", "__build_class__",
                     "breakpoint", "help", "dir", "memoryview", "super"}
        assert not reachable & forbidden

    def test_context_cannot_override_the_guards(self, evaluator):
        # A variable named like a guard must not replace it.
        context = {"_getattr_": lambda obj, name: obj.__class__, "__builtins__": {"open": open}}
        raises_script_error(evaluator.execute, '"{0}".format(1)', context)
        raises_script_error(evaluator.execute, 'open("/etc/passwd")', context)

    def test_caught_guard_errors_do_not_leak_anything(self, evaluator):
        script = (
            "try:\n"
            '    y = "{0.__class__}".format(1)\n'
            "except Exception as e:\n"
            "    y = 'blocked'\n"
        )
        assert evaluator.execute(script, {})["y"] == "blocked"


# ---------------------------------------------------------------- errors


class TestErrors:
    def test_syntax_error_has_line_number_and_source(self, evaluator):
        error = raises_script_error(evaluator.execute, "a = 1\nif a\n    b = 2\n", {})
        assert error.line == 2
        assert error.source_line == "if a"
        assert "syntax error" in error.message and "':'" in error.message
        assert "line 2" in str(error)

    def test_undefined_name_has_line_number(self, evaluator):
        error = raises_script_error(evaluator.execute, "a = 1\nb = 2\nc = undefined_thing + a\n", {})
        assert error.message == "name 'undefined_thing' is not defined"
        assert error.line == 3
        assert error.source_line == "c = undefined_thing + a"

    def test_runtime_error_line_inside_function(self, evaluator):
        script = "def f(d):\n    return d['missing']\n\nvalue = f({})\n"
        error = raises_script_error(evaluator.execute, script, {})
        assert error.message == "KeyError: 'missing'"
        assert error.line == 2
        assert isinstance(error.__cause__, KeyError)

    def test_error_raised_by_script(self, evaluator):
        error = raises_script_error(evaluator.execute, "x = 1\nraise ValueError('amount missing')", {})
        assert (error.message, error.line) == ("ValueError: amount missing", 2)

    def test_error_raised_in_a_helper_points_at_the_calling_line(self):
        def broken() -> None:
            raise RuntimeError("clock unavailable")

        evaluator = RestrictedEvaluator({"broken": broken})
        error = raises_script_error(evaluator.execute, "a = 1\nb = broken()", {})
        assert (error.message, error.line) == ("RuntimeError: clock unavailable", 2)

    def test_runaway_recursion_is_a_script_error(self, evaluator):
        error = raises_script_error(evaluator.execute, "def f():\n    return f()\nf()", {})
        assert "RecursionError" in error.message

    def test_compile_problem_reports_its_line(self, evaluator):
        error = raises_script_error(evaluator.check, "a = 1\nb = 2\nimport os", "exec")
        assert (error.message, error.line, error.source_line) == ("import is not allowed", 3, "import os")

    def test_check_accepts_valid_code(self, evaluator):
        evaluator.check("amount > 100 and status in ('open', 'new')", "eval")
        evaluator.check("total = sum(x['qty'] for x in items)\n", "exec")

    def test_check_rejects_unknown_mode(self, evaluator):
        with pytest.raises(ValueError):
            evaluator.check("1", "single")


# ---------------------------------------------------------------- construction & caching


class TestSetup:
    def test_helpers_must_be_callables(self):
        with pytest.raises(TypeError):
            RestrictedEvaluator({"limit": 5})  # type: ignore[dict-item]

    def test_helper_names_must_be_public_identifiers(self):
        with pytest.raises(ValueError):
            RestrictedEvaluator({"_hidden": len})
        with pytest.raises(ValueError):
            RestrictedEvaluator({"not valid": len})

    def test_compiled_code_is_cached(self, evaluator):
        sandbox._compile.cache_clear()
        for value in range(5):
            evaluator.evaluate("amount > 100", {"amount": value})
        info = sandbox._compile.cache_info()
        assert info.misses == 1 and info.hits == 4

    def test_module_does_not_import_spiffworkflow(self):
        import ast
        import inspect

        tree = ast.parse(inspect.getsource(sandbox))
        imported = {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not any(name.startswith("SpiffWorkflow") for name in imported)
