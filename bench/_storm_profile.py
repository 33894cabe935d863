"""The timer storm's in-process profile of the fire path and the pump under a backlog."""
from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from _storm import Bench, build, log, summary, utcnow  # noqa: E402


def pump_backlog(bench: Bench, app: Any, timer_ids: list[str]) -> dict[str, Any]:
    """The pump facing a backlog: due timers already handed to the queue but not yet fired."""
    from bpm_server.database import db
    from bpm_server.sla.scheduler import TimerPump

    pump = TimerPump(app)
    pump._reconciling = False  # as after start-up
    engine = create_engine(bench.db_url)

    def handed(ago: float) -> None:
        with engine.begin() as conn:
            conn.execute(text("UPDATE timer SET enqueued_at = :at WHERE id = ANY(:ids)"),
                         {"at": utcnow() - timedelta(seconds=ago), "ids": timer_ids})

    def passes(seconds: float) -> tuple[int, list[float]]:
        count, delays, end = 0, [], time.perf_counter() + seconds
        while time.perf_counter() < end:
            with app.app_context():
                delays.append(pump.pump_once())
            count += 1
        return count, delays

    result: dict[str, Any] = {"backlog": len(timer_ids)}
    # 1. Every due timer was handed 1 s ago (waiting in the queue): how long does the pump sleep?
    handed(1.0)
    count, delays = passes(3.0)
    result["handed_recently"] = {"passes_in_3s": count, "max_sleep_returned_s": max(delays) if delays else None}
    # 2. Handed more than retry_after (30 s) ago and still queued: the pump hands them all again.
    for label in ("rehand_new_jobs", "rehand_jobs_still_queued"):
        handed(60.0)
        started = time.perf_counter()
        rounds = 0
        while True:
            with app.app_context():
                pump.pump_once()
            rounds += 1
            with engine.connect() as conn:
                left = conn.scalar(text("SELECT count(*) FROM timer WHERE id = ANY(:ids) AND enqueued_at < :t"),
                                   {"ids": timer_ids, "t": utcnow() - timedelta(seconds=30)})
            if not left or rounds > 1000:
                break
        elapsed = time.perf_counter() - started
        result[label] = {"seconds": round(elapsed, 3), "per_timer_ms": round(1000 * elapsed / len(timer_ids), 3),
                         "passes": rounds}
    engine.dispose()
    with app.app_context():
        db.session.remove()
    bench._redis().flushdb()
    return result


def profile_batches(app: Any, timer_ids: list[str], per_job: int) -> dict[str, Any]:
    """cProfile the batch job (``fire_timers``, what the pump hands out) on ``timer_ids``,
    ``per_job`` at a time: wall and in-process CPU per timer, and where that CPU goes."""
    from bpm_server.jobs import runner

    profiler = cProfile.Profile()
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(timer_ids), per_job):
        profiler.enable()
        runner.perform_in_app(app, "bpm_server.sla.jobs.fire_timers", timer_ids[start:start + per_job])
        profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    lines = [line.rstrip() for line in out.getvalue().splitlines()]
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return {"timers": len(timer_ids), "per_job": per_job, "wall_ms_per_timer": round(1000 * wall / len(timer_ids), 3),
            "cpu_ms_per_timer_in_process": round(1000 * cpu / len(timer_ids), 3),
            "top_tottime": [line for line in lines[start:] if line.strip()]}


