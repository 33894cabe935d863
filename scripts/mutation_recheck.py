"""A pytest plugin: run one test file once per mutant, in one process, stopping at a mutant's first failure.

mutmut's ``--survivors`` reuses the test list it measured at the start of the run, so a test
written afterwards is never tried against the survivors, and one pytest process per mutant costs
seconds of imports each on a loaded machine. mutmut's trampoline reads ``MUTANT_UNDER_TEST`` on
every call, so switching that variable between passes over the collected tests switches the mutant.
Run it in a copy of a run's ``mutants/`` directory whose ``tests`` points at the current tests
(docs/mutation.md, "Checking new tests against survivors"):

    MUTATION_RECHECK_LIST=names.txt MUTATION_RECHECK_OUT=out.txt PYTHONPATH=.:<project>/scripts \\
        nice -n 19 <project>/.venv/bin/python -m pytest -p mutation_recheck -p no:cacheprovider \\
        --import-mode=importlib -n 0 -q tests/<one file>.py -k sqlite

Each line of the output is ``<mutant>: killed by <test>`` or ``<mutant>: SURVIVED``; the first
line is the unmutated code (``BASELINE``), which must survive. One test file only: module and
session fixtures stay set up across passes, function fixtures are torn down after each test.
A mutant that makes a test hang hangs the pass: leave mutmut's timeouts out of the list.
"""
from __future__ import annotations

import os

import pytest
from _pytest.runner import runtestprotocol


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    names_file = os.environ.get("MUTATION_RECHECK_LIST")
    if not names_file:
        return None
    with open(names_file) as listed:
        mutants = [line.strip() for line in listed if line.strip()]
    items = session.items
    with open(os.environ["MUTATION_RECHECK_OUT"], "a") as out:
        for mutant in ["BASELINE", *mutants]:
            os.environ["MUTANT_UNDER_TEST"] = "" if mutant == "BASELINE" else mutant
            verdict = "SURVIVED"
            for i, item in enumerate(items):
                following = items[i + 1] if i + 1 < len(items) else items[0]
                if any(report.failed for report in runtestprotocol(item, nextitem=following, log=False)):
                    verdict = f"killed by {item.name}"
                    break
            out.write(f"{mutant}: {verdict}\n")
            out.flush()
    return True
