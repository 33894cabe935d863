"""Escalation policies in the database: loading, choosing one for a task, and acting on it."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.accounts.models import Account
from bpm_server.audit.service import record as audit
from bpm_server.errors import AppError, Invalid
from bpm_server.extensions import Deployment
from bpm_server.identity.models import Department, User
from bpm_server.modeling.models import ProcessModel, ProcessModelVersion
from bpm_server.modeling.service import compiled, department_of
from bpm_server.notifications.service import Message
from bpm_server.notifications.texts import render
from bpm_server.sla import breaches
from bpm_server.sla.escalation import PolicyError, Rule, parse_rules, parse_settings
from bpm_server.sla.gaps import fallback_people
from bpm_server.sla.models import EscalationPolicy, EscalationSetting, Timer
from bpm_server.sla.timers import add_timer
from bpm_server.tasks.models import HumanTask

log = logging.getLogger(__name__)

#: The timer kind of an escalation's "start_process" action (fired by the runtime).
START_PROCESS_TIMER = "start_process"


class Clocked(Protocol):
    """What a ladder needs of a clock: a stage's own (``SlaClock``) or a named one (``NamedClock``)."""

    @property
    def policy(self) -> str | None: ...

    @property
    def breached_at(self) -> datetime | None: ...


def _known(session: Session) -> dict[str, set[str]]:
    departments = set(session.scalars(select(Department.id)))
    # Departments named by published models count as known even before anyone joins them.
    for version in session.scalars(select(ProcessModelVersion)):
        departments.update(filter(None, (department_of(t) for t in compiled(version).human_tasks.values())))
    return {"departments": departments, "usernames": set(session.scalars(select(User.username))),
            "process_models": set(session.scalars(select(ProcessModel.id)))}


def validate(session: Session, name: str, rules: Any) -> list[Rule]:
    try:
        return parse_rules(name, rules, **_known(session))
    except PolicyError as exc:
        raise Invalid(str(exc), code="invalid_policy", details={"policy": name, "problem": str(exc)}) from None


def put_policy(session: Session, name: str, rules: Any, *, actor: str, now: datetime) -> EscalationPolicy:
    validate(session, name, rules)
    policy = session.get(EscalationPolicy, name)
    before = policy.rules if policy else None
    if policy is None:
        policy = EscalationPolicy(name=name, rules=rules, updated_at=now, updated_by=actor)
        session.add(policy)
    policy.rules, policy.updated_at, policy.updated_by = rules, now, actor
    audit(session, actor=actor, action="policy.update", object_type="escalation_policy", object_id=name, now=now,
          before=before, after=rules)
    session.flush()
    return policy


def sync_file(session: Session, path: Path, *, now: datetime) -> list[str]:
    """Load the policies file (if present); returns the names of policies that changed."""
    if not path.is_file():
        return []
    try:
        document = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Invalid(f"{path}: not valid JSON ({exc})", code="invalid_policy") from None
    if not isinstance(document, dict) or not isinstance(document.get("policies"), dict):
        raise Invalid(f"{path}: expected an object with a 'policies' object", code="invalid_policy")
    changed = []
    try:
        for name, rules in document["policies"].items():
            current = session.get(EscalationPolicy, name)
            if current is None or current.rules != rules:
                put_policy(session, name, rules, actor="models sync", now=now)
                changed.append(name)
        settings = parse_settings(document, set(document["policies"]))
    except (PolicyError, AppError) as exc:
        message = exc.message if isinstance(exc, AppError) else str(exc)
        raise Invalid(f"{path}: {message}", code="invalid_policy") from None
    for key, policy in settings.items():
        row = session.get(EscalationSetting, key)
        if row is None:
            session.add(EscalationSetting(key=key, policy=policy))
        else:
            row.policy = policy
    session.flush()
    return changed


def resolve(session: Session, tier: str | None, stage_policy: str | None) -> str | None:
    """Which ladder a task follows: its tier's, else the stage's own, else the default."""
    tier_key = f"tier:{tier}" if tier else None
    # One query for both settings (a missing key would cost a query per session.get).
    settings = dict(session.execute(select(EscalationSetting.key, EscalationSetting.policy).where(
        EscalationSetting.key.in_([k for k in (tier_key, "default") if k]))).all())
    if tier_key in settings:
        return settings[tier_key]
    return stage_policy or settings.get("default")


def _rules(session: Session, clock: Clocked) -> list[Rule]:
    policy = session.get(EscalationPolicy, clock.policy) if clock.policy else None
    if policy is None:
        return []
    # Rules were validated when saved; people may since have left, so act on what still resolves.
    return parse_rules(policy.name, policy.rules, departments=_AnySet(), usernames=_AnySet(),
                       process_models=_AnySet())


class _AnySet(set):
    def __contains__(self, item: object) -> bool:
        return True


def later_rungs(session: Session, clock: Clocked) -> list[Rule]:
    return [r for r in _rules(session, clock) if r.on == "breach" and r.after is not None]


@dataclass
class Applied:
    """What the rules for one event did: the actions, and the breach-log entry each breach rung needs."""
    actions: list[str] = field(default_factory=list)
    escalations: list[dict[str, Any]] = field(default_factory=list)


