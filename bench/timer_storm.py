#!/usr/bin/env python
"""Timer storm: how fast SLA breaches are logged and escalated by real workers.

Measures (never asserts), on PostgreSQL + Redis with real ``bpm-server worker``
processes started as subprocesses:

1. no-load latency: K deadlines (default 50) ~0.3 s apart, one worker; for each
   the time from the deadline to its breach-log entry and to its first
   escalation entry (p50/p95/max);
2. storm: N deadlines (default 10,000) spread over 60 s, first one ~20 s after
   set-up; for each worker count: time from the LAST deadline until every
   breach is logged and escalated (DB polled every 0.5 s), throughput, and the
   deadline-to-entry latency distribution;
3. a short in-process profile of the fire_timer job on a sample of timers, plus
   the cost of one job as rq's forking worker runs it (fork + perform).

How the deadlines are made. SLA lengths are in working days, so a deadline a
few seconds from now cannot come out of the calendar. Each task is therefore
created the normal way (``start_instance`` for a standard-tier account: task
row, SLA clock, warning and breach timers, exactly what ``start_clock`` makes),
then the kickoff's ``sla_breach`` timer row and the task's ``due_at`` are moved
to the chosen moment with one UPDATE; its warning timer is cancelled (a warning
after the breach would be meaningless) and the task is claimed by a sales user
so that the "standard" breach rung notifies one assignee and the department
lead. The fire path (pump -> rq -> ``fire_timer``) then runs unmodified. For
the storm, a sample of instances (``--seed-instances``, default 200) is started
through ``start_instance`` and the rest are cloned row for row in SQL
(process_instance, human_task, sla_clock, timer; new ids), which takes seconds
instead of minutes; set-up time is reported split into its parts.

Each run starts from scratch: database ``bpm_bench_timers`` dropped, created
and migrated (Flask-Migrate upgrade), Redis db 14 flushed, queue
``bpm-bench-timers``. Workers are started after set-up and the deadlines are
placed relative to the moment they are ready (rq worker registered and the
pump's advisory lock held). At the end workers are terminated (then killed),
Redis db 14 is flushed and the database dropped (``--keep-db`` keeps it).

Run from the repository root:

    .venv/bin/python bench/timer_storm.py                       # full: 50 no-load, 10,000 x 1 and 2 workers
    .venv/bin/python bench/timer_storm.py --workers 1 2 4
    .venv/bin/python bench/timer_storm.py --quick               # smoke run, about two minutes

Results: ``bench/results/timer_storm-<UTC timestamp>.json`` and a table on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from _storm import DEFAULT_PG_ADMIN, DEFAULT_QUEUE, DEFAULT_REDIS, Bench, build, log, summary, utcnow  # noqa: E402
from _storm_profile import profile_run  # noqa: E402

# --------------------------------------------------------------------------- one measured run


def observe(bench: Bench, deadlines: dict[str, datetime], poll: float, max_wait: float) -> dict[str, Any]:
    """Poll the breach log until every deadline has a breach and an escalation entry (or time runs out)."""
    engine = create_engine(bench.db_url)
    last_due = max(deadlines.values())
    first_due = min(deadlines.values())
    seen_breach: dict[str, float] = {}
    seen_escalation: dict[str, float] = {}
    timeline: list[tuple[float, int, int]] = []
    last_seq = 0
    give_up = last_due.timestamp() + max_wait
    done_at = None
    try:
        while True:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT seq, kind, task_id FROM sla_breach_log WHERE seq > :s ORDER BY seq"),
                                    {"s": last_seq}).all()
            at = time.time()
            for seq, kind, task_id in rows:
                last_seq = seq
                if task_id not in deadlines:
                    continue
                if kind == "breach":
                    seen_breach.setdefault(task_id, at)
                elif kind == "escalation":
                    seen_escalation.setdefault(task_id, at)
            timeline.append((round(at - first_due.timestamp(), 3), len(seen_breach), len(seen_escalation)))
            if len(seen_breach) >= len(deadlines) and len(seen_escalation) >= len(deadlines):
                done_at = at
                break
            if at > give_up:
                break
            time.sleep(poll)
    finally:
        engine.dispose()
    return {"seen_breach": seen_breach, "seen_escalation": seen_escalation, "timeline": timeline,
            "done_at": done_at, "first_due": first_due, "last_due": last_due}


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def analyse(bench: Bench, deadlines: dict[str, datetime], seen: dict[str, Any]) -> dict[str, Any]:
    """Per-deadline figures from the database (server-side stamps) and from what the poller saw."""
    engine = create_engine(bench.db_url)
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE bench_ids (task_id text PRIMARY KEY)"))
        conn.execute(text("INSERT INTO bench_ids VALUES (:t)"), [{"t": t} for t in deadlines])
        # One pass over the log grouped by task (the log has no task_id index: three correlated
        # subqueries per deadline took minutes at 10,000 deadlines under load).
        rows = conn.execute(text(
            "WITH b AS (SELECT task_id, min(recorded_at) FILTER (WHERE kind = 'breach') AS breach_at, "
            "count(*) FILTER (WHERE kind = 'breach') AS breaches, "
            "min(recorded_at) FILTER (WHERE kind = 'escalation') AS escalation_at "
            "FROM sla_breach_log GROUP BY task_id) "
            "SELECT x.task_id, x.due_at, x.enqueued_at, x.fired_at, b.breach_at, coalesce(b.breaches, 0), "
            "b.escalation_at FROM timer x JOIN bench_ids i ON i.task_id = x.task_id "
            "LEFT JOIN b ON b.task_id = x.task_id WHERE x.kind = 'sla_breach'")).all()
        notifications = conn.scalar(text(
            "SELECT count(*) FROM notification n JOIN bench_ids i ON i.task_id = n.task_id"))
        later_rungs = conn.scalar(text(
            "SELECT count(*) FROM timer x JOIN bench_ids i ON i.task_id = x.task_id WHERE x.kind = 'escalation'"))
    engine.dispose()
    recorded, escalated, pump_lag, queue_wait, visible, visible_esc = [], [], [], [], [], []
    duplicates = rehanded = never_enqueued = 0
    for task_id, due_at, enqueued_at, fired_at, breach_at, breach_count, escalation_at in rows:
        if enqueued_at is None:
            never_enqueued += 1
        if breach_at is not None:
            recorded.append((breach_at - due_at).total_seconds())
        if escalation_at is not None:
            escalated.append((escalation_at - due_at).total_seconds())
        if enqueued_at is not None:
            lag = (enqueued_at - due_at).total_seconds()
            if lag > 25:  # handed again by the pump (retry_after = 30 s): enqueued_at was overwritten
                rehanded += 1
            else:
                pump_lag.append(lag)
                if fired_at is not None:
                    queue_wait.append((fired_at - enqueued_at).total_seconds())
        duplicates += max(0, breach_count - 1)
        if task_id in seen["seen_breach"]:
            visible.append(seen["seen_breach"][task_id] - due_at.timestamp())
        if task_id in seen["seen_escalation"]:
            visible_esc.append(seen["seen_escalation"][task_id] - due_at.timestamp())
    n = len(deadlines)
    result: dict[str, Any] = {
        "deadlines": n,
        "breaches_logged": len(recorded),
        "escalations_logged": len(escalated),
        "duplicate_breach_entries": duplicates,
        "notifications": notifications,
        "later_rung_timers_created": later_rungs,
        "timers_rehanded_by_pump_retry": rehanded,
        "timers_never_handed_to_queue_at_stop": never_enqueued,
        "latency_s": {
            "deadline_to_breach_recorded_at": summary(recorded),
            "deadline_to_escalation_recorded_at": summary(escalated),
            "deadline_to_breach_visible": summary(visible),
            "deadline_to_escalation_visible": summary(visible_esc),
            "pump_lag_due_to_enqueued": summary(pump_lag),
            "queue_wait_enqueued_to_fired": summary(queue_wait),
        },
        "first_deadline": seen["first_due"].isoformat(),
        "last_deadline": seen["last_due"].isoformat(),
    }
    done_at = seen["done_at"]
    if done_at is not None:
        result["complete"] = True
        result["last_deadline_to_all_done_s"] = round(done_at - seen["last_due"].timestamp(), 3)
        result["first_deadline_to_all_done_s"] = round(done_at - seen["first_due"].timestamp(), 3)
        result["throughput_per_s"] = round(n / max(done_at - seen["first_due"].timestamp(), 1e-9), 2)
    else:
        result["complete"] = False
        elapsed = seen["timeline"][-1][0] if seen["timeline"] else 0
        result["stopped_after_s_from_first_deadline"] = elapsed
        done = min(len(seen["seen_breach"]), len(seen["seen_escalation"]))
        rate = done / elapsed if elapsed > 0 else 0
        result["throughput_per_s"] = round(rate, 2)
        result["projected_last_deadline_to_all_done_s"] = (
            round(n / rate - (seen["last_due"] - seen["first_due"]).total_seconds(), 1) if rate else None)
    # Sustained processing rate: slope of the escalated count between 10% and 90% of the total.
    timeline = seen["timeline"]
    lo = next((p for p in timeline if p[2] >= 0.1 * n), None)
    hi = next((p for p in timeline if p[2] >= 0.9 * n), None)
    if lo and hi and hi[0] > lo[0]:
        result["sustained_rate_10_90_per_s"] = round((hi[2] - lo[2]) / (hi[0] - lo[0]), 2)
    step = max(1, len(timeline) // 120)
    result["timeline_s_breaches_escalations"] = timeline[::step] + ([timeline[-1]] if timeline else [])
    return result


def rq_job_stats(bench: Bench) -> dict[str, Any]:
    """Durations of the finished fire_timer jobs as rq recorded them (work horse time, incl. app start)."""
    from rq import Queue
    from rq.registry import FailedJobRegistry, FinishedJobRegistry

    redis = bench._redis()
    queue = Queue(bench.queue, connection=redis)
    finished = FinishedJobRegistry(queue=queue)
    ids = finished.get_job_ids()
    durations = []
    pipe = redis.pipeline()
    for job_id in ids[:5000]:
        pipe.hmget(f"rq:job:{job_id}", "started_at", "ended_at")
    for started, ended in pipe.execute() if ids else []:
        if started and ended:
            fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
            durations.append((datetime.strptime(ended.decode(), fmt).replace(tzinfo=UTC) -
                              datetime.strptime(started.decode(), fmt).replace(tzinfo=UTC)).total_seconds())
    return {"finished_jobs": len(ids), "failed_jobs": FailedJobRegistry(queue=queue).count,
            "left_in_queue": queue.count, "job_duration_s": summary(durations)}


def verify_chain(bench: Bench) -> dict[str, Any]:
    from bpm_server.database import db
    from bpm_server.sla.breaches import verify

    started = time.perf_counter()
    with bench.app.app_context():
        status = verify(db.session)
        db.session.remove()
    return {"intact": status.intact, "entries": status.entries, "first_broken_seq": status.first_broken_seq,
            "reason": status.reason, "verify_s": round(time.perf_counter() - started, 2)}


def measured_run(bench: Bench, *, label: str, count: int, workers: int, lead: float, step: float, poll: float,
                 max_wait: float, seed_instances: int) -> dict[str, Any]:
    log(f"{label}: building {count} tasks")
    setup_started = time.perf_counter()
    seeded, timings = build(bench, count, seed_instances)
    log(f"{label}: data ready in {time.perf_counter() - setup_started:.1f}s {timings}; starting {workers} worker(s)")
    timings["workers_ready_s"] = round(bench.start_workers(workers), 2)
    placed_at = utcnow()
    first = placed_at + timedelta(seconds=lead)
    started = time.perf_counter()
    deadlines = bench.place_deadlines(first, step, seeded["assignee_ids"], limit=count)
    timings["place_deadlines_s"] = round(time.perf_counter() - started, 2)
    timings["setup_total_s"] = round(time.perf_counter() - setup_started, 2)
    span = (max(deadlines.values()) - min(deadlines.values())).total_seconds()
    log(f"{label}: {len(deadlines)} deadlines from {first:%H:%M:%S} over {span:.1f}s; polling every {poll}s")
    load_start, cpu_start, wall_start = os.getloadavg(), machine_cpu(), time.perf_counter()
    worker_cpu_start = bench.worker_cpu_seconds()
    try:
        seen = observe(bench, deadlines, poll, max_wait)
    finally:
        wall = time.perf_counter() - wall_start
        cpu_end, worker_cpu_end = machine_cpu(), bench.worker_cpu_seconds()
        problems = bench.worker_log_problems()
        bench.stop_workers()
    busy, total = cpu_end[0] - cpu_start[0], cpu_end[1] - cpu_start[1]
    cpu = {"window_s": round(wall, 1), "machine_busy_fraction": round(busy / total, 3) if total else None,
           "worker_processes_cpu_s": round(worker_cpu_end - worker_cpu_start, 1),
           "worker_processes_cores_used": round((worker_cpu_end - worker_cpu_start) / wall, 2) if wall else None,
           "loadavg_at_start": [round(v, 2) for v in load_start],
           "loadavg_at_end": [round(v, 2) for v in os.getloadavg()]}
    result = {"label": label, "workers": workers, "setup": timings, "cpu": cpu,
              "parameters": {"deadlines": count, "lead_s": lead, "spacing_s": step, "spread_s": round(span, 3),
                             "poll_s": poll, "max_wait_s": max_wait}}
    result.update(analyse(bench, deadlines, seen))
    result["rq"] = rq_job_stats(bench)
    result["breach_log_chain"] = verify_chain(bench)
    result["worker_logs"] = problems
    return result


# --------------------------------------------------------------------------- report


def machine_info(bench: Bench) -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpus": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_kb"] = int(line.split()[1])
    except OSError:
        pass
    try:
        engine = create_engine(bench.admin_url)
        with engine.connect() as conn:
            info["postgresql"] = conn.scalar(text("SELECT version()"))
            info["postgresql_settings"] = {name: conn.scalar(text(f"SHOW {name}")) for name in
                                           ("shared_buffers", "synchronous_commit", "max_connections")}
        engine.dispose()
    except Exception as exc:
        info["postgresql"] = f"unavailable: {exc}"
    try:
        info["redis"] = bench._redis().info("server").get("redis_version")
    except Exception as exc:
        info["redis"] = f"unavailable: {exc}"
    from importlib.metadata import version

    info["packages"] = {p: version(p) for p in ("rq", "redis", "SQLAlchemy", "psycopg", "Flask")}
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                            text=True).stdout.strip()
        info["git_dirty"] = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                                capture_output=True, text=True).stdout.strip())
    except OSError:
        pass
    return info


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_table(results: dict[str, Any]) -> None:
    print()
    noload = results.get("no_load")
    if noload:
        lat = noload["latency_s"]
        print(f"No load: {noload['deadlines']} deadlines, {noload['workers']} worker "
              f"(seconds after the deadline; 'recorded' = entry's recorded_at, 'visible' = committed, seen by a "
              f"{noload['parameters']['poll_s']} s poll)")
        print(f"  {'':34}{'p50':>8}{'p95':>8}{'max':>8}")
        for name, key in (("breach recorded_at", "deadline_to_breach_recorded_at"),
                          ("first escalation recorded_at", "deadline_to_escalation_recorded_at"),
                          ("breach visible", "deadline_to_breach_visible"),
                          ("escalation visible", "deadline_to_escalation_visible"),
                          ("  pump: due -> enqueued", "pump_lag_due_to_enqueued"),
                          ("  queue: enqueued -> job start", "queue_wait_enqueued_to_fired")):
            s = lat[key]
            print(f"  {name:34}{fmt(s['p50'], 3):>8}{fmt(s['p95'], 3):>8}{fmt(s['max'], 3):>8}")
        print(f"  rq job duration p50 {fmt(noload['rq']['job_duration_s']['p50'], 3)} s")
    storms = results.get("storm", [])
    if storms:
        print()
        print(f"Storm: {storms[0]['deadlines']} deadlines over {storms[0]['parameters']['spread_s']:.0f} s")
        print(f"  {'workers':>7}{'setup s':>9}{'done':>6}{'last->all s':>13}{'rate/s':>8}{'10-90%/s':>10}"
              f"{'p50 s':>9}{'p95 s':>9}{'max s':>9}{'job p50':>9}{'chain':>7}")
        for run in storms:
            lat = run["latency_s"]["deadline_to_escalation_recorded_at"]
            last = run.get("last_deadline_to_all_done_s")
            if last is None:
                proj = run.get("projected_last_deadline_to_all_done_s")
                last_text = f"~{proj:.0f}*" if proj is not None else "-"
            else:
                last_text = fmt(last, 1)
            print(f"  {run['workers']:>7}{fmt(run['setup']['setup_total_s'], 1):>9}"
                  f"{'yes' if run['complete'] else 'no':>6}{last_text:>13}{fmt(run['throughput_per_s'], 1):>8}"
                  f"{fmt(run.get('sustained_rate_10_90_per_s'), 1):>10}{fmt(lat['p50'], 1):>9}"
                  f"{fmt(lat['p95'], 1):>9}{fmt(lat['max'], 1):>9}"
                  f"{fmt(run['rq']['job_duration_s']['p50'], 3):>9}"
                  f"{'ok' if run['breach_log_chain']['intact'] else 'BROKEN':>7}")
        for run in storms:
            cpu = run["cpu"]
            print(f"  x{run['workers']}: machine CPU busy {fmt(cpu['machine_busy_fraction'], 2)} of "
                  f"{os.cpu_count()} cores, worker processes used {fmt(cpu['worker_processes_cores_used'], 2)} cores, "
                  f"pump re-handed {run['timers_rehanded_by_pump_retry']} timers "
                  f"(never handed at stop: {run['timers_never_handed_to_queue_at_stop']}), "
                  f"rq failed {run['rq']['failed_jobs']}")
        if any(not run["complete"] for run in storms):
            print("  * not finished within --max-wait: projected from the rate so far")
        print("  latency columns: deadline -> first escalation entry recorded_at (same transaction as the breach)")
    profile = results.get("profile")
    if profile:
        print()
        warm = profile["in_process_warm_app"]["per_call_s"]
        forked = profile["forked_like_rq_worker"]["per_job_s"]
        print(f"fire_timer cost: in-process p50 {fmt(warm['p50'], 4)} s (n={warm['n']}); "
              f"forked like rq's Worker p50 {fmt(forked['p50'], 4)} s (n={forked['n']})")
        print("  in-process, top by own time:")
        for line in profile["top_tottime"][:12]:
            print("   ", line[:150])
        backlog = profile.get("pump_with_backlog")
        if backlog:
            recent = backlog["handed_recently"]
            print(f"  pump with {backlog['backlog']} due timers already queued: "
                  f"{recent['passes_in_3s']} passes in 3 s, "
                  f"longest sleep {fmt(recent['max_sleep_returned_s'], 3)} s; re-handing them after retry_after: "
                  f"{fmt(backlog['rehand_new_jobs']['per_timer_ms'], 2)} ms/timer (new job), "
                  f"{fmt(backlog['rehand_jobs_still_queued']['per_timer_ms'], 2)} ms/timer (job still queued)")
        horse = profile["forked_like_rq_worker"]["top_cumulative_in_horse"]
        if horse:
            print("  forked work horse (runner.perform), top by cumulative time:")
            for line in horse[:16]:
                print("   ", line[:150])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts for the storm")
    parser.add_argument("--deadlines", type=int, default=10_000, help="deadlines in the storm (0 to skip it)")
    parser.add_argument("--spread", type=float, default=60.0, help="seconds the storm's deadlines are spread over")
    parser.add_argument("--lead", type=float, default=20.0, help="seconds from workers ready to first deadline")
    parser.add_argument("--noload", type=int, default=50, help="deadlines in the no-load run (0 to skip)")
    parser.add_argument("--noload-spacing", type=float, default=0.3)
    parser.add_argument("--noload-lead", type=float, default=5.0)
    parser.add_argument("--poll", type=float, default=0.5, help="storm poll interval (no-load polls every 0.05 s)")
    parser.add_argument("--max-wait", type=float, default=210.0,
                        help="give up this many seconds after the last deadline (rate so far is reported)")
    parser.add_argument("--seed-instances", type=int, default=200,
                        help="instances started through start_instance; the rest are cloned in SQL")
    parser.add_argument("--profile", type=int, default=200, help="timers to cProfile in-process (0 to skip)")
    parser.add_argument("--profile-forked", type=int, default=30, help="timers run fork-per-job like rq")
    parser.add_argument("--profile-backlog", type=int, default=2000,
                        help="due, handed-out, unfired timers to drive the pump against in-process")
    parser.add_argument("--profile-batched", type=int, default=0,
                        help="timers to cProfile through the batch job (fire_timers, 100 per job)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 deadlines over 10 s, 10 no-load")
    parser.add_argument("--pg-admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", DEFAULT_PG_ADMIN))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    parser.add_argument("--queue", default=DEFAULT_QUEUE)
    parser.add_argument("--keep-db", action="store_true", help="leave the last run's database in place")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if args.quick:
        args.deadlines, args.spread, args.lead = min(args.deadlines, 300), 10.0, 10.0
        args.noload, args.max_wait = min(args.noload, 10), min(args.max_wait, 120.0)
        args.profile, args.profile_forked = min(args.profile, 40), min(args.profile_forked, 10)
        args.profile_backlog = min(args.profile_backlog, 200)

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    bench = Bench(args)
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    results: dict[str, Any] = {
        "benchmark": "timer_storm", "started_at": utcnow().isoformat(), "command": " ".join(sys.argv),
        "machine": machine_info(bench),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "method": ("Tasks created with start_instance (standard-tier account, kickoff stage) and, beyond "
                   "--seed-instances, cloned in SQL; each kickoff's sla_breach timer and due_at moved to the chosen "
                   "moment, its warning cancelled, the task claimed by a sales user. Real 'bpm-server worker' "
                   "processes (rq forking Worker + timer pump thread; one pump leads via advisory lock). "
                   "recorded_at = the job's clock at start of fire(); 'visible' = first poll that saw the committed "
                   "entry."),
    }
    started = time.perf_counter()
    code = 0
    try:
        if args.noload > 0:
            results["no_load"] = measured_run(bench, label="no-load", count=args.noload, workers=1,
                                              lead=args.noload_lead, step=args.noload_spacing, poll=0.05,
                                              max_wait=60.0, seed_instances=args.noload)
        results["storm"] = []
        for workers in (args.workers if args.deadlines > 0 else []):
            step = args.spread / max(args.deadlines - 1, 1)
            results["storm"].append(measured_run(bench, label=f"storm x{workers}", count=args.deadlines,
                                                 workers=workers, lead=args.lead, step=step, poll=args.poll,
                                                 max_wait=args.max_wait, seed_instances=args.seed_instances))
        if args.profile > 0:
            results["profile"] = profile_run(bench, args.profile, args.profile_forked, args.profile_backlog,
                                             args.profile_batched)
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        results["interrupted"] = True
        code = 130
    except Exception as exc:
        import traceback

        results["error"] = traceback.format_exc()
        log(f"failed: {exc!r}")
        code = 1
    finally:
        bench.stop_workers()
        if not args.keep_db:
            bench.drop()
        else:
            bench.dispose_app()
    results["total_runtime_s"] = round(time.perf_counter() - started, 1)
    results["worker_logs_dir"] = str(bench.log_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"timer_storm-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print_table(results)
    print(f"\nresult: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  "
          f"(total {results['total_runtime_s']} s; worker logs in {bench.log_dir})")
    if results.get("error"):
        print(results["error"], file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
