"""Users, departments, passwords and tokens. Functions take the session and never commit."""
from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bpm_server.audit.service import record as audit
from bpm_server.database import new_id
from bpm_server.errors import Conflict, Forbidden, Invalid, NotFound, TooManyAttempts
from bpm_server.identity.models import ROLES, ApiToken, Department, LoginFailure, Substitute, User, WebSession

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


# Password guessing: after this many failed sign-ins for one username within
# the window, further attempts for it are refused, without checking the
# password, until the oldest failure leaves the window.
SIGN_IN_ATTEMPTS = 5
SIGN_IN_WINDOW = timedelta(minutes=15)


def sign_in(session: Session, username: str, password: str, *, remote_addr: str | None,
            now: datetime) -> User | None:
    """``check_password`` behind a per-username throttle: the user, or None after
    recording the failure; ``TooManyAttempts`` (429) while the name is throttled.
    Unknown names are counted like known ones, so the answer reveals nothing."""
    key = username.strip().lower()[:100]
    since = now - SIGN_IN_WINDOW
    recent = session.execute(select(func.count(), func.min(LoginFailure.at)).where(
        LoginFailure.username == key, LoginFailure.at > since)).one()
    if recent[0] >= SIGN_IN_ATTEMPTS:
        wait = max(math.ceil((recent[1] + SIGN_IN_WINDOW - now).total_seconds()), 1)
        raise TooManyAttempts(f"too many failed sign-ins for this username; try again in {(wait + 59) // 60} "
                              f"minute(s)", retry_after_seconds=wait)
    user = check_password(session, username, password)
    if user is None:
        session.add(LoginFailure(username=key, remote_addr=(remote_addr or "")[:64] or None, at=now))
    else:
        session.execute(delete(LoginFailure).where(LoginFailure.username == key))
    # Failures older than the window no longer count; drop them as we go.
    session.execute(delete(LoginFailure).where(LoginFailure.username == key, LoginFailure.at <= since))
    return user


def issue_token(session: Session, user: User, *, now: datetime) -> str:
    """Create a token; the secret is returned once and only its hash is stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(id=new_id(), user_id=user.id, token_hash=hash_token(secret), created_at=now))
    session.flush()
    return secret


def user_for_token(session: Session, token: str) -> User | None:
    # One statement: this runs on every API request.
    return session.scalar(select(User).join(ApiToken, ApiToken.user_id == User.id).where(
        ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None), User.active))


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


# --------------------------------------------------------------------------- out-of-office substitutes


def leads_department(session: Session, user: User, department_id: str) -> bool:
    department = session.get(Department, department_id)
    return bool(department and department.lead_user_id == user.id)


def _active_user(session: Session, username: str, field: str) -> User:
    user = find_user(session, username) if username else None
    if user is None or not user.active:
        raise Invalid(f"no active user {username!r}", code="unknown_user", details={field: ["no such active user"]})
    return user


def set_substitute(session: Session, lead: User, *, username: str, substitute: str, starts_on: date,
                   ends_on: date, reason: str | None, now: datetime) -> Substitute:
    """Record that ``username`` is out of office; their new tasks go to ``substitute`` for the period.
    Only the lead of the person's department (or an admin) may do this."""
    person = _active_user(session, username, "user")
    stand_in = _active_user(session, substitute, "substitute")
    if not (lead.has_role("admin") or leads_department(session, lead, person.department_id)):
        raise Forbidden(f"only the lead of department {person.department_id!r} can set {username}'s substitute",
                        code="not_department_lead")
    if stand_in.id == person.id:
        raise Invalid("a person cannot substitute for themselves", code="invalid_substitute",
                      details={"substitute": ["must be someone else"]})
    if ends_on < starts_on:
        raise Invalid("the period ends before it starts", code="invalid_period",
                      details={"until": ["must be on or after the start date"]})
    overlapping = session.scalar(select(Substitute).where(
        Substitute.user_id == person.id, Substitute.cancelled_at.is_(None),
        Substitute.starts_on <= ends_on, Substitute.ends_on >= starts_on))
    if overlapping is not None:
        raise Conflict(f"{username} already has a substitute from {overlapping.starts_on} to {overlapping.ends_on}",
                       code="substitute_overlaps")
    row = Substitute(id=new_id(), user_id=person.id, substitute_id=stand_in.id, starts_on=starts_on, ends_on=ends_on,
                     reason=reason, created_by=lead.username, created_at=now)
    session.add(row)
    session.flush()
    audit(session, actor=lead.username, action="substitute.set", object_type="user", object_id=person.username,
          now=now, substitute=stand_in.username, starts_on=starts_on.isoformat(), ends_on=ends_on.isoformat(),
          reason=reason)
    return row


def cancel_substitute(session: Session, lead: User, substitute_id: str, now: datetime) -> Substitute:
    row = session.get(Substitute, substitute_id)
    if row is None or row.cancelled_at is not None:
        raise NotFound(f"substitute {substitute_id!r} does not exist", code="unknown_substitute")
    if not (lead.has_role("admin") or leads_department(session, lead, row.user.department_id)):
        raise Forbidden("only the department lead can cancel this substitute", code="not_department_lead")
    row.cancelled_at = now
    audit(session, actor=lead.username, action="substitute.cancel", object_type="user", object_id=row.user.username,
          now=now, substitute=row.substitute.username)
    return row


def substitutes(session: Session, *, department_id: str | None, today: date) -> list[Substitute]:
    """Current and coming substitutes (of one department, or all), soonest first."""
    query = select(Substitute).join(User, Substitute.user_id == User.id).where(
        Substitute.cancelled_at.is_(None), Substitute.ends_on >= today)
    if department_id:
        query = query.where(User.department_id == department_id)
    return list(session.scalars(query.order_by(Substitute.starts_on, Substitute.id)))


def stand_in_for(session: Session, user: User, today: date) -> User:
    """Who takes ``user``'s new tasks today: their substitute (following a
    substitute who is away too), or ``user`` when nobody stands in."""
    seen = {user.id}
    current = user
    for _ in range(5):  # a short chain at most; a loop ends where it started
        row = session.scalar(select(Substitute).where(
            Substitute.user_id == current.id, Substitute.cancelled_at.is_(None),
            Substitute.starts_on <= today, Substitute.ends_on >= today).limit(1))
        if row is None or row.substitute_id in seen or not row.substitute.active:
            return current
        seen.add(row.substitute_id)
        current = row.substitute
    return current
