"""Sandbox budgets: what the per-evaluation meter and the size guards cost.

Times, in one process and without the engine, the evaluations a diagram
makes (issue 11):

  * ``condition``: a gateway condition with a comparison and ``and``
    (no loop, no call: the meter never reads a clock);
  * ``condition_arith``: a condition with ``+`` and ``*`` (two size guards);
  * ``script``: the account-project style script: a few assignments,
    an f-string, a dict;
  * ``loop_1000``: a script summing over ``range(1000)`` with ``+=`` (1000
    ticks and 1000 guarded operators): the per-iteration cost of the budgets.

With ``--before PATH`` (a ``sandbox.py`` from an older checkout, which is
standalone: it imports only RestrictedPython) both are loaded into this one
process and their rounds interleaved, so the drift of a shared machine hits
both alike; the best round of each is reported (noise only ever adds time).

    .venv/bin/python bench/sandbox_budgets.py
    .venv/bin/python bench/sandbox_budgets.py --before /tmp/old/bpm_server/engine/sandbox.py
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

CASES = {
    "condition": ("eval", "amount > 1000 and tier == 'A'", {"amount": 5000, "tier": "A"}),
    "condition_arith": ("eval", "amount * 2 + 10 > limit", {"amount": 5000, "limit": 100}),
    "script": ("exec", "total = amount * 2\nlabel = f'{name}: {total}'\nsummary = {'total': total, 'ok': total > 10}",
               {"amount": 5000, "name": "ACME"}),
    "loop_1000": ("exec", "total = 0\nfor i in range(1000):\n    total += i * 2", {}),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, default=None, help="an older sandbox.py to compare with")
    parser.add_argument("--rounds", type=int, default=30, help="rounds per case and variant; the best is reported")
    parser.add_argument("--number", type=int, default=300, help="evaluations per round")
    return parser.parse_args()


def load_sandbox(path: Path | None) -> Any:
    if path is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from bpm_server.engine import sandbox

        return sandbox
    spec = importlib.util.spec_from_file_location("sandbox_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["sandbox_before"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main() -> int:
    args = parse_args()
    variants = {"after": load_sandbox(None)}
    if args.before is not None:
        variants = {"before": load_sandbox(args.before), **variants}
    evaluators = {name: module.RestrictedEvaluator(helpers={"now": time.time}) for name, module in variants.items()}
    best: dict[tuple[str, str], float] = {}
    for case, (mode, source, context) in CASES.items():
        number = args.number if case != "loop_1000" else max(args.number // 30, 5)
        for ev in evaluators.values():
            (ev.evaluate if mode == "eval" else ev.execute)(source, context)  # compiled once, as in a server
        for _ in range(args.rounds):
            for name, ev in evaluators.items():
                call = ev.evaluate if mode == "eval" else ev.execute
                start = time.thread_time()
                for _ in range(number):
                    call(source, context)
                elapsed = (time.thread_time() - start) / number * 1e6
                best[(case, name)] = min(best.get((case, name), elapsed), elapsed)
    names = list(evaluators)
    print(f"{'case':16}" + "".join(f"{n + ' us':>14}" for n in names) + ("    added us" if len(names) == 2 else ""))
    for case in CASES:
        row = [best[(case, n)] for n in names]
        extra = f"{row[1] - row[0]:12.2f}" if len(row) == 2 else ""
        print(f"{case:16}" + "".join(f"{v:14.2f}" for v in row) + extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
