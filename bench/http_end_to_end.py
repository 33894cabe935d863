"""End to end over HTTP in the production shape, with a load sweep (issue 6, benchmark 2).

Starts, on this machine: a fresh PostgreSQL database ``bpm_bench_http``
(migrated, models synced, one staff user per department per client, 20
key-tier accounts), a dedicated ``redis-server`` on a free port, ``--rq-workers``
``bpm-server worker`` processes (rq + timer pump) and gunicorn serving
``bpm_server.wsgi:app`` (``--web-workers`` x ``--web-threads``, gthread). Then,
for each client count of ``--clients``, that many client threads (http.client,
keep-alive) drive account-project instances through all six stages: start via
the signed ERP webhook ``POST /api/v1/hooks/erp/contract-signed`` when the
build has it (else ``POST /api/v1/process-instances``; the JSON says which),
then per stage inbox -> claim -> complete as that stage's department.

Per level, after ``--warmup`` seconds, a ``--duration`` second window is
measured: instances/s, task completions/s, p50/p95/p99 per call kind, and the
user+system CPU of every server-side process (gunicorn master and workers, rq
workers, our redis-server, the PostgreSQL backends of our database, and
PostgreSQL's shared auxiliary processes), read with psutil before and after.
CPU per task completion is divided by the bare engine's CPU per step
(bench/engine_ceiling.py, run first in this process) to give the
server/engine cost ratio. The client's own CPU and the whole machine's busy
CPU are recorded too (the client shares the 2 cores with the server).

Writes bench/results/http_end_to_end-<stamp>.json and .png (latency and
throughput against load) and copies the PNG to docs/img/http-load.png.
``--profile-seconds N`` afterwards runs py-spy on every gunicorn worker for N
seconds at the highest client count (outside the measured windows) and
stores the top functions.

    .venv/bin/python bench/http_end_to_end.py                            # 1 4 16 32 clients, 30 s each
    .venv/bin/python bench/http_end_to_end.py --clients 16 --duration 60 --profile-seconds 20
"""
from __future__ import annotations

import argparse
import os
import shutil
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
import _profile

DATABASE = "bpm_bench_http"
README_PLOT = _common.REPO_ROOT / "docs" / "img" / "http-load.png"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 32])
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds per level (default 30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds per level first (default 5)")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"])
    parser.add_argument("--rq-workers", type=int, default=2)
    parser.add_argument("--start-via", choices=["auto", "webhook", "api"], default="auto")
    parser.add_argument("--profile-seconds", type=float, default=0, help="py-spy each web worker afterwards")
    parser.add_argument("--no-readme-plot", action="store_true", help="do not copy the PNG to docs/img/")
    parser.add_argument("--keep-db", action="store_true")
    return parser.parse_args()


def engine_cost() -> dict[str, Any]:
    import engine_ceiling

    bare = engine_ceiling.run_variants(["bare"], 200, 20, _flow.plan())["bare"]
    return {"cpu_ms_per_step": bare["step"]["cpu_ms_mean"],
            "cpu_ms_per_step_incl_start": bare["cpu_ms_per_step_incl_start"],
            "instances_per_second": bare["instances_per_second"]}


def busy_cpu_seconds() -> float:
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)


