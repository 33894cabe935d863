"""Users, departments, passwords and tokens. Functions take the session and never commit."""
from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from bpm_server.audit.service import record as audit
from bpm_server.database import new_id
from bpm_server.errors import Conflict, Forbidden, Invalid, NotFound, TooManyAttempts
from bpm_server.identity.models import ROLES, ApiToken, Department, LoginFailure, User, WebSession

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
    roles = check_roles(roles or ["staff"])
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


# Password guessing: after ``attempts`` failed sign-ins for one username, or
# ``address_attempts`` from one client address, within the window, further
# attempts for it are refused, without checking the password, until the oldest
# failure leaves the window. The address limit keeps one client from locking
# out every name it knows; behind a proxy it needs BPM_TRUSTED_PROXIES.
SIGN_IN_ATTEMPTS = 5
SIGN_IN_ADDRESS_ATTEMPTS = 20
SIGN_IN_WINDOW = timedelta(minutes=15)


def _serialize_attempts(session: Session, keys: Iterable[str]) -> None:
    """On PostgreSQL, one sign-in at a time per username and per address, until the
    caller's transaction ends: otherwise parallel guesses all count the same failures
    and all get their password checked. The failure is committed with the lock's release."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite (development) serializes writers on its own
    for key in sorted(set(keys)):  # always the same order: two sign-ins never wait for each other
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 17))"), {"k": f"sign-in:{key}"})


def _throttled(session: Session, column: Any, value: str, limit: int, since: datetime, now: datetime,
               window: timedelta, what: str) -> None:
    count, oldest = session.execute(select(func.count(), func.min(LoginFailure.at)).where(
        column == value, LoginFailure.at > since)).one()
    if count >= limit:
        wait = max(math.ceil((oldest + window - now).total_seconds()), 1)
        raise TooManyAttempts(f"too many failed sign-ins {what}; try again in {(wait + 59) // 60} minute(s)",
                              retry_after_seconds=wait)


def sign_in(session: Session, username: str, password: str, *, remote_addr: str | None, now: datetime,
            attempts: int = SIGN_IN_ATTEMPTS, address_attempts: int = SIGN_IN_ADDRESS_ATTEMPTS,
            window: timedelta = SIGN_IN_WINDOW) -> User | None:
    """``check_password`` behind the throttles: the user, or None after recording the
    failure; ``TooManyAttempts`` (429) while the name or the address is throttled.
    Unknown names are counted like known ones, so the answer reveals nothing."""
    key = username.strip().lower()[:100]
    address = (remote_addr or "")[:64] or None
    _serialize_attempts(session, [f"user:{key}"] + ([f"addr:{address}"] if address else []))
    since = now - window
    _throttled(session, LoginFailure.username, key, attempts, since, now, window, "for this username")
    if address:
        _throttled(session, LoginFailure.remote_addr, address, address_attempts, since, now, window,
                   "from this address")
    user = check_password(session, username, password)
    if user is None:
        session.add(LoginFailure(username=key, remote_addr=address, at=now))
    else:
        session.execute(delete(LoginFailure).where(LoginFailure.username == key))
    # Failures older than the window no longer count; drop them as we go.
    session.execute(delete(LoginFailure).where(LoginFailure.at <= since, or_(
        LoginFailure.username == key, LoginFailure.remote_addr == address)))
    return user


def issue_token(session: Session, user: User, *, now: datetime, name: str | None = None,
                expires_in_days: int | None = None, default_expiry_days: int | None = None) -> str:
    """Create a token; the secret is returned once and only its hash is stored.
    It expires after ``expires_in_days`` (or the deployment's ``default_expiry_days``; None: never)."""
    days = expires_in_days if expires_in_days is not None else default_expiry_days
    if days is not None and days < 1:
        raise Invalid("a token lives at least one day", code="invalid_expiry",
                      details={"expires_in_days": ["must be 1 or more"]})
    if name is not None and len(name) > 100:
        raise Invalid("a token's name is at most 100 characters", code="invalid_token_name",
                      details={"name": ["at most 100 characters"]})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(id=new_id(), user_id=user.id, token_hash=hash_token(secret), name=name or None,
                         created_at=now, expires_at=now + timedelta(days=days) if days else None))
    session.flush()
    return secret


