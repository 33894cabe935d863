"""Health score (from signals, daily history) and the value matrix (seeds/001).

Both are weighted sums of 0-100 component scores; the weights are settings
(``AccountSetting``) that must sum to 100. Each result carries the facts it
was computed from, so a person can see why today's value is what it is.
"""
from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bpm_server.accounts.models import Account, AccountSetting, HealthSnapshot
from bpm_server.audit import service as audit
from bpm_server.errors import Invalid

HEALTH_WEIGHTS = {"usage": 30, "satisfaction": 25, "payment": 20, "support": 10, "relationship": 15}
VALUE_WEIGHTS = {"revenue": 40, "growth": 30, "tenure": 10, "satisfaction": 20}
BANDS = (("healthy", 70.0), ("watch", 40.0), ("at_risk", 0.0))  # lowest score of each band
QUADRANT_TIERS = {"star": "strategic", "cash_cow": "key", "potential": "key", "problem": "standard"}
SETTINGS = {"health_weights": HEALTH_WEIGHTS, "value_weights": VALUE_WEIGHTS}


def setting(session: Session, key: str) -> dict[str, Any]:
    row = session.get(AccountSetting, key)
    if row is not None:
        return dict(row.value)
    return dict(SETTINGS.get(key, {"value_cut": None, "potential_cut": None}))


def set_weights(session: Session, key: str, weights: Mapping[str, Any], *, actor: str, now: datetime) -> dict:
    """Replace a weight setting; 422 naming the field unless every component has a number and they sum to 100."""
    names = SETTINGS[key]
    unknown = sorted(set(weights) - set(names))
    missing = sorted(set(names) - set(weights))
    if unknown or missing:
        raise Invalid(f"weights must name exactly: {', '.join(names)}", code="invalid_weights",
                      details={**{n: ["unknown component"] for n in unknown}, **{n: ["missing"] for n in missing}})
    bad = [n for n, w in weights.items() if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0]
    if bad:
        raise Invalid("weights are percentages (numbers from 0 to 100)", code="invalid_weights",
                      details={n: ["must be a number from 0 to 100"] for n in bad})
    total = sum(float(w) for w in weights.values())
    if abs(total - 100) > 1e-6:
        raise Invalid(f"weights must sum to 100%, these sum to {total:g}%", code="weights_not_100",
                      details={"weights": [f"sum to {total:g}, not 100"]})
    return _store(session, key, {n: float(weights[n]) for n in names}, actor=actor, now=now)


def set_matrix_cut(session: Session, cut: Mapping[str, Any], *, actor: str, now: datetime) -> dict:
    value = {}
    for name in ("value_cut", "potential_cut"):
        given = cut.get(name)
        if given is not None and (isinstance(given, bool) or not isinstance(given, (int, float))
                                  or not 0 <= given <= 100):
            raise Invalid(f"{name} must be a score from 0 to 100, or null for the median", code="invalid_cut",
                          details={name: ["must be from 0 to 100 or null"]})
        value[name] = given
    return _store(session, "matrix_cut", value, actor=actor, now=now)


def _store(session: Session, key: str, value: dict, *, actor: str, now: datetime) -> dict:
    row = session.get(AccountSetting, key)
    before = dict(row.value) if row is not None else None
    if row is None:
        row = AccountSetting(key=key, value=value, updated_by=actor, updated_at=now)
        session.add(row)
    row.value, row.updated_by, row.updated_at = value, actor, now
    audit.record(session, actor=actor, action="account.setting", object_type="account_setting", object_id=key,
                 now=now, before=before, after=value)
    session.flush()
    return value


# --------------------------------------------------------------------------- health


def band(score: float | None) -> str:
    if score is None:
        return "unknown"
    return next(name for name, low in BANDS if score >= low)


def health(facts: Mapping[str, Any], weights: Mapping[str, float]) -> tuple[float | None, dict[str, Any]]:
    """The score and, per component, its score, weight and the facts behind it. A component
    without data is left out and the others' weights share its part."""
    has = set(facts.get("has", ()))
    components: dict[str, dict[str, Any]] = {}
    if "usage_rate" in has:
        components["usage"] = {"score": float(facts["usage_rate"]),
                               "facts": {"usage_rate": facts["usage_rate"], "usage_week_1": facts["usage_week_1"]}}
    parts = []
    if facts.get("nps") is not None:
        parts.append((facts["nps"] + 100) / 2)
    if facts.get("csat") is not None:
        parts.append((facts["csat"] - 1) * 25)
    if parts:
        components["satisfaction"] = {"score": sum(parts) / len(parts),
                                      "facts": {"nps": facts.get("nps"), "csat": facts.get("csat")}}
    if "payment_overdue_days" in has:
        days = facts["payment_overdue_days"]
        components["payment"] = {"score": max(0.0, 100 - days * 100 / 60), "facts": {"payment_overdue_days": days}}
    if "support_tickets" in has:
        tickets = facts["support_tickets_30d"]
        components["support"] = {"score": max(0.0, 100 - 5 * tickets), "facts": {"support_tickets_30d": tickets}}
    relationship = (100 - 40 * facts["key_contact_left_90d"] - 20 * facts["key_contact_changed_90d"]
                    - (30 if facts["renewal_stalled_days"] > 0 else 0) - 5 * facts["competitor_activity"])
    components["relationship"] = {"score": max(0.0, relationship), "facts": {
        k: facts[k] for k in ("key_contact_left_90d", "key_contact_changed_90d", "renewal_stalled_days",
                              "competitor_activity")}}
    for name, part in components.items():
        part["score"] = round(part["score"], 1)
        part["weight"] = float(weights.get(name, 0))
    total_weight = sum(p["weight"] for p in components.values())
    if not total_weight:
        return None, components
    score = sum(p["score"] * p["weight"] for p in components.values()) / total_weight
    return round(score, 1), components