def run_level(clients: int, args: argparse.Namespace, cluster: _cluster.Cluster, seeded: _cluster.Seeded,
              start_via: str, meter: _cluster.CpuMeter, engine: dict[str, Any]) -> dict[str, Any]:
    stop = threading.Event()
    threads = [_load.Client(i, cluster.port, seeded, start_via, _flow.plan(), stop) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(args.warmup)
    load_before = [round(x, 2) for x in os.getloadavg()]
    meter.begin()
    busy0, client0, t_begin = busy_cpu_seconds(), time.process_time(), time.perf_counter()
    time.sleep(args.duration)
    t_end = time.perf_counter()
    cpu = meter.end()
    busy, client_cpu = busy_cpu_seconds() - busy0, time.process_time() - client0
    load_after = [round(x, 2) for x in os.getloadavg()]
    stop.set()
    for t in threads:
        t.join(300)
    logs = [t.log for t in threads]
    calls, finished = _load.window(logs, t_begin, t_end)
    elapsed = t_end - t_begin
    ok = [c for c in calls if 200 <= c.status < 300]
    by_kind: dict[str, list[float]] = defaultdict(list)
    for c in ok:
        by_kind[c.kind].append(c.t1 - c.t0)
    completions = len(by_kind["complete"])
    server_cpu = sum(cpu.values())
    per_completion_ms = server_cpu * 1000 / completions if completions else None
    latency = {}
    for kind in _load.KINDS:
        ms = [s * 1000 for s in by_kind[kind]]
        latency[kind] = {"n": len(ms), **{f"p{q}_ms": round(_common.percentile(ms, q), 2) if ms else None
                                          for q in (50, 95, 99)},
                         "mean_ms": round(sum(ms) / len(ms), 2) if ms else None}
    return {
        "clients": clients, "window_seconds": round(elapsed, 2), "load_average_before": load_before,
        "load_average_after": load_after,
        "instances_per_second": round(len(finished) / elapsed, 2),
        "task_completions_per_second": round(completions / elapsed, 2),
        "http_calls_per_second": round(len(ok) / elapsed, 2),
        "latency": latency,
        "instance_wall_ms": _common.summary_ms(f.t1 - f.t0 for f in finished),
        "non_2xx_calls": sum(1 for c in calls if not 200 <= c.status < 300),
        "errors": sum(len(log.errors) for log in logs), "error_samples": [e for log in logs for e in log.errors][:5],
        "reconnects": sum(log.reconnects for log in logs),
        "inbox_retries_waiting_for_a_task": sum(log.inbox_retries for log in logs),
        "cpu_seconds_by_process_group": cpu,
        "server_cpu_seconds": round(server_cpu, 3),
        "server_cpu_ms_per_task_completion": round(per_completion_ms, 3) if per_completion_ms else None,
        "server_cpu_ms_per_task_completion_without_pg_shared":
            round((server_cpu - cpu.get("postgres_shared", 0)) * 1000 / completions, 3) if completions else None,
        "ratio_to_engine_cpu_per_step": round(per_completion_ms / engine["cpu_ms_per_step_incl_start"], 1)
        if per_completion_ms else None,
        "client_cpu_seconds": round(client_cpu, 3),
        "machine_busy_cpu_seconds": round(busy, 3),
        "machine_busy_cores": round(busy / elapsed, 2),
        "other_cpu_seconds_on_machine": round(busy - server_cpu - client_cpu, 3),
    }


def database_summary(url: str) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            states = dict(conn.execute(text("SELECT state, count(*) FROM process_instance GROUP BY state")).all())
            tasks = dict(conn.execute(text("SELECT state, count(*) FROM human_task GROUP BY state")).all())
    finally:
        engine.dispose()
    return {"instances_by_state": states, "tasks_by_state": tasks}


def plot(levels: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [lv["clients"] for lv in levels]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=90)
    left.plot(x, [lv["task_completions_per_second"] for lv in levels], "o-", label="task completions/s")
    left.plot(x, [lv["instances_per_second"] for lv in levels], "s--", label="instances/s")
    left.set_xlabel("concurrent clients")
    left.set_ylabel("per second")
    left.set_xscale("log", base=2)
    left.set_ylim(bottom=0)
    left.legend(fontsize=8)
    left.set_title("throughput", fontsize=10)
    for kind, style in (("complete", "-"), ("inbox", ":")):
        for q, marker in (("p50", "o"), ("p95", "^"), ("p99", "v")):
            right.plot(x, [lv["latency"][kind][f"{q}_ms"] for lv in levels], marker=marker, linestyle=style,
                       label=f"{kind} {q}")
    right.set_xlabel("concurrent clients")
    right.set_ylabel("ms")
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.legend(fontsize=7, ncol=2)
    right.set_title("latency per call", fontsize=10)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    args = parse_args()
    engine = engine_cost()
    seeded = _cluster.seed_database(DATABASE, max(args.clients))
    start_via = ("webhook" if seeded.webhook else "api") if args.start_via == "auto" else args.start_via
    cluster = _cluster.Cluster(seeded.url, web_workers=args.web_workers, web_threads=args.web_threads,
                               rq_workers=args.rq_workers, worker_class=args.worker_class)
    levels: list[dict[str, Any]] = []
    profile: dict[str, Any] | None = None
    try:
        cluster.start()
        meter = _cluster.CpuMeter(cluster, DATABASE)
        for clients in args.clients:
            print(f"... {clients} client(s): {args.warmup:g} s warm-up, {args.duration:g} s measured", flush=True)
            levels.append(run_level(clients, args, cluster, seeded, start_via, meter, engine))
        if args.profile_seconds:
            profile = _profile.py_spy_under_load(cluster, seeded, start_via, max(args.clients), args.profile_seconds)
        rss = {"web_mb": _cluster.rss_mb(cluster.web_pids()), "worker_mb": _cluster.rss_mb(cluster.worker_pids())}
    finally:
        cluster.stop()
    db_summary = database_summary(seeded.url)
    if not args.keep_db:
        _cluster.drop_pg_database(DATABASE)

    payload = {
        "parameters": {"clients": args.clients, "duration_seconds": args.duration, "warmup_seconds": args.warmup,
                       "gunicorn": {"workers": args.web_workers, "threads": args.web_threads,
                                    "worker_class": args.worker_class},
                       "rq_workers": args.rq_workers, "start_via": start_via,
                       "webhook_in_build": seeded.webhook, "database": DATABASE,
                       "database_server": seeded.database_server, "redis": "dedicated redis-server, no persistence",
                       "calls_per_instance": "1 start + 6 x (inbox, claim, complete)",
                       "inbox_call": "GET /api/v1/tasks?per_page=20&account_id=<the instance's account>",
                       "client": "threads, http.client keep-alive, same machine"},
        "engine_ceiling": engine, "levels": levels, "rss_after": rss, "database_after": db_summary,
        "py_spy": profile, "server_logs": str(cluster.logdir),
    }
    path = _common.write_result("http_end_to_end", payload)
    png = path.with_suffix(".png")
    plot(levels, png, f"account-project over HTTP: gunicorn {args.web_workers}x{args.web_threads} {args.worker_class}, "
                      f"{args.rq_workers} rq workers, PostgreSQL, Redis; {os.cpu_count()} cores, "
                      f"1-min load average {min(lv['load_average_before'][0] for lv in levels)}-"
                      f"{max(lv['load_average_after'][0] for lv in levels)}")
    if not args.no_readme_plot:
        README_PLOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, README_PLOT)

    print(f"\nhttp_end_to_end  start via {start_via}; gunicorn {args.web_workers} workers x {args.web_threads} threads "
          f"({args.worker_class}), {args.rq_workers} rq workers; engine CPU/step "
          f"{engine['cpu_ms_per_step_incl_start']} ms (incl. start)")
    rows = [(lv["clients"], lv["instances_per_second"], lv["task_completions_per_second"],
             lv["latency"]["complete"]["p50_ms"], lv["latency"]["complete"]["p95_ms"],
             lv["latency"]["complete"]["p99_ms"], lv["latency"]["inbox"]["p95_ms"], lv["latency"]["start"]["p95_ms"],
             lv["server_cpu_ms_per_task_completion"], lv["ratio_to_engine_cpu_per_step"],
             lv["errors"], lv["load_average_before"][0]) for lv in levels]
    print(_common.table(["clients", "inst/s", "compl/s", "compl p50", "p95", "p99", "inbox p95", "start p95",
                         "CPU ms/compl", "x engine", "errors", "load"], rows))
    for lv in levels:
        print(f"  {lv['clients']:>3} clients CPU s: {lv['cpu_seconds_by_process_group']}"
              f"  client {lv['client_cpu_seconds']}"
              f"  other {lv['other_cpu_seconds_on_machine']}")
    if profile:
        print("\npy-spy, web workers (own time %):")
        for row in profile["top_self"][:12]:
            print(f"  {row['percent']:5.1f}%  {row['function']}")
    print(f"\nresult: {path.relative_to(_common.REPO_ROOT)}  plot: {png.relative_to(_common.REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
