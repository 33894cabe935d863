"""Departments, users and their API tokens."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bpm_server.database import JsonType, Model, UTCDateTime

ROLES = ("staff", "process_owner", "auditor", "admin", "integration")


class Department(Model):
    __tablename__ = "department"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # code, e.g. "finance"
    # What pages show: ``name`` in Chinese (the default language), ``name_en`` in English.
    # A department nobody named has its code as ``name`` and no English name.
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lead_user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class User(Model):
    __tablename__ = "user_account"  # "user" is reserved in PostgreSQL

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    # None: signed in through single sign-on with groups that map to no department (told so).
    department_id: Mapped[str | None] = mapped_column(ForeignKey("department.id"), index=True, nullable=True)
    roles: Mapped[list[str]] = mapped_column(JsonType)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # Typed as always there: only a user made by single sign-on can lack one, and the
    # code paths that read it (CLI, demo) make users with a department.
    department: Mapped[Department] = relationship(lazy="joined")

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


class ApiToken(Model):
    __tablename__ = "api_token"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), index=True)
    # SHA-256 of the secret: tokens are long random strings, so a fast hash is
    # safe and keeps the per-request lookup to one indexed query.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)  # what it is for, e.g. "ERP webhook"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # None: never
    # Coarse on purpose: written at most once a minute per token (see
    # ``identity.service.LAST_USED_RESOLUTION``), never on every request.
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)

    user: Mapped[User] = relationship(lazy="joined")


class LoginFailure(Model):
    """A failed sign-in, kept while it counts towards the throttle (``identity.service.check_sign_in``).
    Recorded under the name as typed, whether or not such a user exists."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_username_at", "username", "at"),
                      Index("ix_login_failure_remote_addr_at", "remote_addr", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(100))
    remote_addr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebSession(Model):
    """One sign-in to the web UI. The cookie carries only this row's id (and is
    signed); signing out ends the row, so a copy of the cookie saved before is
    refused afterwards, not honoured until the cookie would have expired."""

    __tablename__ = "web_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # random, as sent in the cookie
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ExternalLogin(Model):
    """A person as an identity provider knows them (``provider``: oidc, dingtalk, wecom,
    feishu; ``subject``: the provider's stable id for them), linked to one of our users
    on their first single sign-on."""

    __tablename__ = "external_login"
    __table_args__ = (UniqueConstraint("provider", "subject", name="uq_external_login_provider_subject"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_sign_in_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")
