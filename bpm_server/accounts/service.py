"""Create, update and read customer accounts; every change is audited.

A tier is set when an account is created (or by the ERP's upsert); changing it
afterwards goes through the tier-review process (``tier_review`` names the
approving instance), never by hand.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bpm_server.accounts.models import TIERS, Account
from bpm_server.audit import service as audit
from bpm_server.errors import Conflict, Forbidden, Invalid, NotFound
from bpm_server.identity.models import Department, User
from bpm_server.instances.models import ProcessInstance

TIER_REVIEW_MODEL = "tier-review"
FIELDS = ("name", "owner", "executive_sponsor", "industry", "contacts", "contract_value", "relationship_start",
          "growth_potential")


def _check_tier(tier: str) -> None:
    if tier not in TIERS:
        raise Invalid(f"unknown tier {tier!r}; tiers are {', '.join(TIERS)}", code="unknown_tier",
                      details={"tier": [f"must be one of {', '.join(TIERS)}"]})


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def _stored(key: str, value: Any) -> Any:
    """A field as the account row keeps it (contacts are JSON: their dates as ISO text)."""
    if key == "contacts" and value is not None:
        return [{k: _jsonable(v) for k, v in contact.items()} for contact in value]
    return value


def upsert_account(session: Session, account_id: str, *, name: str, tier: str = "standard",
                   owner: str | None = None, executive_sponsor: str | None = None, now: datetime,
                   actor: str = "system", **extra: Any) -> Account:
    """Create or refresh an account as the ERP sees it (its webhook and PUT do this)."""
    _check_tier(tier)
    account = session.get(Account, account_id)
    created = account is None
    if account is None:
        account = Account(id=account_id, created_at=now, contacts=[])
        session.add(account)
    before = None if created else snapshot(account)
    account.name, account.tier, account.updated_at = name, tier, now
    if owner is not None:
        account.owner = owner
    if executive_sponsor is not None:
        account.executive_sponsor = executive_sponsor
    for key, value in extra.items():
        if key in FIELDS and value is not None:
            setattr(account, key, _stored(key, value))
    session.flush()
    after = snapshot(account)
    if created or before != after:
        audit.record(session, actor=actor, action="account.create" if created else "account.update",
                     object_type="account", object_id=account_id, now=now, before=before, after=after)
    return account


def create_account(session: Session, account_id: str, fields: Mapping[str, Any], *, actor: str,
                   now: datetime) -> Account:
    if session.get(Account, account_id) is not None:
        raise Conflict(f"account {account_id!r} already exists", code="account_exists")
    return upsert_account(session, account_id, now=now, actor=actor, **fields)


def authorize_edit(session: Session, user: User, account: Account) -> None:
    """Who may change an account's record: its owner, its executive sponsor, a department lead
    or an admin; other staff read it (403), as a record that sets SLAs and escalation must not
    be anyone's to rewrite."""
    if user.has_role("admin") or user.username in (account.owner, account.executive_sponsor):
        return
    if session.scalar(select(Department.id).where(Department.lead_user_id == user.id).limit(1)) is not None:
        return
    raise Forbidden(f"account {account.id!r} is changed by its owner, its executive sponsor, a department lead "
                    f"or an admin", code="not_account_editor")


def update_account(session: Session, account_id: str, changes: Mapping[str, Any], *, actor: str,
                   now: datetime) -> Account:
    """Change some fields. A tier change needs ``tier_review``: the id of a tier-review
    instance of this account (the approval); without one it is refused (403)."""
    account = get_account(session, account_id)
    before = snapshot(account)
    if "tier" in changes and changes["tier"] != account.tier:
        _check_tier(changes["tier"])
        review = changes.get("tier_review")
        if not review:
            raise Forbidden("a tier change goes through the tier review process (客户分级调整审批, "
                            "model tier-review): start it from the account", code="tier_change_needs_review")
        instance = session.get(ProcessInstance, review)
        decision = (instance.data or {}).get("tier_decision") if instance is not None else None
        if instance is None or instance.process_model_id != TIER_REVIEW_MODEL or instance.account_id != account_id \
                or instance.state != "completed" or not isinstance(decision, dict) \
                or decision.get("decision") != "approved" or decision.get("tier") != changes["tier"]:
            # Only a review that ended approving this very tier: one still running, rejected,
            # or of another account approves nothing (else anyone could start one and use its id).
            raise Forbidden(f"{review!r} is not a tier review of account {account_id!r} that approved tier "
                            f"{changes['tier']!r}", code="tier_change_needs_review")
        account.tier = changes["tier"]
    for key in FIELDS:
        if key in changes:
            setattr(account, key, _stored(key, changes[key]))
    if not account.name:
        raise Invalid("an account needs a name", code="invalid_account", details={"name": ["must not be empty"]})
    account.updated_at = now
    session.flush()
    after = snapshot(account)
    if before != after:
        audit.record(session, actor=actor, action="account.update", object_type="account", object_id=account_id,
                     now=now, before=before, after=after, tier_review=changes.get("tier_review"))
    return account


def apply_tier_review(session: Session, instance: ProcessInstance, *, approver: str | None,
                      now: datetime) -> Account | None:
    """A tier review that has just ended approved: its decided tier becomes the account's
    (audited with the review's id and whoever approved). Anything else changes nothing."""
    decision = (instance.data or {}).get("tier_decision")
    if instance.process_model_id != TIER_REVIEW_MODEL or instance.state != "completed" \
            or not isinstance(decision, dict) or decision.get("decision") != "approved":
        return None
    return update_account(session, instance.account_id, {"tier": decision.get("tier"), "tier_review": instance.id},
                          actor=approver or f"process:{TIER_REVIEW_MODEL}", now=now)


def snapshot(account: Account) -> dict[str, Any]:
    """The account's fields as the audit trail keeps them."""
    return {"name": account.name, "tier": account.tier,
            **{key: _jsonable(getattr(account, key)) for key in FIELDS if key != "name"}}


def get_account(session: Session, account_id: str) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"account {account_id!r} does not exist", code="unknown_account")
    return account


def list_accounts(session: Session, *, tier: str | None = None, owner: str | None = None, q: str | None = None,
                  account_ids: set[str] | None = None) -> list[Account]:
    """Customer accounts (not the internal one), by id; ``q`` searches id, name, industry and contacts."""
    query = select(Account).where(Account.id != INTERNAL_ACCOUNT_ID)
    if tier:
        _check_tier(tier)
        query = query.where(Account.tier == tier)
    if owner:
        query = query.where(Account.owner == owner)
    if account_ids is not None:
        query = query.where(Account.id.in_(account_ids))
    accounts = list(session.scalars(query.order_by(Account.id)))
    if q:
        needle = q.strip().lower()
        accounts = [a for a in accounts if needle in " ".join(
            [a.id, a.name, a.industry or "", *(str(c.get("name", "")) for c in (a.contacts or []))]).lower()]
    return accounts


def accounts_owned(session: Session, username: str) -> list[str]:
    return list(session.scalars(select(Account.id).where(or_(Account.owner == username,
                                                             Account.executive_sponsor == username))))


INTERNAL_ACCOUNT_ID = "internal"


def internal_account(session: Session, now: datetime) -> Account:
    """The account of instances no customer started (timer start events, messages that name
    no account), created on first use."""
    account = session.get(Account, INTERNAL_ACCOUNT_ID)
    if account is None:
        account = Account(id=INTERNAL_ACCOUNT_ID, name="内部流程 (internal)", tier="standard", created_at=now,
                          updated_at=now, contacts=[])
        session.add(account)
        session.flush()
    return account
