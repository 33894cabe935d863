"""Engine ceiling: the account-project model run by SpiffWorkflow alone, in one process.

This is the limit the server is compared with (issue 6, benchmark 1). The
BPMN file is parsed once. Then, per instance:

  start:  create the workflow, put the start data on the start event,
          do_engine_steps, serialize (state without the spec)
  step:   (one per human task, six on the happy path) load the state back
          (cached spec injected), find the ready task, set the stage's form
          data, run it, do_engine_steps, serialize

which is what the server does per request. Two variants are timed:

  * ``bare``: SpiffWorkflow only (SpiffBpmnParser, SPIFF_CONFIG serializer,
    default PythonScriptEngine, spec popped from / injected into the dict);
  * ``adapter``: the same through ``bpm_server.engine.adapter`` (``Run.start``,
    ``Run.load`` / ``complete`` / ``dump`` plus ``ready_tasks``, ``data`` and
    ``next_timer_due``, as ``instances.service._save`` calls them; service
    tasks are completed "skipped", as for a system the deployment lacks). Scripts and
    conditions then run in the RestrictedPython sandbox. The difference is the
    adapter's own overhead.

Reports instances/s, wall ms per step, CPU ms per step (time.process_time:
user+system of this process), state size, and the same for the start. The
CPU per step of ``bare`` is the denominator of the server/engine cost ratio in
bench/http_end_to_end.py.

    .venv/bin/python bench/engine_ceiling.py                    # 300 instances per variant
    .venv/bin/python bench/engine_ceiling.py --instances 1000 --rejections 2 --reworks 1
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # also puts the repo root on sys.path
import _flow


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=300, help="measured instances per variant (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed instances first (default 20)")
    parser.add_argument("--rejections", type=int, default=0, help="rejection loops per instance (default 0)")
    parser.add_argument("--reworks", type=int, default=0, help="rework loops per instance (default 0)")
    parser.add_argument("--variants", nargs="+", default=["bare", "adapter"], choices=["bare", "adapter"])
    return parser.parse_args()


# --------------------------------------------------------------------------- the bare engine


class BareEngine:
    """SpiffWorkflow on its own, in the shape the server uses it (spec cached, state as JSON)."""

    def __init__(self) -> None:
        from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
        from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
        from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

        parser = SpiffBpmnParser()
        parser.add_bpmn_file(str(_flow.MODEL_DIR / "account-project.bpmn"))
        self.spec = parser.get_spec(_flow.ENTRY_PROCESS)
        self.subprocess_specs = parser.get_subprocess_specs(_flow.ENTRY_PROCESS)
        self.serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))

    def _engine(self) -> Any:
        from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

        class NoErp(TaskDataEnvironment):
            # A Spiff service task (the ERP invoice request, when the model has
            # it) answers as a deployment without an ERP does: skipped.
            def call_service(self, context: dict, **kwargs: Any) -> str:
                return json.dumps({"status": "skipped", "operation": kwargs.get("operation_name")})

        return PythonScriptEngine(environment=NoErp())

    def dump(self, workflow: Any) -> str:
        ser = self.serializer
        dct = ser.to_dict(workflow)
        dct.pop("spec", None)
        dct.pop("subprocess_specs", None)
        dct[ser.VERSION_KEY] = ser.VERSION
        return json.dumps(dct, cls=ser._encoder_cls, separators=(",", ":"))

    def load(self, state: str) -> Any:
        ser = self.serializer
        dct = json.loads(state, cls=ser.json_decoder_cls)
        ser.migrate(dct)
        dct["spec"], dct["subprocess_specs"] = self.spec, self.subprocess_specs
        workflow = ser.from_dict(dct)
        workflow.script_engine = self._engine()
        return workflow

    def start(self, data: dict[str, Any]) -> str:
        from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
        from SpiffWorkflow.util.task import TaskState

        workflow = BpmnWorkflow(self.spec, self.subprocess_specs, script_engine=self._engine())
        workflow.get_next_task(state=TaskState.READY).set_data(**data)
        workflow.do_engine_steps()
        return self.dump(workflow)

    def step(self, state: str, stage: str, data: dict[str, Any]) -> str:
        from SpiffWorkflow.util.task import TaskState

        workflow = self.load(state)
        task = workflow.get_next_task(state=TaskState.READY, manual=True, spec_name=stage)
        if task is None:
            raise RuntimeError(f"{stage} is not ready")
        task.set_data(**data)
        task.run()
        workflow.do_engine_steps()
        return self.dump(workflow)

    def completed(self, state: str) -> bool:
        return self.load(state).is_completed()


# --------------------------------------------------------------------------- through the adapter


class AdapterEngine:
    """The same run through ``bpm_server.engine.adapter`` (sandboxed scripts), calling what the server calls."""

    def __init__(self) -> None:
        from bpm_server.engine.adapter import compile_bpmn
        from bpm_server.engine.sandbox import RestrictedEvaluator

        self.model = compile_bpmn(_flow.bpmn_xml(), _flow.ENTRY_PROCESS)
        self.evaluator = RestrictedEvaluator()

    def _save(self, run: Any) -> str:
        # Service tasks (the ERP invoice request, when the model has one) are
        # finished as the server does for a system it does not have: skipped.
        for call in getattr(run, "pending_service_calls", list)():
            run.complete_service_call(call.engine_task_id, {"status": "skipped"})
        state = run.dump()
        run.data  # noqa: B018  (the server stores the process data with every step)
        run.ready_tasks()
        if not run.is_completed:
            run.next_timer_due()
        return state

    def start(self, data: dict[str, Any]) -> str:
        from bpm_server.engine.adapter import Run

        return self._save(Run.start(self.model, self.evaluator, data))

    def step(self, state: str, stage: str, data: dict[str, Any]) -> str:
        from bpm_server.engine.adapter import Run

        run = Run.load(self.model, state, self.evaluator)
        ready = next((t for t in run.ready_tasks() if t.name == stage), None)
        if ready is None:
            raise RuntimeError(f"{stage} is not ready")
        run.complete(ready.engine_task_id, data)
        return self._save(run)

    def completed(self, state: str) -> bool:
        from bpm_server.engine.adapter import Run

        return Run.load(self.model, state, self.evaluator).is_completed


# --------------------------------------------------------------------------- measuring


def measure(engine: Any, instances: int, warmup: int, plan: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    start_wall: list[float] = []
    start_cpu: list[float] = []
    step_wall: list[float] = []
    step_cpu: list[float] = []
    sizes: list[int] = []
    clock, cpu = time.perf_counter, time.process_time
    gc.collect()
    t_all, c_all = clock(), cpu()
    for number in range(warmup + instances):
        if number == warmup:
            t_all, c_all = clock(), cpu()
        counted = number >= warmup
        t0, c0 = clock(), cpu()
        state = engine.start(_flow.start_data(number))
        if counted:
            start_wall.append(clock() - t0)
            start_cpu.append(cpu() - c0)
        for stage, _department, data in plan:
            t0, c0 = clock(), cpu()
            state = engine.step(state, stage, data)
            if counted:
                step_wall.append(clock() - t0)
                step_cpu.append(cpu() - c0)
        if counted:
            sizes.append(len(state))
    elapsed, cpu_total = clock() - t_all, cpu() - c_all
    if not engine.completed(state):
        raise RuntimeError("the last instance did not complete: the plan does not match the model")
    steps = len(step_wall)
    return {
        "instances": instances,
        "steps_per_instance": len(plan),
        "instances_per_second": round(instances / elapsed, 1),
        "steps_per_second": round(steps / elapsed, 1),
        "wall_seconds": round(elapsed, 3),
        "cpu_seconds": round(cpu_total, 3),
        # Everything (start included) divided by the human steps: what one task completion costs.
        "cpu_ms_per_step_incl_start": round(cpu_total * 1000 / steps, 4),
        "step": {**_common.summary_ms(step_wall), "cpu_ms_mean": round(sum(step_cpu) * 1000 / steps, 4)},
        "start": {**_common.summary_ms(start_wall),
                  "cpu_ms_mean": round(sum(start_cpu) * 1000 / len(start_cpu), 4)},
        "final_state_bytes": {"min": min(sizes), "max": max(sizes)},
    }


def run_variants(variants: list[str], instances: int, warmup: int,
                 plan: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    """Measure each variant; usable from other benchmarks (http_end_to_end reads ``bare``)."""
    factories: dict[str, Callable[[], Any]] = {"bare": BareEngine, "adapter": AdapterEngine}
    return {name: measure(factories[name](), instances, warmup, plan) for name in variants}


def main() -> int:
    args = parse_args()
    plan = _flow.plan(rejections=args.rejections, reworks=args.reworks)
    load_before = _common.machine_info()["load_average_1_5_15"]
    figures = run_variants(args.variants, args.instances, args.warmup, plan)
    if "bare" in figures and "adapter" in figures:
        bare, adapter = figures["bare"], figures["adapter"]
        figures["adapter_overhead"] = {
            "cpu_per_step_ratio": round(adapter["step"]["cpu_ms_mean"] / bare["step"]["cpu_ms_mean"], 2),
            "cpu_ms_per_step_added": round(adapter["step"]["cpu_ms_mean"] - bare["step"]["cpu_ms_mean"], 4),
            "start_cpu_ms_added": round(adapter["start"]["cpu_ms_mean"] - bare["start"]["cpu_ms_mean"], 4),
        }
    payload = {
        "parameters": {"model": _flow.MODEL_ID, "instances": args.instances, "warmup": args.warmup,
                       "rejections": args.rejections, "reworks": args.reworks,
                       "stages": [s for s, _, _ in plan], "timers": "perf_counter (wall), process_time (CPU)",
                       "load_average_before": load_before},
        "figures": figures,
    }
    path = _common.write_result("engine_ceiling", payload)
    print(f"engine_ceiling  {args.instances} instances x {len(plan)} human steps (+{args.warmup} warm-up), "
          f"load average before {load_before}")
    rows = []
    for name in args.variants:
        f = figures[name]
        rows.append((name, f["instances_per_second"], f["steps_per_second"], f["step"]["p50_ms"], f["step"]["p95_ms"],
                     f["step"]["cpu_ms_mean"], f["start"]["cpu_ms_mean"], f["cpu_ms_per_step_incl_start"],
                     f["final_state_bytes"]["max"]))
    print(_common.table(["variant", "inst/s", "steps/s", "step p50 ms", "step p95 ms", "step CPU ms",
                         "start CPU ms", "CPU ms/step incl. start", "state bytes"], rows))
    if "adapter_overhead" in figures:
        o = figures["adapter_overhead"]
        print(f"adapter overhead: x{o['cpu_per_step_ratio']} CPU per step (+{o['cpu_ms_per_step_added']} ms)")
    print(f"\nresult: {path.relative_to(_common.REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
