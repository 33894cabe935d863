"""Escalation targets that resolve to nobody, and the fallback that catches them.

A ladder saying "notify the department lead" is only as good as the data behind
it: a department without a lead, an account without a sponsor or a user who has
left makes the rung act on nobody. Such gaps are reported when a policy is
saved and in ``/api/v1/health``; when a rung meets one anyway, it goes to the
deployment's fallback (``BPM_ESCALATION_FALLBACK``: ``user:<username>`` or
``role:<role>``, by default ``role:admin``) instead of doing nothing.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bpm_server.accounts.models import Account
from bpm_server.identity.models import Department, User
from bpm_server.sla.models import EscalationPolicy


def fallback_people(session: Session, fallback: str | None) -> list[User]:
    """Who a rung acts on when its own target resolves to nobody."""
    kind, _, ref = (fallback or "").partition(":")
    if kind == "user" and ref:
        user = session.scalar(select(User).where(User.username == ref, User.active))
        return [user] if user else []
    if kind == "role" and ref:
        users = session.scalars(select(User).where(User.active).order_by(User.username)).all()
        return [u for u in users if u.has_role(ref)]
    return []


def _targets(rules: Any) -> list[tuple[int, str]]:
    found = []
    for index, rule in enumerate(rules if isinstance(rules, list) else [], start=1):
        for action in rule.get("actions", []) if isinstance(rule, dict) else []:
            if isinstance(action, dict):
                for verb, target in action.items():
                    if verb in ("notify", "reassign") and isinstance(target, str):
                        found.append((index, target))
    return found


def policy_gaps(session: Session, name: str, rules: Any) -> list[dict[str, Any]]:
    """Each target of the policy that resolves to nobody for some department, account or user."""
    gaps = []
    for index, target in _targets(rules):
        problem = _problem(session, target)
        if problem:
            gaps.append({"policy": name, "rule": index, "target": target, "problem": problem})
    return gaps


def all_gaps(session: Session) -> list[dict[str, Any]]:
    found = []
    for policy in session.scalars(select(EscalationPolicy).order_by(EscalationPolicy.name)):
        found.extend(policy_gaps(session, policy.name, policy.rules))
    return found


def _problem(session: Session, target: str) -> str | None:
    if target == "department_lead":
        lead = User.__table__.alias("lead")
        rows = session.execute(
            select(Department.id).outerjoin(lead, lead.c.id == Department.lead_user_id)
            .where(or_(Department.lead_user_id.is_(None), lead.c.active.is_(False))).order_by(Department.id)).all()
        names = [r[0] for r in rows]
        return f"departments without an active lead: {', '.join(names)}" if names else None
    if target in ("account_owner", "executive_sponsor"):
        column = Account.owner if target == "account_owner" else Account.executive_sponsor
        active = select(User.username).where(User.active)
        missing = session.scalar(select(func.count()).select_from(Account).where(
            or_(column.is_(None), column.not_in(active)))) or 0
        what = "owner" if target == "account_owner" else "executive sponsor"
        return f"{missing} account(s) without an active {what}" if missing else None
    kind, _, ref = target.partition(":")
    if kind == "user":
        user = session.scalar(select(User).where(User.username == ref))
        return None if user is not None and user.active else f"user {ref!r} is deactivated or gone"
    if kind == "department":
        members = session.scalar(select(func.count()).select_from(User).where(
            User.department_id == ref, User.active)) or 0
        return None if members else f"department {ref!r} has no active member"
    return None
