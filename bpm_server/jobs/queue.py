"""One interface for background work: rq on Redis in production, a thread in
the embedded mode. Jobs are named by dotted path and take ids, never objects,
so the same call works across processes."""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

from flask import Flask

log = logging.getLogger(__name__)

#: The function an rq worker calls for every job (it builds the worker's app once).
RQ_ENTRY = "bpm_server.worker.perform"
#: A worker's alive key lives this long unless refreshed; its jobs are recovered once it is gone.
ALIVE_TTL_SECONDS = 10
ALIVE_KEY = "bpm:worker-alive:{}"
#: The leading timer pump bumps this counter and publishes its value on this channel after
#: every pass: an operator sees a live pump with ``redis-cli get``, and the fault tests wait
#: for "one more pass" by subscribing instead of sleeping a guessed second.
PUMP_PASSES = "bpm:timer-pump:passes"


class JobQueue(Protocol):
    def enqueue(self, job: str, *args: Any, job_id: str | None = None) -> None: ...

    def ping(self) -> bool: ...

    def backlog(self) -> int:
        """Jobs waiting to be run or running now."""
        ...

    def recover_abandoned(self) -> list[str]:
        """Queue again the jobs that were running on a worker that died; return their ids."""
        ...

    def forgot_everything(self) -> bool:
        """Whether the queue lost its contents since the last call (Redis flushed or restarted
        without persistence); the first call answers True."""
        ...

    def announce_pump_pass(self) -> None:
        """Tell whoever watches that the leading timer pump finished a pass."""
        ...


class InProcessJobQueue:
    """Runs jobs in a daemon thread inside the web process (embedded mode)."""

    def __init__(self, app: Flask, perform: Callable[..., Any]) -> None:
        self._app = app
        self._perform = perform  # bpm_server.jobs.runner.perform_in_app, given by the app factory
        self._queue: queue.Queue[tuple[str, tuple[Any, ...], str | None] | None] = queue.Queue()
        self._waiting: set[str] = set()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def enqueue(self, job: str, *args: Any, job_id: str | None = None) -> None:
        # Same contract as rq: while a job with this id waits, enqueueing it again is a no-op.
        with self._lock:
            if job_id is not None:
                if job_id in self._waiting:
                    return
                self._waiting.add(job_id)
        self._queue.put((job, args, job_id))
        self._ensure_thread()

    def ping(self) -> bool:
        return True

    def backlog(self) -> int:
        return self._queue.unfinished_tasks  # waiting plus the one running

    def recover_abandoned(self) -> list[str]:
        return []  # the runner is a thread of this very process: it cannot die alone

    def forgot_everything(self) -> bool:
        return False  # it lives and dies with this process

    def announce_pump_pass(self) -> None:
        pass  # nobody outside this process can watch the embedded pump

    def drain(self) -> None:
        """Block until every queued job has run (used by tests and shutdown)."""
        self._queue.join()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="bpm-jobs", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is not None:
                    with self._lock:
                        self._waiting.discard(item[2])
                    self._perform(self._app, item[0], *item[1])
            except Exception:  # a failing job must not kill the runner
                log.exception("job %s failed", item[0] if item else None)
            finally:
                self._queue.task_done()


class RqJobQueue:
    """Enqueues onto rq; ``bpm-server worker`` runs them."""

    def __init__(self, redis_url: str, queue_name: str) -> None:
        from redis import Redis
        from rq import Queue

        self.connection = Redis.from_url(redis_url)
        self.queue = Queue(queue_name, connection=self.connection)

    def enqueue(self, job: str, *args: Any, job_id: str | None = None) -> None:
        from rq.exceptions import DuplicateJobError
        from rq.job import JobStatus

        options: dict[str, Any] = dict(args=(job, *args), job_id=job_id, result_ttl=3600, failure_ttl=7 * 24 * 3600)
        if job_id is None:
            self.queue.enqueue_call(RQ_ENTRY, **options)
            return
        # A fixed job id makes a duplicate enqueue of the same work harmless:
        # while a job with that id still waits, it will do this work too.
        try:
            self.queue.enqueue_call(RQ_ENTRY, unique=True, **options)
        except DuplicateJobError:
            waiting = self.queue.fetch_job(job_id)
            if waiting is not None and waiting.get_status() in (JobStatus.QUEUED, JobStatus.DEFERRED,
                                                                JobStatus.SCHEDULED):
                return
            # Only the record of one that already ran (or is running) is left: queue it again.
            self.queue.enqueue_call(RQ_ENTRY, **options)

    def backlog(self) -> int:
        # Running jobs count too: a storm's last batch is still at work when the
        # queue empties, and its timers must not be handed out a second time.
        return self.queue.count + self.queue.started_job_registry.count

    def ping(self) -> bool:
        try:
            return bool(self.connection.ping())
        except Exception:
            return False

    def keep_alive(self, worker_name: str, stopping: threading.Event) -> None:
        """Refresh the worker's alive key until ``stopping`` is set (run in a thread of
        the worker). A SIGKILLed worker stops refreshing it, so its key expires within
        ALIVE_TTL_SECONDS; rq itself would only call its job abandoned after the job
        timeout (minutes)."""
        key = ALIVE_KEY.format(worker_name)
        while not stopping.is_set():
            try:
                self.connection.set(key, "1", ex=ALIVE_TTL_SECONDS)
            except Exception:  # Redis away for a moment: try again; the key outlives a few misses
                log.warning("could not refresh the worker's alive key", exc_info=True)
            stopping.wait(ALIVE_TTL_SECONDS / 5)
        try:
            self.connection.delete(key)
        except Exception:
            log.debug("could not delete the worker's alive key", exc_info=True)

    def forgot_everything(self) -> bool:
        # A marker key without expiry: only a flush (or a restart without persistence) removes it.
        try:
            return bool(self.connection.set(f"bpm:queue-marker:{self.queue.name}", "1", nx=True))
        except Exception:  # Redis unreachable: nothing to learn now; the pump's pass fails anyway
            return False

    def announce_pump_pass(self) -> None:
        try:
            passes = int(self.connection.incr(PUMP_PASSES))  # type: ignore[arg-type]  # sync client
            self.connection.publish(PUMP_PASSES, passes)
        except Exception:  # Redis away: the pass happened all the same; the next one announces
            log.debug("could not announce the timer pump's pass", exc_info=True)

    def recover_abandoned(self) -> list[str]:
        """Jobs in rq's started registry whose worker's alive key has expired (the worker
        died mid-job) go back on the queue under the same id and arguments. Every job is
        safe to run twice: timers are claimed, outbound attempts are counted and carry an
        idempotency key, so a job recovered from a worker that was only slow acts once."""
        from rq.utils import as_text

        registry = self.queue.started_job_registry
        recovered: list[str] = []
        entries: list[bytes] = list(self.connection.zrange(registry.key, 0, -1))  # type: ignore[arg-type]
        for entry in entries:
            job = self.queue.fetch_job(as_text(entry).split(":", 1)[0])  # entries are "<job id>:<execution id>"
            worker = job.worker_name if job is not None else None
            if job is None or not worker or self.connection.exists(ALIVE_KEY.format(worker)):
                continue
            # zrem first: only the process whose zrem removed the entry queues the job again.
            if not self.connection.zrem(registry.key, entry):
                continue
            self.enqueue(job.args[0], *job.args[1:], job_id=job.id)
            recovered.append(job.id)
            log.warning("job %s was running on worker %s, which is gone: queued again", job.id, worker)
        return recovered