def profile_run(bench: Bench, sample: int, forked: int, backlog: int, batched: int = 0) -> dict[str, Any]:
    """cProfile fire_timer in-process on ``sample`` due timers; time ``forked`` more the way rq's
    forking Worker runs them (fork, then worker.perform builds an app in the child); then
    drive the pump in-process against ``backlog`` due-but-unfired timers."""
    from bpm_server import worker as rq_entry
    from bpm_server.app import create_app
    from bpm_server.config import Config
    from bpm_server.database import db
    from bpm_server.jobs import runner

    total = sample + forked + backlog + batched
    log(f"profile: building {total} due timers")
    seeded, _ = build(bench, total, min(total, bench.args.seed_instances))
    deadlines = bench.place_deadlines(utcnow() - timedelta(seconds=5), 0.0, seeded["assignee_ids"])
    with bench.app.app_context():
        timer_ids = list(db.session.scalars(text(
            "SELECT id FROM timer WHERE kind = 'sla_breach' AND fired_at IS NULL AND cancelled_at IS NULL "
            "AND due_at <= now() ORDER BY due_at, id")))
        db.session.remove()
    assert len(timer_ids) == len(deadlines)
    # The app a worker process builds from its environment (rq queue configured, system clock).
    worker_app = create_app(Config(database_url=bench.db_url, redis_url=bench.redis_url, queue_name=bench.queue))
    together, timer_ids = timer_ids[:batched], timer_ids[batched:]
    warm, cold, waiting = timer_ids[:sample], timer_ids[sample:sample + forked], timer_ids[sample + forked:]
    runner.perform_in_app(worker_app, "bpm_server.sla.jobs.fire_timer", warm[0])  # first call: imports, caches
    profiler = cProfile.Profile()
    per_call = []
    for timer_id in warm[1:]:
        started = time.perf_counter()
        profiler.enable()
        runner.perform_in_app(worker_app, "bpm_server.sla.jobs.fire_timer", timer_id)
        profiler.disable()
        per_call.append(time.perf_counter() - started)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(30)
    cumulative = out.getvalue()
    out = io.StringIO()
    stats.stream = out
    stats.sort_stats("tottime").print_stats(20)
    tottime = out.getvalue()
    # rq's Worker forks a work horse per job; worker.perform caches its app in a module global,
    # which the parent never fills, so every horse builds a new app (and engine, and connection).
    env = bench.worker_env()
    per_fork, failures = [], 0
    forked_stats: pstats.Stats | None = None
    for timer_id in cold:
        dump = bench.log_dir / f"horse-{timer_id}.prof"
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.environ.update(env)
                rq_entry._worker_app = None
                child = cProfile.Profile()
                child.enable()
                rq_entry.perform("bpm_server.sla.jobs.fire_timer", timer_id)
                child.disable()
                child.dump_stats(str(dump))
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        per_fork.append(time.perf_counter() - started)
        if status != 0 or not dump.exists():
            failures += 1
            continue
        if forked_stats is None:
            forked_stats = pstats.Stats(str(dump), stream=io.StringIO())
        else:
            forked_stats.add(str(dump))
        dump.unlink()
    forked_cumulative = ""
    if forked_stats is not None:
        forked_stats.stream = out = io.StringIO()
        forked_stats.sort_stats("cumulative").print_stats(40)
        forked_cumulative = out.getvalue()
    batch_result = profile_batches(worker_app, together, 100) if together else None
    backlog_result = pump_backlog(bench, worker_app, waiting) if waiting else None
    with worker_app.app_context():
        db.session.remove()
        db.engine.dispose()
    with bench.app.app_context():
        fired = db.session.scalar(text("SELECT count(*) FROM timer WHERE kind = 'sla_breach' AND fired_at IS NOT NULL"))
        db.session.remove()

    def trim(report: str) -> list[str]:
        lines = [line.rstrip() for line in report.splitlines()]
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        return [line for line in lines[start:] if line.strip()]

    return {"in_process_warm_app": {"calls": len(per_call), "per_call_s": summary(per_call)},
            "forked_like_rq_worker": {"calls": len(per_fork), "failures": failures, "per_job_s": summary(per_fork),
                                      "top_cumulative_in_horse": trim(forked_cumulative)},
            "timers_fired": fired, "pump_with_backlog": backlog_result, "batch_job": batch_result,
            "top_cumulative": trim(cumulative), "top_tottime": trim(tottime)}


