"""Customer accounts (the ERP's accounts) and what the server watches about them:
signals, rule tables and their firings, the daily health history, settings."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bpm_server.database import JsonType, Model, UTCDateTime

TIERS = ("strategic", "key", "standard")
CONTACT_ROLES = ("decision_maker", "user", "finance", "technical", "other")


class Account(Model):
    __tablename__ = "account"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # the ERP's account id
    name: Mapped[str] = mapped_column(String(300))
    tier: Mapped[str] = mapped_column(String(20), default="standard")
    owner: Mapped[str | None] = mapped_column(String(100), nullable=True)  # username of the account manager
    executive_sponsor: Mapped[str | None] = mapped_column(String(100), nullable=True)
    industry: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # [{"name", "role", "phone", "email", "since"}]: the customer's people we deal with
    contacts: Mapped[list] = mapped_column(JsonType, default=list)
    contract_value: Mapped[float | None] = mapped_column(Float, nullable=True)  # yearly, CNY
    relationship_start: Mapped[date | None] = mapped_column(Date, nullable=True)
    growth_potential: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 0-100, the owner's estimate
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AccountSignal(Model):
    """One measured fact about an account, as another system (or a person) reported it."""

    __tablename__ = "account_signal"
    __table_args__ = (Index("ix_account_signal_account_at", "account_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    signal_id: Mapped[str] = mapped_column(String(200), unique=True)  # the sender's id: repeats are ignored
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    kind: Mapped[str] = mapped_column(String(40))
    value: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # when it was measured
    source: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AccountRuleVersion(Model):
    """One version of a rule: a DMN decision table whose outputs name the process to start."""

    __tablename__ = "account_rule_version"
    __table_args__ = (UniqueConstraint("rule_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(300))
    dmn: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RuleFiring(Model):
    """A rule that matched an account's facts: what it asked to start, and whether it did."""

    __tablename__ = "account_rule_firing"
    __table_args__ = (Index("ix_account_rule_firing_open", "account_id", "rule_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    rule_id: Mapped[str] = mapped_column(String(100))
    rule_version: Mapped[int] = mapped_column(Integer)
    process_model_id: Mapped[str] = mapped_column(String(100))
    priority: Mapped[str] = mapped_column(String(20))
    facts: Mapped[dict] = mapped_column(JsonType)  # every fact of the account at the evaluation
    inputs: Mapped[list] = mapped_column(JsonType)  # the table's input values: what made it fire
    trigger: Mapped[str] = mapped_column(String(200))  # "signal:<signal_id>" or "daily"
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    process_instance_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    outcome: Mapped[str] = mapped_column(String(20), default="pending")  # pending, started, failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class HealthSnapshot(Model):
    """An account's health score on one day (the latest computation of that day wins)."""

    __tablename__ = "account_health"
    __table_args__ = (UniqueConstraint("account_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    day: Mapped[date] = mapped_column(Date)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    components: Mapped[dict] = mapped_column(JsonType)  # per component: score, weight, the facts behind it
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AccountSetting(Model):
    """Deployment-wide account settings (health weights, value-matrix cut), audited on change."""

    __tablename__ = "account_setting"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict] = mapped_column(JsonType)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
