"""JUEL and FEEL expressions translated to our evaluator, and what is refused."""
from __future__ import annotations

import pytest

from bpm_server.engine.dialects.cron import CronProblem, check, next_moment
from bpm_server.engine.dialects.expressions import Untranslatable, feel_to_python, juel_to_python
from bpm_server.engine.sandbox import RestrictedEvaluator
from tests.support import at

EVALUATOR = RestrictedEvaluator()


@pytest.mark.parametrize(("juel", "data", "expected"), [
    ("${a > 1000 && b == 'x'}", {"a": 1500, "b": "x"}, True),
    ("${a > 1000 && b == 'x'}", {"a": 999, "b": "x"}, False),
    ("${a gt 10 and b ne 'y'}", {"a": 11, "b": "x"}, True),
    ("${a lt 10 || !ok}", {"a": 11, "ok": False}, True),
    ("${not (a eq 3)}", {"a": 3}, False),
    ("${empty items}", {"items": []}, True),
    ("${empty name}", {"name": None}, True),
    ("${not empty name}", {"name": "Li"}, True),
    ("${customer.address.city == 'Shanghai'}", {"customer": {"address": {"city": "Shanghai"}}}, True),
    ("${order.lines[0].qty ge 2}", {"order": {"lines": [{"qty": 2}]}}, True),
    ("${a mod 2 == 0 ? 'even' : 'odd'}", {"a": 4}, "even"),
    ("#{x le 5}", {"x": 5}, True),
    ("Dear ${name}, total ${total}", {"name": "Li", "total": 3}, "Dear Li, total 3"),
    ("${clarified.equals('no')}", {"clarified": "no"}, True),
    ("${clarified.equals('no')}", {"clarified": "yes"}, False),
    ("${!order.state.equals(\"done\") && a.equals(b)}", {"order": {"state": "open"}, "a": 1, "b": 1}, True),
])
def test_juel_means_the_same_in_python(juel, data, expected):
    assert EVALUATOR.evaluate(juel_to_python(juel), data) == expected


@pytest.mark.parametrize(("feel", "data", "expected"), [
    ("=amount > 1000", {"amount": 1001}, True),
    ("=amount > 1000 and not(vip)", {"amount": 2000, "vip": True}, False),
    ("=status = \"open\" or count >= 3", {"status": "closed", "count": 3}, True),
    ("=order.total != 0", {"order": {"total": 5}}, True),
    ("=quantity * unit_price", {"quantity": 3, "unit_price": 2}, 6),
])
def test_feel_means_the_same_in_python(feel, data, expected):
    assert EVALUATOR.evaluate(feel_to_python(feel), data) == expected


@pytest.mark.parametrize("juel", ["${execution.getVariable('a')}", "${myBean.check(a)}", "${}", "${a.size()}",
                                  "${a.equals()}",
                                  "${a > }", "${task.name}",
                                  "${__class__}"])
def test_untranslatable_juel_is_refused(juel):
    with pytest.raises(Untranslatable):
        juel_to_python(juel)


@pytest.mark.parametrize("feel", ["=count(items) > 2", "=", "=a between 1 and 3"])
def test_untranslatable_feel_is_refused(feel):
    with pytest.raises(Untranslatable):
        feel_to_python(feel)


@pytest.mark.parametrize(("cron", "field"), [
    ("0 0 25 * * ?", "hours"), ("0 61 * * * ?", "minutes"), ("70 * * * * ?", "seconds"),
    ("0 0 9 32 * ?", "day of month"), ("0 0 9 ? 13 *", "month"), ("0 0 9 ? * MOX", "day of week"),
    ("0 0 9 ? * 8", "day of week"), ("0 0/0 * * * ?", "minutes"), ("0 0 9 * *", "6 or 7 fields"),
])
def test_a_bad_cron_field_is_named(cron, field):
    with pytest.raises(CronProblem, match=field):
        check(cron)


def test_cron_next_moments_follow_quartz():
    check("0 0 9 ? * MON-FRI")
    friday = at("2026-03-06T10:00:00+00:00")
    assert next_moment("0 0 9 ? * MON-FRI", friday) == at("2026-03-09T09:00:00+00:00")
    assert next_moment("0 0/10 * * * ?", friday) == at("2026-03-06T10:10:00+00:00")
    assert next_moment("0 30 8 ? * 2", friday) == at("2026-03-09T08:30:00+00:00")  # Quartz 2 = Monday
