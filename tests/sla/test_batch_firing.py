"""A batch of SLA timers fired together (``sla.batch``, what a storm's jobs do) makes
exactly the rows the same timers make fired one by one: breach and escalation
entries, notices, audit entries, task changes and later rungs; the chain stays
intact. Two workers firing overlapping batches at once log each breach once.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from bpm_server.audit.models import AuditEvent
from bpm_server.database import db
from bpm_server.notifications.models import Notification
from bpm_server.runtime import fire_timer, fire_timers
from bpm_server.sla import jobs
from bpm_server.sla.batch import KINDS
from bpm_server.sla.models import BreachEntry, Timer
from bpm_server.tasks.models import HumanTask
from tests.api.flows import do_stage, start_project
from tests.support import at_once

SIGNED = "2026-03-02T09:00:00+08:00"


def start_set(people: dict, accounts: list[str]) -> list[str]:
    """Projects for the accounts, the first one moved past kickoff (its kickoff timers are cancelled)."""
    ids = [start_project(people["sales"], account_id=account, signed_at=SIGNED)["id"] for account in accounts]
    do_stage(people, ids[0], "kickoff")
    return ids


def due_sla_timers(instance_ids: list[str], now: datetime) -> list[str]:
    return list(db.session.scalars(select(Timer.id).where(
        Timer.process_instance_id.in_(instance_ids), Timer.kind.in_(KINDS), Timer.fired_at.is_(None),
        Timer.cancelled_at.is_(None), Timer.due_at <= now).order_by(Timer.due_at, Timer.created_at)))


def fire_one_by_one(app: Flask, instance_ids: list[str], now: datetime) -> list[str]:
    rt = app.extensions["bpm"]
    with app.app_context():
        outcomes = []
        for timer_id in due_sla_timers(instance_ids, now):
            outcomes.append(fire_timer(db.session, rt, timer_id, now))
            db.session.commit()
        db.session.remove()
    return outcomes


def fire_as_batch(app: Flask, instance_ids: list[str], now: datetime) -> list[str]:
    rt = app.extensions["bpm"]
    with app.app_context():
        ids = due_sla_timers(instance_ids, now)
        fired = fire_timers(db.session, rt, ids, now)
        db.session.commit()
        db.session.remove()
    assert fired.rest == [], "every stage SLA timer fires in the batch"
    return [fired.outcomes[timer_id] for timer_id in ids]


def rows_of(app: Flask, instance_ids: list[str]) -> list[dict[str, Any]]:
    """Per instance, in order, what firing left behind, with its own ids replaced by names."""
    with app.app_context():
        result = []
        for iid in instance_ids:
            tasks = list(db.session.scalars(select(HumanTask).where(HumanTask.process_instance_id == iid)
                                            .order_by(HumanTask.history_seq)).unique())
            names = {t.id: f"task:{t.name}" for t in tasks} | {iid: "instance"}
            task_ids = list(names)
            entries = db.session.scalars(select(BreachEntry).where(BreachEntry.process_instance_id == iid)
                                         .order_by(BreachEntry.seq)).all()
            breach_ids = {e.id: f"breach:{e.task_name}" for e in entries if e.kind == "breach"}
            result.append({
                "log": [(e.kind, breach_ids.get(e.breach_id or ""), e.task_name, e.department, e.assignee,
                         e.due_at, e.breached_at, e.recorded_at, e.details, e.clock_kind) for e in entries],
                "notices": sorted((n.user_id, n.kind, n.title, n.body, names[n.task_id or ""], n.created_at,
                                   repr(sorted((n.params or {}).items()))) for n in db.session.scalars(
                    select(Notification).where(Notification.task_id.in_(task_ids)))),
                "audit": sorted((a.actor, a.action, names[a.object_id], a.at, repr(sorted(a.details.items())))
                                for a in db.session.scalars(select(AuditEvent).where(
                                    AuditEvent.object_id.in_(task_ids), AuditEvent.action.like("sla.%")
                                    | (AuditEvent.action == "task.reassign")))),
                "tasks": [(t.name, t.state, t.assignee_id, t.department_id, t.priority, t.due_at) for t in tasks],
                "timers": sorted((t.kind, names.get(t.task_id or ""), t.due_at, t.fired_at, t.cancelled_at,
                                  t.payload.get("level"), breach_ids.get(t.payload.get("breach_id", "")))
                                 for t in db.session.scalars(select(Timer).where(Timer.process_instance_id == iid))),
            })
        db.session.remove()
    return result


def test_a_batch_makes_the_rows_one_by_one_firing_makes(people, synced_app: Flask) -> None:
    rt = synced_app.extensions["bpm"]
    accounts = ["GAMMA", "ACME", "GAMMA"]
    one_by_one, batch = start_set(people, accounts), start_set(people, accounts)

    # The breach (and the warning before it), then the second rung a working day later
    # (reassign to the lead, raise the priority, tell the account owner), then the third.
    for moment in ("2026-03-04T10:00:00+08:00", "2026-03-05T12:00:00+08:00", "2026-03-09T12:00:00+08:00"):
        now = datetime.fromisoformat(moment)
        rt.clock.set(now)
        alone, together = fire_one_by_one(synced_app, one_by_one, now), fire_as_batch(synced_app, batch, now)
        assert [o.split(":")[0] for o in together] == [o.split(":")[0] for o in alone]
        assert any(o.startswith("breach logged") for o in alone) or moment != "2026-03-04T10:00:00+08:00"

    assert rows_of(synced_app, batch) == rows_of(synced_app, one_by_one)
    breaches = people["auditor"].get("/api/v1/sla/breaches?per_page=100").get_json()["items"]
    # Each set: two kickoffs breached (first rung, level 2, and the rung a working day later,
    # level 3), and the project moved past kickoff breached its next stage (level 2 so far).
    assert sorted((b["task_name"], [e["level"] for e in b["escalations"]]) for b in breaches) == [
        ("kickoff", [2, 3])] * 4 + [("needs_research", [2])] * 2
    verified = people["auditor"].get("/api/v1/sla/breaches/verify").get_json()
    assert verified["intact"] is True, verified


def breach_count() -> int:
    return db.session.scalar(select(func.count()).select_from(BreachEntry).where(BreachEntry.kind == "breach")) or 0


def test_two_workers_firing_overlapping_batches_at_once_log_each_breach_once(people, synced_app: Flask) -> None:
    rt = synced_app.extensions["bpm"]
    instance_ids = [start_project(people["sales"], account_id="GAMMA", signed_at=SIGNED)["id"] for _ in range(8)]
    now = datetime.fromisoformat("2026-03-04T10:00:00+08:00")
    rt.clock.set(now)
    with synced_app.app_context():
        ids = due_sla_timers(instance_ids, now)  # a warning and a breach per kickoff
        db.session.remove()
    assert len(ids) == 16
    halves = [ids[:12], ids[4:]]  # the middle eight are in both workers' batches

    def worker(batch: list[str]) -> dict[str, str]:
        with synced_app.app_context():
            outcome = jobs.fire_timers(batch)
            db.session.remove()
        return outcome

    results = at_once(*(lambda half=half: worker(half) for half in halves))
    acted = [timer_id for outcome in results for timer_id, text in outcome.items()
             if not text.startswith("already fired")]
    assert sorted(acted) == sorted(ids), "each timer acted once, in one of the two workers"
    with synced_app.app_context():
        assert breach_count() == 8
        db.session.remove()
    verified = people["auditor"].get("/api/v1/sla/breaches/verify").get_json()
    assert verified["intact"] is True, verified