# A token's last use is kept to this resolution, so a busy client costs one
# small UPDATE a minute, not a write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def user_for_token(session: Session, token: str, *, now: datetime) -> User | None:
    """The active user of a live (not revoked, not expired) token, or None."""
    # One statement for the lookup: this runs on every API request.
    row = session.execute(select(ApiToken.id, ApiToken.last_used_at, User).join(User, ApiToken.user_id == User.id)
                          .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None),
                                 or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now), User.active)).first()
    if row is None:
        return None
    token_id, last_used_at, user = row
    if last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION:
        # Conditional, so concurrent requests with one token write it once.
        session.execute(update(ApiToken).where(
            ApiToken.id == token_id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_RESOLUTION))
            .values(last_used_at=now).execution_options(synchronize_session=False))
    return user


def token_state(token: ApiToken, now: datetime) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


def tokens(session: Session, *, user: User | None, page: int = 1, per_page: int = 200) -> tuple[list[ApiToken], int]:
    """Tokens (of one user, or everyone's), newest first; revoked and expired ones included."""
    query = select(ApiToken)
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(ApiToken.created_at.desc(), ApiToken.id)
                           .limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), total


def revoke_token(session: Session, actor: User | None, token_id: str, *, now: datetime,
                 actor_name: str | None = None) -> ApiToken:
    """Revoke a token: its owner or an admin (``actor`` None: the operator's CLI, named ``actor_name``).
    From the next request on, it answers 401."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"token {token_id!r} does not exist", code="unknown_token")
    if actor is not None and token.user_id != actor.id and not actor.has_role("admin"):
        raise Forbidden("only the token's owner or an admin can revoke it", code="not_token_owner")
    if token.revoked_at is not None:
        raise Conflict(f"token {token_id} was already revoked at {token.revoked_at.isoformat()}",
                       code="token_revoked")
    name = actor.username if actor is not None else (actor_name or "cli")
    token.revoked_at, token.revoked_by = now, name
    audit(session, actor=name, action="token.revoke", object_type="token", object_id=token.id, now=now,
          user=token.user.username, name=token.name)
    return token


# --------------------------------------------------------------------------- users and departments (admins)


def check_roles(roles: Iterable[str]) -> list[str]:
    roles = list(dict.fromkeys(roles))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise Invalid(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}", code="unknown_role",
                      details={"roles": [f"unknown role {r!r}; known roles: {', '.join(ROLES)}" for r in unknown]})
    if not roles:
        raise Invalid("a user needs at least one role", code="no_roles", details={"roles": ["must not be empty"]})
    return roles


def get_user(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise NotFound(f"user {username!r} does not exist", code="unknown_user")
    return user


def _other_active_admins(session: Session, user: User) -> int:
    return sum(1 for other in session.scalars(select(User).where(User.active, User.id != user.id))
               if other.has_role("admin"))


def _snapshot(user: User) -> dict:
    return {"display_name": user.display_name, "department": user.department_id, "roles": list(user.roles),
            "active": user.active}


def update_user(session: Session, actor: str, username: str, *, now: datetime, display_name: str | None = None,
                department: str | None = None, roles: Iterable[str] | None = None) -> User:
    """Change a user's name, department or roles (admins); audited with before and after."""
    user = get_user(session, username)
    before = _snapshot(user)
    if roles is not None:
        roles = check_roles(roles)
        if "admin" in user.roles and "admin" not in roles and user.active and not _other_active_admins(session, user):
            raise Conflict(f"{username} is the last active admin; make someone else admin first", code="last_admin")
        user.roles = roles
    if department is not None:
        if session.get(Department, department) is None:
            raise Invalid(f"department {department!r} does not exist", code="unknown_department",
                          details={"department": ["no such department"]})
        user.department_id = department
    if display_name is not None:
        if not display_name.strip() or len(display_name) > 200:
            raise Invalid("a display name is 1 to 200 characters", code="invalid_display_name",
                          details={"display_name": ["1 to 200 characters"]})
        user.display_name = display_name.strip()
    session.flush()
    session.refresh(user, ["department"])
    after = _snapshot(user)
    if after != before:
        audit(session, actor=actor, action="user.update", object_type="user", object_id=username, now=now,
              before=before, after=after)
    return user


