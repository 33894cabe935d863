"""Single sign-on: the interface every identity provider implements, and what a
successful sign-in does here (a user made on the first one, roles and department
from the person's groups).

A provider sends the browser away (``authorization_url``) and, once the person has
signed in there, turns the code it sent back into an ``ExternalIdentity``. The web
view keeps ``state`` and ``nonce`` in the session cookie and checks ``state`` itself;
a provider raises ``SsoFailed`` for anything else that is wrong (a replayed or
unknown code, a bad id token), and nothing is created then.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.audit.service import record as audit
from bpm_server.config import SsoMapping
from bpm_server.database import new_id
from bpm_server.errors import Conflict, Unauthenticated
from bpm_server.identity.models import ROLES, ExternalLogin, User
from bpm_server.identity.service import ensure_department

# Outbound calls to a provider give up after this many seconds (the person is waiting).
TIMEOUT_SECONDS = 10.0


class SsoFailed(Unauthenticated):
    """The provider did not vouch for the person (401); ``reason`` is for the log and the page."""

    def __init__(self, reason: str, code: str = "sso_failed") -> None:
        super().__init__(reason, code=code)
        self.reason = reason


@dataclass(frozen=True)
class ExternalIdentity:
    provider: str  # oidc, dingtalk, wecom, feishu
    subject: str  # the provider's stable id of the person
    username: str
    display_name: str
    email: str | None = None
    groups: tuple[str, ...] = ()


class SsoProvider(Protocol):
    name: str  # in the URL: /login/sso/<name>
    uses_nonce: bool

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str) -> str: ...

    def identity(self, *, code: str, redirect_uri: str, nonce: str, now: datetime) -> ExternalIdentity: ...


@dataclass
class SsoOutcome:
    user: User
    created: bool
    # Groups the person has that map to no department (and none that does): signed in without one.
    unmapped_groups: Sequence[str] = field(default_factory=list)

    @property
    def without_department(self) -> bool:
        return self.user.department_id is None


def check_mapping(mapping: SsoMapping) -> None:
    """Refuse (at start-up) a mapping that names a role that does not exist."""
    for group, roles in [("(default)", mapping.default_roles), *mapping.group_roles.items()]:
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise ValueError(f"BPM_SSO_GROUP_ROLES maps {group!r} to unknown role(s) {', '.join(unknown)}; "
                             f"roles are {', '.join(ROLES)}")


def _roles_for(mapping: SsoMapping, groups: Sequence[str]) -> list[str]:
    roles = [role for group in groups for role in mapping.group_roles.get(group, ())]
    return list(dict.fromkeys(roles)) or list(mapping.default_roles)


def _department_for(mapping: SsoMapping, groups: Sequence[str]) -> str | None:
    # The first of the person's groups that maps to a department, in the provider's order.
    return next((mapping.group_departments[g] for g in groups if g in mapping.group_departments), None)


def sign_in_external(session: Session, identity: ExternalIdentity, mapping: SsoMapping, *,
                     now: datetime) -> SsoOutcome:
    """The user for a person the provider vouched for: made on their first sign-in, their
    department and roles following their groups on each later one (when a group maps to them)."""
    link = session.scalar(select(ExternalLogin).where(ExternalLogin.provider == identity.provider,
                                                      ExternalLogin.subject == identity.subject))
    roles = _roles_for(mapping, identity.groups)
    department = _department_for(mapping, identity.groups)
    actor = f"sso:{identity.provider}"
    if link is not None:
        user = link.user
        if not user.active:
            raise SsoFailed(f"user {user.username} is deactivated", code="user_deactivated")
        link.last_sign_in_at = now
        before = {"department": user.department_id, "roles": list(user.roles)}
        if department is not None and department != user.department_id:
            ensure_department(session, department)
            user.department_id = department
        if any(g in mapping.group_roles for g in identity.groups) and set(roles) != set(user.roles):
            user.roles = roles
        after = {"department": user.department_id, "roles": list(user.roles)}
        if after != before:
            audit(session, actor=actor, action="user.update", object_type="user", object_id=user.username,
                  now=now, before=before, after=after)
        session.flush()
        return SsoOutcome(user=user, created=False, unmapped_groups=[] if department else list(identity.groups))
    if session.scalar(select(User.id).where(User.username == identity.username)) is not None:
        # Never take over a local account by name: the provider might let people pick their name.
        raise Conflict(f"a user named {identity.username!r} already exists here and is not linked to this "
                       f"sign-on; an administrator must rename one of them", code="username_taken")
    if department is not None:
        ensure_department(session, department)
    user = User(id=new_id(), username=identity.username[:100], display_name=identity.display_name[:200],
                department_id=department, roles=roles, password_hash=None, created_at=now)
    session.add(user)
    session.flush()
    session.add(ExternalLogin(id=new_id(), provider=identity.provider, subject=identity.subject, user_id=user.id,
                              created_at=now, last_sign_in_at=now))
    audit(session, actor=actor, action="user.create", object_type="user", object_id=user.username, now=now,
          before=None, after={"display_name": user.display_name, "department": department, "roles": roles,
                              "active": True, "groups": list(identity.groups)})
    session.flush()
    session.refresh(user, ["department"])
    return SsoOutcome(user=user, created=True, unmapped_groups=[] if department else list(identity.groups))
