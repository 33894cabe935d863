"""``make mutation``: mutmut over the modules where a silent change hurts most.

Each module runs against the test files meant to catch it (not the whole suite),
in a working directory of its own, ``var/mutation/<name>/``, so two runs never
share mutmut's ``mutants/`` tree or its results. That directory links the
project's files (mutmut copies them into ``mutants/``) and holds a ``setup.cfg``
with the module's ``[mutmut]`` section; the project's ``pyproject.toml`` has no
``[tool.mutmut]`` table, so mutmut reads that file. docs/mutation.md has the
scores and the reasons behind every mutant that survives.

    scripts/mutation.py                  every module, cheapest first
    scripts/mutation.py sla/breaches.py  one (its name or its path)
    scripts/mutation.py NAME --show      the diff of every survivor of one module
    scripts/mutation.py NAME --score     the last run's score
    scripts/mutation.py NAME --survivors run again only the survivors (after a new test)
    scripts/mutation.py NAME --rest      run what an interrupted run did not reach
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
# What the tests read besides the code: the models, the forms, pytest's settings.
LINKED = ["bpm_server", "integrations", "tests", "process_models", "forms", "pyproject.toml"]


@dataclass(frozen=True)
class Target:
    name: str
    sources: tuple[str, ...]
    tests: tuple[str, ...]
    # mutmut mutant-name globs; empty means every function of the sources.
    functions: tuple[str, ...] = ()
    # Tests left out, each with its reason in docs/mutation.md.
    deselect: tuple[str, ...] = ()
    # A pytest -k expression, e.g. "not postgresql": the module's behaviour does not depend on
    # the database, so the SQLite half of the backend-parametrized tests is enough.
    keyword: str = ""


_TASKS = "bpm_server.tasks.service.x_"
_COMMANDS = "bpm_server.runtime.commands.x_"

# Cheapest first: a full run does them in this order.
TARGETS = [
    # The webhook verifies inbound signatures; invoicing and channels check outbound ones.
    Target("signing", ("integrations/signing.py",),
           ("tests/integrations/test_webhook.py", "tests/integrations/test_invoicing.py",
            "tests/integrations/test_channels.py")),
    Target("sandbox", ("bpm_server/engine/sandbox.py",),
           ("tests/engine/test_sandbox.py", "tests/engine/test_budgets.py"),
           # It measures CPU time, which mutmut's trampoline around every call inflates.
           deselect=("tests/engine/test_budgets.py::test_the_budget_is_per_evaluation",),
           # Narrowed (1234 mutants in all, some 2 h here): the size caps on operations.
           functions=tuple(f"bpm_server.engine.sandbox.x{f}__mutmut_*" for f in (
               "ǁ_Meterǁbinop", "ǁ_Meterǁinplacevar", "ǁ_Meterǁ_check_operation", "ǁ_Meterǁ_length",
               "ǁ_Meterǁ_bits", "ǁ_Meterǁcheck_memory", "ǁ_Meterǁ_list_extend", "ǁ_Meterǁ_int_to_bytes",
               "__replace_length"))),
    Target("calendar", ("bpm_server/sla/calendar.py",),
           ("tests/sla/test_calendar.py", "tests/sla/test_calendar_config.py"),
           # A child process: it imports the installed code, not the mutant.
           deselect=("tests/sla/test_calendar_config.py::test_the_cli_refuses_to_start_with_a_bad_calendar_file",),
           keyword="not postgresql",
           # Narrowed: due-date arithmetic, working days and make-up days, durations as written.
           functions=tuple(f"bpm_server.sla.calendar.x{f}__mutmut_*" for f in (
               "ǁBusinessCalendarǁadd_working_time", "ǁBusinessCalendarǁworking_time_between",
               "ǁBusinessCalendarǁworking_minutes_between", "ǁBusinessCalendarǁminutes_of",
               "ǁBusinessCalendarǁ_decide_uncached", "ǁBusinessCalendarǁ_periods_uncached",
               "ǁBusinessCalendarǁ_periods_from", "_parse_working_duration", "__provisional_days_off"))),
    Target("breaches", ("bpm_server/sla/breaches.py",),
           ("tests/sla/test_breach_log.py", "tests/sla/test_breach_chain.py"),
           # They run `bpm-server audit` in a child process, which imports the installed code,
           # not the mutant, and took over 120 s each under mutmut here (the in-process API
           # checks of the same chain stay). tests/sla/test_breach_checkpoints.py is all such.
           deselect=tuple(f"tests/sla/test_breach_log.py::test_audit_verify_detects_{t}" for t in (
               "an_edited_entry", "a_removed_last_entry", "a_removed_middle_entry", "a_removed_head_row")),
           # Narrowed (467 mutants in all): the chain and the CSV formula guard.
           functions=tuple(f"bpm_server.sla.breaches.x_{f}__mutmut_*" for f in (
               "_digest", "_hashed_fields", "_base_fields", "verify", "_cell"))),
    # Ladders: narrowed to their firing, the rungs run per timer (issue 18: a timer applying
    # every later rung). Their validation (escalation.py, on upload) is left for a later run.
    Target("escalation", ("bpm_server/sla/policies.py", "bpm_server/sla/service.py"),
           ("tests/sla/test_sla_definitions_upload.py", "tests/sla/test_escalation_gaps.py",
            "tests/sla/test_sla_flow.py"),
           # Narrowed: which rungs one timer runs. escalation_entries (29 mutants) and
           # service._breach (106) are left for a later run (docs/mutation.md).
           (*(f"bpm_server.sla.policies.x_{f}__mutmut_*" for f in ("apply", "later_rungs", "_rules")),
            "bpm_server.sla.service.x_fire__mutmut_*"),
           keyword="not postgresql"),
    Target("erp", ("bpm_server/erp/service.py",),
           ("tests/integrations/test_invoicing.py", "tests/integrations/test_webhook.py"), keyword="not postgresql"),
    # The claim/complete path, by function: the rest of these two files is other verbs.
    Target("claim_complete", ("bpm_server/tasks/service.py", "bpm_server/runtime/commands.py"),
           ("tests/tasks_verbs/test_verbs_api.py", "tests/tasks_verbs/test_claim_refusals.py",
            "tests/api/test_concurrency.py", "tests/api/test_access.py"),
           tuple(f"{_TASKS}{f}__mutmut_*" for f in (
               "claim", "_authorize_act", "_ensure_open", "check_completion", "record_completion",
               "audit_completion", "validate_form", "get_task", "get_task_and_version"))
           + tuple(f"{_COMMANDS}{f}__mutmut_*" for f in ("complete_locked", "_ensure_moving")),
           # The SQLite half, except the races: two connections at once on PostgreSQL are the point there.
           keyword="not postgresql or concurrency"),
]


def find(name: str) -> Target:
    for target in TARGETS:
        if name == target.name or name in target.sources or any(s.endswith(name) for s in target.sources):
            return target
    raise SystemExit(f"unknown module {name!r}: one of {', '.join(t.name for t in TARGETS)}")


def workdir(target: Target) -> Path:
    here = ROOT / "var" / "mutation" / target.name
    here.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = here / name
        if not link.exists():
            link.symlink_to(ROOT / name)
    def lines(items: tuple[str, ...] | list[str]) -> str:
        return "".join(f"\n    {item}" for item in items)
    selection = target.tests + tuple(f"--deselect={t}" for t in target.deselect) + (
        ("-k", target.keyword) if target.keyword else ())
    (here / "setup.cfg").write_text(
        "# Written by scripts/mutation.py on every run; edit TARGETS there.\n"
        "[mutmut]\n"
        f"source_paths ={lines(target.sources)}\n"
        # Everything the sources import and the tests read comes along into mutants/.
        f"also_copy ={lines(['bpm_server', 'integrations', 'process_models', 'forms'])}\n"
        f"pytest_add_cli_args_test_selection ={lines(selection)}\n"
        # importlib: in pytest's default mode, tests/integrations/ (a package under a
        # tests/ that is not one) is imported as `integrations`, shadowing the real
        # package, and the editable install then finds the unmutated integrations/.
        f"pytest_add_cli_args ={lines(['-p', 'no:cacheprovider', '--import-mode=importlib'])}\n")
    return here


def claim_redis(pid: int) -> tuple[str, object] | None:
    """One Redis database for the whole run, claimed as tests/conftest.py claims them: mutmut
    ends each forked child with os._exit, so a child's own claim would never be released."""
    if os.environ.get("BPM_TEST_REDIS_URL"):
        return None
    from redis import Redis

    server = os.environ.get("BPM_TEST_REDIS_SERVER", "redis://localhost:6379")
    control = Redis.from_url(f"{server}/0")
    for number in range(15, 0, -1):
        key = f"bpm-test:redis-db:{number}"
        if control.set(key, pid, nx=True, ex=4 * 3600):
            os.environ["BPM_TEST_REDIS_URL"] = f"{server}/{number}"
            return key, control
    raise SystemExit("Redis databases 1-15 are all claimed by other test runs")