def set_active(session: Session, actor: str, username: str, active: bool, *, now: datetime) -> User:
    """Deactivate (a leaver) or reactivate a user. A deactivated user's tokens and
    sessions stop at once: both look the user up and require ``active``."""
    user = get_user(session, username)
    if user.active == active:
        raise Conflict(f"{username} is already {'active' if active else 'deactivated'}",
                       code="already_active" if active else "already_inactive")
    if not active and user.has_role("admin") and not _other_active_admins(session, user):
        raise Conflict(f"{username} is the last active admin and cannot be deactivated", code="last_admin")
    user.active = active
    audit(session, actor=actor, action="user.reactivate" if active else "user.deactivate", object_type="user",
          object_id=username, now=now, before={"active": not active}, after={"active": active})
    return user


def department(session: Session, code: str) -> Department:
    found = session.get(Department, code)
    if found is None:
        raise NotFound(f"department {code!r} does not exist", code="unknown_department")
    return found


def save_department(session: Session, actor: str, code: str, *, now: datetime, name: str | None = None,
                    name_en: str | None = None, lead: str | None = None, clear_lead: bool = False,
                    create: bool = False) -> Department:
    """Create (``create``) or change a department's names (Chinese, English) and lead; audited with
    before and after."""
    existing = session.get(Department, code)
    if create:
        if existing is not None:
            raise Conflict(f"department {code!r} already exists", code="department_exists")
        if not code or len(code) > 64:
            raise Invalid("a department code is 1 to 64 characters", code="invalid_department",
                          details={"id": ["1 to 64 characters"]})
        existing = Department(id=code, name=name or code)
        session.add(existing)
        before = None
    elif existing is None:
        raise NotFound(f"department {code!r} does not exist", code="unknown_department")
    else:
        before = {"name": existing.name, "name_en": existing.name_en, "lead": _username(session, existing.lead_user_id)}
    if name is not None:
        existing.name = name
    if name_en is not None:
        existing.name_en = name_en
    if lead is not None:
        person = find_user(session, lead)
        if person is None or not person.active:
            raise Invalid(f"no active user {lead!r}", code="unknown_user", details={"lead": ["no such active user"]})
        existing.lead_user_id = person.id
    elif clear_lead:
        existing.lead_user_id = None
    session.flush()
    after = {"name": existing.name, "name_en": existing.name_en, "lead": _username(session, existing.lead_user_id)}
    if after != before:
        audit(session, actor=actor, action="department.create" if create else "department.update",
              object_type="department", object_id=code, now=now, before=before, after=after)
    return existing


def _username(session: Session, user_id: str | None) -> str | None:
    person = session.get(User, user_id) if user_id else None
    return person.username if person else None


def lead_of(session: Session, department_id: str) -> User | None:
    found = session.get(Department, department_id)
    lead = session.get(User, found.lead_user_id) if found and found.lead_user_id else None
    return lead if lead is not None and lead.active else None


# --------------------------------------------------------------------------- web sessions


def start_web_session(session: Session, user: User, *, now: datetime) -> str:
    """A new server-side session for a sign-in; its id goes into the (signed) cookie."""
    session_id = secrets.token_urlsafe(32)
    session.add(WebSession(id=session_id, user_id=user.id, created_at=now))
    session.flush()
    return session_id


def end_web_session(session: Session, session_id: str | None, *, now: datetime) -> None:
    if session_id:
        row = session.get(WebSession, session_id)
        if row is not None and row.ended_at is None:
            row.ended_at = now


def user_for_web_session(session: Session, session_id: str | None) -> User | None:
    """The active user of a session that has not been ended, or None."""
    if not session_id or not isinstance(session_id, str):
        return None
    return session.scalar(select(User).join(WebSession, WebSession.user_id == User.id).where(
        WebSession.id == session_id, WebSession.ended_at.is_(None), User.active))


# --------------------------------------------------------------------------- leads


def leads_department(session: Session, user: User, department_id: str | None) -> bool:
    department = session.get(Department, department_id) if department_id else None
    return bool(department and department.lead_user_id == user.id)


def users(session: Session, *, department: str | None = None, active: bool | None = None, page: int = 1,
          per_page: int = 50) -> tuple[list[User], int]:
    query = select(User)
    if department:
        query = query.where(User.department_id == department)
    if active is not None:
        query = query.where(User.active.is_(active))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(User.username).limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), total


def departments(session: Session) -> list[Department]:
    return list(session.scalars(select(Department).order_by(Department.id)))


def lead_username(session: Session, department: Department) -> str | None:
    return _username(session, department.lead_user_id)
