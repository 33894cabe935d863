"""Signals: measured facts about an account, kept as its history, and the facts
the rules and the health score read from that history."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bpm_server.accounts.models import Account, AccountSignal
from bpm_server.audit import service as audit
from bpm_server.errors import Invalid


@dataclass(frozen=True)
class Kind:
    id: str
    title: str  # Chinese first, English in parentheses
    low: float
    high: float
    unit: str
    default: float | None = None  # the value when the sender gives none (events)


KINDS = {k.id: k for k in (
    Kind("usage_rate", "产品使用率 (product usage rate)", 0, 100, "%"),
    Kind("key_contact_left", "关键联系人离职 (key contact left)", 0, 100, "人", 1),
    Kind("key_contact_changed", "关键联系人变更 (key contact changed)", 0, 100, "人", 1),
    Kind("payment_overdue_days", "回款逾期天数 (payment overdue days)", 0, 3650, "天"),
    Kind("renewal_stalled", "续约谈判停滞天数 (renewal talks stalled, days)", 0, 3650, "天"),
    Kind("competitor_activity", "竞争对手活动强度 (competitor activity, 0-10)", 0, 10, ""),
    Kind("nps", "净推荐值 NPS", -100, 100, ""),
    Kind("csat", "客户满意度 CSAT (1-5)", 1, 5, ""),
    Kind("support_tickets", "新开支持工单 (support tickets opened)", 0, 10000, "张"),
)}
USAGE_THRESHOLD_NOTE = "no usage reading in a week counts as 100 (no data, no alarm)"


def check_signal(kind: str, value: float | None) -> float:
    """The value to store, or ``Invalid`` naming the field (kind unknown, value missing or out of range)."""
    found = KINDS.get(kind)
    if found is None:
        known = ", ".join(KINDS)
        raise Invalid(f"unknown signal kind {kind!r}; known kinds: {known}", code="unknown_signal_kind",
                      details={"kind": [f"must be one of: {known}"], "known_kinds": list(KINDS)})
    if value is None:
        if found.default is None:
            raise Invalid(f"a {kind} signal needs a value", code="invalid_signal",
                          details={"value": ["required for this kind"]})
        return found.default
    if not (found.low <= value <= found.high):
        raise Invalid(f"value {value:g} is out of range for {kind}: {found.low:g} to {found.high:g}",
                      code="value_out_of_range", details={"value": [f"must be between {found.low:g} and "
                                                                    f"{found.high:g} for {kind}"]})
    return float(value)


def record_signal(session: Session, account: Account, *, signal_id: str, kind: str, value: float | None,
                  at: datetime, source: str, note: str | None, actor: str, now: datetime
                  ) -> tuple[AccountSignal, bool]:
    """The signal and whether it is new; a repeated ``signal_id`` changes nothing (idempotent)."""
    stored = check_signal(kind, value)
    existing = session.scalar(select(AccountSignal).where(AccountSignal.signal_id == signal_id))
    if existing is not None:
        if existing.account_id != account.id:
            raise Invalid(f"signal_id {signal_id!r} was already used for another account",
                          code="signal_id_taken", details={"signal_id": ["already used for another account"]})
        return existing, False
    if at > now + timedelta(minutes=5):
        raise Invalid("a signal cannot be measured in the future", code="invalid_signal",
                      details={"at": ["lies in the future"]})
    signal = AccountSignal(signal_id=signal_id, account_id=account.id, kind=kind, value=stored, at=at,
                           source=source, note=note, recorded_by=actor, recorded_at=now)
    try:
        with session.begin_nested():  # a concurrent delivery of the same signal_id wins the unique index
            session.add(signal)
    except IntegrityError:
        raced = session.scalar(select(AccountSignal).where(AccountSignal.signal_id == signal_id))
        if raced is None:
            raise
        return raced, False
    audit.record(session, actor=actor, action="account.signal", object_type="account", object_id=account.id,
                 now=now, signal_id=signal_id, kind=kind, value=stored, at=at.isoformat(), source=source)
    return signal, True


def history(session: Session, account_id: str, *, since: datetime | None = None, kind: str | None = None,
            limit: int = 500) -> list[AccountSignal]:
    """The account's signals, newest first."""
    query = select(AccountSignal).where(AccountSignal.account_id == account_id)
    if since is not None:
        query = query.where(AccountSignal.at >= since)
    if kind:
        query = query.where(AccountSignal.kind == kind)
    return list(session.scalars(query.order_by(AccountSignal.at.desc(), AccountSignal.id.desc()).limit(limit)))


def facts(session: Session, account: Account, now: datetime) -> dict[str, Any]:
    """What the rules read about an account at ``now``: numbers (``nps``, ``csat``: None until reported)."""
    recent = [s for s in history(session, account.id, since=now - timedelta(days=90)) if s.at <= now]
    latest = _latest(session, account.id, now)

    def in_window(kind: str, days: int, end_days: int = 0) -> list[float]:
        start, end = now - timedelta(days=days), now - timedelta(days=end_days)
        return [s.value for s in recent if s.kind == kind and start < s.at <= end]

    def average(values: Sequence[float]) -> float | None:
        return round(sum(values) / len(values), 1) if values else None

    week_1, week_2 = average(in_window("usage_rate", 7)), average(in_window("usage_rate", 14, 7))
    return {
        "account_id": account.id, "tier": account.tier, "industry": account.industry or "",
        "contract_value": account.contract_value or 0,
        "usage_rate": latest.get("usage_rate", 100.0),
        "usage_week_1": 100.0 if week_1 is None else week_1,
        "usage_week_2": 100.0 if week_2 is None else week_2,
        "usage_weeks_known": sum(w is not None for w in (week_1, week_2)),
        "key_contact_left_30d": sum(in_window("key_contact_left", 30)),
        "key_contact_changed_30d": sum(in_window("key_contact_changed", 30)),
        "key_contact_left_90d": sum(in_window("key_contact_left", 90)),
        "key_contact_changed_90d": sum(in_window("key_contact_changed", 90)),
        "payment_overdue_days": latest.get("payment_overdue_days", 0.0),
        "renewal_stalled_days": latest.get("renewal_stalled", 0.0),
        "competitor_activity": max(in_window("competitor_activity", 30), default=0.0),
        "nps": latest.get("nps"), "csat": latest.get("csat"),
        "support_tickets_30d": sum(in_window("support_tickets", 30)),
        "has": sorted(latest),
    }


def _latest(session: Session, account_id: str, now: datetime) -> dict[str, float]:
    """The latest value of each kind the account ever reported, up to ``now``."""
    values: dict[str, float] = {}
    for signal in session.scalars(select(AccountSignal).where(AccountSignal.account_id == account_id,
                                                              AccountSignal.at <= now)
                                  .order_by(AccountSignal.at, AccountSignal.id)):
        values[signal.kind] = signal.value
    return values
