"""Growth: cost per step and state size as an instance's history grows, and server
memory after many finished instances (issue 6, benchmark 5).

Three parts, each optional:

1. ``engine``: one account-project instance of ``--steps`` human steps (default
   50: kickoff, rejection loops needs_research -> solution_signoff(rejected),
   then approval, resource preparation, rework loops on delivery, acceptance,
   invoicing), run ``--repeats`` times through the bare engine and through the
   adapter exactly as bench/engine_ceiling.py does (load, complete, engine
   steps, dump per step). Per step index: CPU ms (process_time), wall ms and
   the serialized state's size.
2. ``server``: the production shape of bench/http_end_to_end.py (gunicorn,
   rq workers, PostgreSQL, Redis), one client, ``--server-repeats`` instances
   of each length in ``--lengths`` (default 6 10 20 30 50 steps): server CPU
   per task completion (psutil, every server-side process) for each length,
   latency of "complete" by step index, and the stored ``engine_state`` size.
3. ``memory``: on the same servers, ``--clients`` clients run happy-path
   instances until ``--finished`` (default 10,000) have finished; the RSS of
   the gunicorn master and workers and of the rq workers is sampled every
   ``--every`` finished instances (stopping after ``--max-minutes`` at most).

Writes bench/results/growth-<stamp>.json and .png; a run of all three parts
copies the PNG to docs/img/growth.png.

    .venv/bin/python bench/growth.py                                   # all three (~30-40 min, mostly memory)
    .venv/bin/python bench/growth.py --parts engine server
    .venv/bin/python bench/growth.py --parts memory --finished 2000 --every 250
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _cluster
import _common
import _flow
import _load
import engine_ceiling

DATABASE = "bpm_bench_growth"
README_PLOT = _common.REPO_ROOT / "docs" / "img" / "growth.png"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", default=["engine", "server", "memory"],
                        choices=["engine", "server", "memory"])
    parser.add_argument("--steps", type=int, default=50, help="human steps of the long instance (default 50)")
    parser.add_argument("--repeats", type=int, default=30, help="engine: instances per variant (default 30)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[6, 10, 20, 30, 50])
    parser.add_argument("--server-repeats", type=int, default=5, help="server: instances per length (default 5)")
    parser.add_argument("--clients", type=int, default=16, help="memory: concurrent clients (default 16)")
    parser.add_argument("--finished", type=int, default=10_000, help="memory: finished instances (default 10,000)")
    parser.add_argument("--every", type=int, default=1000, help="memory: RSS sample interval (default 1,000)")
    parser.add_argument("--max-minutes", type=float, default=90,
                        help="memory: stop after this long even if fewer have finished (default 90)")
    parser.add_argument("--no-readme-plot", action="store_true", help="do not copy the PNG to docs/img/")
    parser.add_argument("--database", default=DATABASE, help=f"PostgreSQL database to (re)create (default {DATABASE})")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--rq-workers", type=int, default=2)
    return parser.parse_args()


# --------------------------------------------------------------------------- 1. engine


def engine_growth(steps: int, repeats: int) -> dict[str, Any]:
    plan = _flow.plan_of_length(steps)
    out: dict[str, Any] = {"plan": [s for s, _, _ in plan]}
    for name, factory in (("bare", engine_ceiling.BareEngine), ("adapter", engine_ceiling.AdapterEngine)):
        engine = factory()
        cpu: dict[int, list[float]] = defaultdict(list)
        wall: dict[int, list[float]] = defaultdict(list)
        size: dict[int, int] = {}
        for rep in range(repeats + 2):  # two warm-up instances
            state = engine.start(_flow.start_data(rep))
            for k, (stage, _dept, data) in enumerate(plan, start=1):
                t0, c0 = time.perf_counter(), time.process_time()
                state = engine.step(state, stage, data)
                if rep >= 2:
                    wall[k].append(time.perf_counter() - t0)
                    cpu[k].append(time.process_time() - c0)
                size[k] = len(state)
        out[name] = [{"step": k, "stage": plan[k - 1][0], "cpu_ms_mean": round(1000 * statistics.mean(cpu[k]), 4),
                      "wall_ms_median": round(1000 * statistics.median(wall[k]), 4), "state_bytes": size[k]}
                     for k in sorted(cpu)]
    return out


# --------------------------------------------------------------------------- 2. server


def server_growth(cluster: _cluster.Cluster, seeded: _cluster.Seeded, start_via: str, lengths: list[int],
                  repeats: int, database: str) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    meter = _cluster.CpuMeter(cluster, database)
    db = create_engine(seeded.url)
    rows = []
    by_index: dict[int, list[float]] = defaultdict(list)
    try:
        for length in lengths:
            stop = threading.Event()
            client = _load.Client(0, cluster.port, seeded, start_via, _flow.plan_of_length(length), stop,
                                  max_instances=1)
            client.run()  # warm-up instance of this length, not measured
            client.log = _load.ClientLog()
            client.max_instances = repeats
            meter.begin()
            t0 = time.perf_counter()
            client.run()
            elapsed = time.perf_counter() - t0
            cpu = meter.end()
            completes = [c for c in client.log.calls if c.kind == "complete" and c.status == 200]
            if length == max(lengths):
                per_instance = len(completes) // max(1, len(client.log.instances))
                for i, call in enumerate(completes):
                    by_index[i % per_instance + 1].append(call.t1 - call.t0)
            with db.connect() as conn:
                state_bytes = conn.execute(text(
                    "SELECT max(length(engine_state)) FROM process_instance WHERE steps_completed = :n"),
                    {"n": length}).scalar()
            total = sum(cpu.values())
            rows.append({"steps": length, "instances": len(client.log.instances), "errors": client.log.errors[:3],
                         "server_cpu_ms_per_completion": round(1000 * total / max(1, len(completes)), 3),
                         "cpu_seconds_by_process_group": cpu,
                         "complete_ms": _common.summary_ms(c.t1 - c.t0 for c in completes),
                         "wall_seconds_per_instance": round(elapsed / max(1, len(client.log.instances)), 3),
                         "final_engine_state_bytes": state_bytes})
    finally:
        db.dispose()
    return {"lengths": rows, "complete_ms_by_step_index": [
        {"step": k, **_common.summary_ms(v)} for k, v in sorted(by_index.items())]}


# --------------------------------------------------------------------------- 3. memory


def memory_growth(cluster: _cluster.Cluster, seeded: _cluster.Seeded, start_via: str, clients: int,
                  finished: int, every: int, max_minutes: float) -> dict[str, Any]:
    stop = threading.Event()
    threads = [_load.Client(i, cluster.port, seeded, start_via, _flow.plan(), stop) for i in range(clients)]

    def sample(done: int) -> dict[str, Any]:
        web, workers = _cluster.rss_mb(cluster.web_pids()), _cluster.rss_mb(cluster.worker_pids())
        return {"finished": done, "seconds": round(time.perf_counter() - t0, 1), "web_master_mb": web[0],
                "web_workers_mb": web[1:], "rq_workers_mb": workers,
                "load_average": [round(x, 2) for x in __import__("os").getloadavg()]}

    t0 = time.perf_counter()
    samples = [sample(0)]
    for t in threads:
        t.start()
    next_mark = every
    while True:
        done = sum(len(t.log.instances) for t in threads)
        if done >= next_mark:
            samples.append(sample(done))
            print(f"    {done} finished, RSS web {samples[-1]['web_workers_mb']} MB, "
                  f"workers {samples[-1]['rq_workers_mb']} MB", flush=True)
            next_mark += every
        if done >= finished:
            break
        if not any(t.is_alive() for t in threads) or time.perf_counter() - t0 > max_minutes * 60:
            break
        time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(300)
    samples.append(sample(sum(len(t.log.instances) for t in threads)))
    elapsed = time.perf_counter() - t0
    done = samples[-1]["finished"]
    return {"clients": clients, "finished": done, "target": finished, "seconds": round(elapsed, 1),
            "instances_per_second": round(done / elapsed, 2), "errors": sum(len(t.log.errors) for t in threads),
            "error_samples": [e for t in threads for e in t.log.errors][:5], "samples": samples}


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in ("engine", "server", "memory") if result.get(p)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.3), dpi=90, squeeze=False)
    for ax, part in zip(axes[0], panels, strict=False):
        if part == "engine":
            for name in ("bare", "adapter"):
                series = result["engine"][name]
                ax.plot([r["step"] for r in series], [r["cpu_ms_mean"] for r in series], label=f"{name} CPU ms/step")
            twin = ax.twinx()
            series = result["engine"]["adapter"]
            twin.plot([r["step"] for r in series], [r["state_bytes"] / 1024 for r in series], "k:", label="state KB")
            twin.set_ylabel("state KB")
            ax.set_xlabel("step of the instance")
            ax.set_ylabel("ms")
            ax.legend(fontsize=7, loc="upper left")
            twin.legend(fontsize=7, loc="lower right")
            ax.set_title("engine: cost and state per step", fontsize=9)
        elif part == "server":
            rows = result["server"]["lengths"]
            ax.plot([r["steps"] for r in rows], [r["server_cpu_ms_per_completion"] for r in rows], "o-",
                    label="server CPU ms / completion")
            idx = result["server"]["complete_ms_by_step_index"]
            ax.plot([r["step"] for r in idx], [r["p50_ms"] for r in idx], ".", label="complete p50 ms by step")
            ax.set_xlabel("steps in the instance")
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=7)
            ax.set_title("server: cost against history length", fontsize=9)
        else:
            samples = result["memory"]["samples"]
            x = [s["finished"] for s in samples]
            ax.plot(x, [max(s["web_workers_mb"] or [0]) for s in samples], "o-", label="largest web worker")
            ax.plot(x, [max(s["rq_workers_mb"] or [0]) for s in samples], "s-", label="largest rq worker")
            ax.set_xlabel("finished instances")
            ax.set_ylabel("RSS MB")
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=7)
            ax.set_title("server memory", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    args = parse_args()
    result: dict[str, Any] = {}
    if "engine" in args.parts:
        print(f"... engine: {args.repeats} instances of {args.steps} steps per variant", flush=True)
        result["engine"] = engine_growth(args.steps, args.repeats)
    cluster = None
    if {"server", "memory"} & set(args.parts):
        seeded = _cluster.seed_database(args.database, max(args.clients, 1))
        start_via = "webhook" if seeded.webhook else "api"
        result["start_via"] = start_via
        cluster = _cluster.Cluster(seeded.url, web_workers=args.web_workers, web_threads=args.web_threads,
                                   rq_workers=args.rq_workers)
        try:
            cluster.start()
            if "server" in args.parts:
                print(f"... server: lengths {args.lengths}, {args.server_repeats} instances each", flush=True)
                result["server"] = server_growth(cluster, seeded, start_via, args.lengths, args.server_repeats,
                                                 args.database)
            if "memory" in args.parts:
                print(f"... memory: {args.clients} clients until {args.finished} instances finished", flush=True)
                result["memory"] = memory_growth(cluster, seeded, start_via, args.clients, args.finished, args.every,
                                                 args.max_minutes)
        finally:
            cluster.stop()
            _cluster.drop_pg_database(args.database)
    params = dict(vars(args).items())
    params.update(gunicorn=f"{args.web_workers} workers x {args.web_threads} threads (gthread)")
    path = _common.write_result("growth", {"parameters": params, **result})
    png = path.with_suffix(".png")
    plot(result, png)
    if not args.no_readme_plot and set(args.parts) == {"engine", "server", "memory"}:
        README_PLOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, README_PLOT)

    if "engine" in result:
        rows = [(r["step"], r["stage"], r["cpu_ms_mean"], a["cpu_ms_mean"], a["state_bytes"])
                for r, a in zip(result["engine"]["bare"], result["engine"]["adapter"], strict=False)
                if r["step"] in (1, 2, 5, 6, 10, 20, 30, 40, 50) or r["step"] == len(result["engine"]["bare"])]
        print(_common.table(["step", "stage", "bare CPU ms", "adapter CPU ms", "state bytes"], rows))
    if "server" in result:
        print(_common.table(["steps", "CPU ms/completion", "complete p50", "p95", "state bytes"],
                            [(r["steps"], r["server_cpu_ms_per_completion"], r["complete_ms"]["p50_ms"],
                              r["complete_ms"]["p95_ms"], r["final_engine_state_bytes"])
                             for r in result["server"]["lengths"]]))
    if "memory" in result:
        m = result["memory"]
        print(f"memory: {m['finished']} finished in {m['seconds']} s ({m['instances_per_second']}/s), "
              f"errors {m['errors']}")
        print(_common.table(["finished", "web master MB", "web workers MB", "rq workers MB"],
                            [(s["finished"], s["web_master_mb"], s["web_workers_mb"], s["rq_workers_mb"])
                             for s in m["samples"]]))
    print(f"\nresult: {path.relative_to(_common.REPO_ROOT)}  plot: {png.relative_to(_common.REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
