"""Redis loses everything (FLUSHALL, then a restart of redis-server) while timers are
due and their batches wait on the queue: the database is the truth, so every timer
still fires, once, with no worker restarted."""
from __future__ import annotations

import time

from tests.faults.conftest import soon
from tests.faults.data import breaches_due_at, breaches_logged, fired_once, lateness, start_projects
from tests.faults.stack import RedisServer, Stack, wait_for


def test_redis_flushed_and_restarted_with_timers_pending_fires_each_once(people, stack: Stack,
                                                                         private_redis: RedisServer):
    # Four batches of 100 (the pump's per_job): the first is logged while the rest still wait on
    # the queue, which is what the flush must lose. (With 120 both batches could be done by then.)
    start_projects(stack, people["sales"], 400)
    stack.start_workers(2)
    workers = [w.pid for w in stack.live_workers()]
    tasks = breaches_due_at(stack, soon(2))
    # The pump has handed the batches to the queue and the workers are at the first ones.
    wait_for(lambda: breaches_logged(stack), 30, "the first breach logged", every=0.01)
    handed = stack.sql("SELECT count(*) FROM timer WHERE enqueued_at IS NOT NULL AND fired_at IS NULL "
                       "AND kind = 'sla_breach'")[0][0]
    assert handed > 0, "every batch was done before the flush: nothing for Redis to lose"
    private_redis.client().flushall()
    lost_at = time.monotonic()
    private_redis.stop()
    private_redis.start()  # same port, empty

    wait_for(lambda: fired_once(stack, tasks), 90, "every breach logged")
    recovered = time.monotonic() - lost_at
    # The pump noticed the queue was emptied and handed the lost batches out again at once,
    # not after retry_after (30 s).
    assert recovered < 25, f"the lost batches took {recovered:.1f} s"
    assert "the job queue lost its contents" in stack.worker_logs()
    assert [w.pid for w in stack.live_workers()] == workers, "no worker died or was restarted"
    stack.settled()  # further pump passes, and their jobs run: still once each
    assert set(breaches_logged(stack).values()) == {1}
    stack.assert_consistent()
    print(f"\nFIGURES Redis flushed and restarted: {handed} breaches handed out but unfired at the flush; "
          f"all {len(tasks)} logged {recovered:.1f} s later; late {lateness(stack)}")