def apply(session: Session, rt: Deployment, task: HumanTask, clock: Clocked, event: str, timer: Timer,
          now: datetime, *, level: int | None = None) -> Applied:
    """Run the rules for ``event`` (or the one rung ``level``). Breach rungs are
    logged through ``escalation_entries``, which the caller chains last (see there)."""
    rules = [r for r in _rules(session, clock) if r.on == event and
             (r.level == level if level is not None else r.after is None)]
    applied = Applied()
    # One notice per person per event: "assignee" of an unclaimed task is the whole
    # department, lead included, and the same ladder may name the lead again.
    notified: set[str] = set()
    for rule in rules:
        actions = [_act(session, rt, task, event, action, now, notified) for action in rule.actions]
        applied.actions.extend(actions)
        if event == "breach":
            applied.escalations.append({"level": rule.level, "event": "breach" if rule.after is None
                                        else f"breach + {rule.after}", "policy": clock.policy, "actions": actions})
        audit(session, actor="system", action=f"sla.{event}", object_type="task", object_id=task.id, now=now,
              level=rule.level, actions=actions)
    return applied


def escalation_entries(task: HumanTask, clock: Clocked, breach_id: str | None, applied: Applied,
                       now: datetime, *, clock_kind: str | None = None) -> list[breaches.NewEntry]:
    """One breach-log entry per breach rung that acted. The caller chains them as
    the last step of its transaction: appending locks the log's head row until
    commit, so concurrent timer jobs then wait for each other only that long."""
    return [breaches.NewEntry(kind="escalation", breach_id=breach_id, task=task,
                              assignee=task.assignee.username if task.assignee else None,
                              # Breach rungs act only on a breached clock, so breached_at is set.
                              due_at=cast(datetime, task.due_at or clock.breached_at),
                              breached_at=cast(datetime, clock.breached_at), now=now,
                              details=details, clock_kind=clock_kind)
            for details in applied.escalations]


def _act(session: Session, rt: Deployment, task: HumanTask, event: str, action: dict[str, Any], now: datetime,
         notified: set[str]) -> str:
    verb, target = next(iter(action.items()))
    if verb == "notify":
        people = _people(session, task, target)
        fell_back = "" if people else _fallback_note(rt)
        if not people:
            people = fallback_people(session, rt.config.escalation_fallback)
        account = session.get(Account, task.account_id)
        # The words are chosen per recipient, in their language, by the notifier (notifications.texts).
        params = {"title": task.title, "account": account.name if account else task.account_id,
                  "due_at": task.due_at.isoformat() if task.due_at else None}
        title, body = render(f"sla_{event}", params)
        for person in people:
            if person.id in notified:
                continue
            notified.add(person.id)
            rt.notifier.notify(session, person, Message(f"sla_{event}", title, body, task.id, params=params), now)
        return f"notify {target}: {fell_back}" + (", ".join(p.username for p in people) or "nobody")
    if verb == "reassign":
        return _reassign(session, rt, task, target, now)
    if verb == "raise_priority":
        task.priority = (task.priority or 0) + int(target)
        return f"priority raised to {task.priority}"
    if verb == "start_process":
        return _start_process(session, task, target, now)
    return f"unknown action {verb}"


def _people(session: Session, task: HumanTask, target: str) -> list[User]:
    account = session.get(Account, task.account_id)
    if target == "assignee":
        if task.assignee is not None:
            return [task.assignee]
        return list(session.scalars(select(User).where(User.department_id == task.department_id, User.active)))
    if target == "department_lead":
        department = session.get(Department, task.department_id)
        lead = session.get(User, department.lead_user_id) if department and department.lead_user_id else None
        return [lead] if lead else []
    if target in ("account_owner", "executive_sponsor"):
        username = account and (account.owner if target == "account_owner" else account.executive_sponsor)
        user = session.scalar(select(User).where(User.username == username)) if username else None
        return [user] if user else []
    kind, _, ref = target.partition(":")
    if kind == "user":
        user = session.scalar(select(User).where(User.username == ref))
        return [user] if user else []
    if kind == "department":
        return list(session.scalars(select(User).where(User.department_id == ref, User.active)))
    return []


def _fallback_note(rt: Deployment) -> str:
    if not rt.config.escalation_fallback:
        return "nobody (not set; no BPM_ESCALATION_FALLBACK): "
    return f"nobody (not set), fell back to {rt.config.escalation_fallback}: "


def _reassign(session: Session, rt: Deployment, task: HumanTask, target: str, now: datetime) -> str:
    before = task.assignee.username if task.assignee else None
    if target.startswith("department:"):
        task.department_id, task.assignee, task.state = target.split(":", 1)[1], None, "ready"
        result = f"reassigned to department {task.department_id}"
    else:
        people = _people(session, task, target)
        fell_back = "" if people else _fallback_note(rt)
        people = people or fallback_people(session, rt.config.escalation_fallback)
        if not people:
            return f"reassign to {target}: {fell_back}nobody"
        chosen = people[0]
        task.assignee, task.state, task.claimed_at = chosen, "claimed", now
        # Flush now: an out-of-office stand-in is applied as the task is written
        # (tasks.leads), and the breach log must name who really got the task.
        session.flush()
        result = f"{fell_back}reassigned to {task.assignee.username}"
        if task.assignee.id != chosen.id:
            result += f" (standing in for {chosen.username}, who is away)"
    audit(session, actor="system", action="task.reassign", object_type="task", object_id=task.id, now=now,
          before=before, after=result, reason="escalation")
    return result


def _start_process(session: Session, task: HumanTask, model_id: str, now: datetime) -> str:
    """Ask for the process to be started: a timer due now, which the runtime fires like any
    other (a domain never moves instances itself). Durable, and started once, even if the
    queue loses the wake-up; a start that fails is logged there and stops nothing here."""
    timer = add_timer(session, START_PROCESS_TIMER, task.process_instance_id, task.id, now,
                      {"process_model_id": model_id, "account_id": task.account_id,
                       "data": {"escalated_from_task": task.id,
                                "escalated_from_instance": task.process_instance_id}}, now)
    return f"start_process {model_id} requested (timer {timer.id})"
