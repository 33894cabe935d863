"""Create, update and read customer accounts."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bpm_server.accounts.models import TIERS, Account
from bpm_server.errors import Invalid, NotFound


def upsert_account(session: Session, account_id: str, *, name: str, tier: str = "standard",
                   owner: str | None = None, executive_sponsor: str | None = None, now: datetime) -> Account:
    if tier not in TIERS:
        raise Invalid(f"unknown tier {tier!r}; tiers are {', '.join(TIERS)}", code="unknown_tier",
                      details={"tier": [f"must be one of {', '.join(TIERS)}"]})
    account = session.get(Account, account_id)
    if account is None:
        account = Account(id=account_id, created_at=now)
        session.add(account)
    account.name, account.tier, account.updated_at = name, tier, now
    if owner is not None:
        account.owner = owner
    if executive_sponsor is not None:
        account.executive_sponsor = executive_sponsor
    session.flush()
    return account


def get_account(session: Session, account_id: str) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"account {account_id!r} does not exist", code="unknown_account")
    return account


INTERNAL_ACCOUNT_ID = "internal"


def internal_account(session: Session, now: datetime) -> Account:
    """The account of instances no customer started (timer start events, messages that name
    no account), created on first use."""
    account = session.get(Account, INTERNAL_ACCOUNT_ID)
    if account is None:
        account = Account(id=INTERNAL_ACCOUNT_ID, name="内部流程 (internal)", tier="standard", created_at=now,
                          updated_at=now)
        session.add(account)
        session.flush()
    return account