def statuses(here: Path) -> dict[str, str]:
    out = subprocess.run([str(BIN / "mutmut"), "results", "--all", "true"], cwd=here,
                         capture_output=True, text=True, check=True).stdout
    return {m[1]: m[2] for m in re.finditer(r"^\s+(\S+): (.+)$", out, re.MULTILINE)}


def selected(target: Target, found: dict[str, str]) -> dict[str, str]:
    from fnmatch import fnmatch

    if not target.functions:
        return found
    return {k: v for k, v in found.items() if any(fnmatch(k, p) for p in target.functions)}


def score(target: Target) -> str:
    """killed/total, where a mutant that made the tests hang (timeout) counts as caught."""
    found = selected(target, statuses(workdir(target)))
    caught = {"killed", "timeout", "caught by type check"}
    killed = sum(1 for v in found.values() if v in caught)
    counts: dict[str, int] = {}
    for v in found.values():
        counts[v] = counts.get(v, 0) + 1
    detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    survivors = sorted(k for k, v in found.items() if v in ("survived", "no tests"))
    return f"{target.name}: {killed}/{len(found)} caught ({detail})" + (
        "".join(f"\n      {name}: {found[name]}" for name in survivors))


def run(target: Target, only: str | None = None) -> None:
    here = workdir(target)
    names = target.functions
    if only:  # mutmut re-runs every mutant it is given by name, so name only these
        names = tuple(k for k, v in selected(target, statuses(here)).items() if v == only)
        if only == "not checked":
            # By function: given mutant names, mutmut lists their tests on pytest's command
            # line, and some parametrized ids (a script with a tab) do not survive that.
            names = tuple(sorted({n.rpartition("__mutmut_")[0] + "__mutmut_*" for n in names}))
        if not names:
            return
    env = dict(os.environ, BPM_TEST_PG_DB=f"bpm_mutation_{target.name}")
    # -n 19 and one child: the machine is shared and the tests use a database each.
    cmd = ["nice", "-n", "19", str(BIN / "mutmut"), "run", "--max-children", "1", *names]
    print(f"== {target.name}: {' '.join(target.sources)} against {' '.join(target.tests)}", flush=True)
    subprocess.run(cmd, cwd=here, env=env, check=False)


