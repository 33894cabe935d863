"""Users, departments, passwords and tokens. Functions take the session and never commit."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.database import new_id
from bpm_server.errors import Conflict, Invalid
from bpm_server.identity.models import ROLES, ApiToken, Department, User

_hasher = PasswordHasher()
TOKEN_PREFIX = "bpm_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_department(session: Session, code: str, name: str | None = None) -> Department:
    department = session.get(Department, code)
    if department is None:
        department = Department(id=code, name=name or code)
        session.add(department)
        session.flush()
    return department


def add_user(session: Session, username: str, *, department: str, roles: Iterable[str] = ("staff",),
             password: str | None = None, display_name: str | None = None, now: datetime) -> User:
    roles = list(dict.fromkeys(roles)) or ["staff"]
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise Invalid(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}", code="unknown_role")
    if not username or len(username) > 100:
        raise Invalid("username must be 1 to 100 characters", code="invalid_username")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists", code="user_exists")
    ensure_department(session, department)
    user = User(id=new_id(), username=username, display_name=display_name or username, department_id=department,
                roles=roles, password_hash=_hasher.hash(password) if password else None, created_at=now)
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def check_password(session: Session, username: str, password: str) -> User | None:
    """The user when the password matches, else None (same answer for an unknown user)."""
    user = find_user(session, username)
    if user is None or not user.active or not user.password_hash:
        # Spend the same time as a real check so timing does not reveal who exists.
        _hasher.hash(password or "x")
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def issue_token(session: Session, user: User, *, now: datetime) -> str:
    """Create a token; the secret is returned once and only its hash is stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(id=new_id(), user_id=user.id, token_hash=hash_token(secret), created_at=now))
    session.flush()
    return secret


def user_for_token(session: Session, token: str) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)))
    if row is None or not row.user.active:
        return None
    return row.user