def keep_snapshot(session: Session, account: Account, day: date, score: float | None, components: dict,
                  now: datetime) -> HealthSnapshot:
    """Today's row of the account's health history (recomputed during the day, one row per day)."""
    row = session.scalar(select(HealthSnapshot).where(HealthSnapshot.account_id == account.id,
                                                      HealthSnapshot.day == day))
    if row is None:
        row = HealthSnapshot(account_id=account.id, day=day, score=score, components=components, computed_at=now)
        session.add(row)
    row.score, row.components, row.computed_at = score, components, now
    session.flush()
    return row


def health_history(session: Session, account_id: str, limit: int = 90) -> list[HealthSnapshot]:
    rows = session.scalars(select(HealthSnapshot).where(HealthSnapshot.account_id == account_id)
                           .order_by(HealthSnapshot.day.desc()).limit(limit))
    return list(reversed(list(rows)))


def latest_scores(session: Session) -> dict[str, HealthSnapshot]:
    """Each account's latest health row."""
    newest = (select(HealthSnapshot.account_id, func.max(HealthSnapshot.day).label("day"))
              .group_by(HealthSnapshot.account_id).subquery())
    rows = session.scalars(select(HealthSnapshot).join(newest, (HealthSnapshot.account_id == newest.c.account_id)
                                                       & (HealthSnapshot.day == newest.c.day)))
    return {row.account_id: row for row in rows}


# --------------------------------------------------------------------------- value matrix


@dataclass(frozen=True)
class Placement:
    account_id: str
    scores: dict[str, float]  # revenue, growth, tenure, satisfaction (0-100)
    value_today: float
    potential: float
    total: float
    quadrant: str
    suggested_tier: str


def value_matrix(session: Session, accounts: list[Account], today: date) -> tuple[list[Placement], dict]:
    """Every account's place in the matrix, and the cuts used (the medians unless configured)."""
    weights = setting(session, "value_weights")
    cut = setting(session, "matrix_cut")
    healths = latest_scores(session)
    top_revenue = max((a.contract_value or 0 for a in accounts), default=0) or 1
    rows = []
    for account in accounts:
        satisfaction = (healths[account.id].components.get("satisfaction", {}).get("score")
                        if account.id in healths else None)
        years = (today - account.relationship_start).days / 365.25 if account.relationship_start else 0
        scores = {"revenue": round((account.contract_value or 0) * 100 / top_revenue, 1),
                  "growth": float(account.growth_potential if account.growth_potential is not None else 50),
                  "tenure": round(min(max(years, 0), 10) * 10, 1),
                  "satisfaction": float(satisfaction if satisfaction is not None else 50)}
        today_part = weights["revenue"] + weights["tenure"] + weights["satisfaction"]
        value_today = sum(scores[k] * weights[k] for k in ("revenue", "tenure", "satisfaction")) / (today_part or 1)
        total = sum(scores[k] * weights[k] for k in weights) / 100
        rows.append((account.id, scores, round(value_today, 1), scores["growth"], round(total, 1)))
    value_cut = cut.get("value_cut")
    potential_cut = cut.get("potential_cut")
    if value_cut is None:
        value_cut = statistics.median([r[2] for r in rows]) if rows else 50
    if potential_cut is None:
        potential_cut = statistics.median([r[3] for r in rows]) if rows else 50
    placements = []
    for account_id, scores, value_today, potential, total in rows:
        high_value, high_potential = value_today >= value_cut, potential >= potential_cut
        quadrant = {(True, True): "star", (True, False): "cash_cow", (False, True): "potential",
                    (False, False): "problem"}[(high_value, high_potential)]
        placements.append(Placement(account_id, scores, value_today, potential, total, quadrant,
                                    QUADRANT_TIERS[quadrant]))
    return placements, {"value_cut": value_cut, "potential_cut": potential_cut, "weights": weights}