def show(target: Target) -> None:
    here = workdir(target)
    for key, status in sorted(selected(target, statuses(here)).items()):
        if status in ("survived", "no tests"):
            subprocess.run([str(BIN / "mutmut"), "show", key], cwd=here, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("module", nargs="?", help="one module: " + ", ".join(t.name for t in TARGETS))
    parser.add_argument("--show", action="store_true", help="print the survivors' diffs, run nothing")
    parser.add_argument("--score", action="store_true", help="print the scores of the last runs, run nothing")
    parser.add_argument("--survivors", dest="only", action="store_const", const="survived",
                        help="run again only the last run's survivors (after a new test)")
    parser.add_argument("--rest", dest="only", action="store_const", const="not checked",
                        help="run only the mutants an interrupted run did not reach")
    args = parser.parse_args()
    targets = [find(args.module)] if args.module else TARGETS
    if args.show:
        for target in targets:
            show(target)
        if not args.score:
            return
    if not args.score:
        claim = claim_redis(os.getpid())
        try:
            for target in targets:
                run(target, args.only)
        finally:
            if claim:
                key, control = claim
                control.delete(key)  # type: ignore[attr-defined]
    print("\nMutation scores (killed/total; docs/mutation.md explains every survivor):")
    for target in targets:
        print("  " + score(target))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
