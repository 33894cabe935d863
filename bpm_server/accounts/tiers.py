"""What a tier review (客户分级调整审批) starts with: the account's tier today and the value
matrix's suggested tier (seeds/001: star -> strategic, cash cow and potential -> key,
problem -> standard), whether a person starts it or the health rule does.

The values are the data the review's stages show (``showData``: current_tier,
suggested_tier, reason), so the reviewer sees what the matrix proposes, not only that
something was low.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from bpm_server.accounts import health
from bpm_server.accounts.models import Account
from bpm_server.accounts.service import list_accounts

# The names a person reads in the reason (the process's first language; the tier names
# are the review form's choice labels, translated on the task page like every choice).
QUADRANT_NAMES = {"star": "明星客户", "cash_cow": "现金牛客户", "potential": "潜力客户", "problem": "问题客户"}
TIER_NAMES = {"strategic": "战略客户", "key": "重点客户", "standard": "标准客户"}
# Chinese punctuation, meant (ruff's RUF001 takes it for look-alikes of ASCII).
MATRIX_REASON = "价值矩阵：{quadrant}（当前价值 {value:g}，潜力 {potential:g}）"  # noqa: RUF001
SUGGESTED_REASON = "建议分级：{tier}"  # noqa: RUF001
RULE_REASON = "规则 {rule}"
HEALTH_REASON = "健康度 {score:g}"
SEPARATOR = "；"  # noqa: RUF001


def suggestion(session: Session, account: Account, day: date, *, suggested: str | None = None,
               why: str | None = None) -> dict[str, Any]:
    """``current_tier``, ``suggested_tier`` (the matrix's unless ``suggested`` is given),
    ``quadrant`` and a ``reason`` that names them (``why`` first: what started the review)."""
    placements, _ = health.value_matrix(session, list_accounts(session), day)
    placement = next((p for p in placements if p.account_id == account.id), None)
    tier = suggested or (placement.suggested_tier if placement is not None else account.tier)
    parts = [why] if why else []
    if placement is not None:
        parts.append(MATRIX_REASON.format(quadrant=QUADRANT_NAMES[placement.quadrant], value=placement.value_today,
                                          potential=placement.potential))
    parts.append(SUGGESTED_REASON.format(tier=TIER_NAMES.get(tier, tier)))
    return {"current_tier": account.tier, "suggested_tier": tier,
            "quadrant": placement.quadrant if placement is not None else None, "reason": SEPARATOR.join(parts)}


def rule_reason(rule_id: str, facts: dict[str, Any]) -> str:
    """Why a rule started the review: the rule, and the health score (the fact such rules test)."""
    score = facts.get("health_score")
    parts = [RULE_REASON.format(rule=rule_id)]
    if isinstance(score, int | float):
        parts.append(HEALTH_REASON.format(score=score))
    return SEPARATOR.join(parts)
