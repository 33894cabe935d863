"""Who is calling: bearer tokens for the API, the session cookie for the web UI.

Every API view declares the roles it admits with ``@requires(...)``. ``admin``
is admitted everywhere; ``integration`` only where a view names it, which keeps
ERP tokens to hooks and messages.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from flask import session as cookie_session

from bpm_server.errors import Forbidden, Unauthenticated
from bpm_server.extensions import db_session, deployment
from bpm_server.identity import service
from bpm_server.identity.models import User
from bpm_server.request_guard import check_request, checks_after_auth

F = TypeVar("F", bound=Callable[..., Any])

READERS = ("staff", "process_owner", "auditor")
WORKERS = ("staff",)


def _authenticate() -> User:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Authorization header must be 'Bearer <token>'", code="bad_authorization_header")
        user = service.user_for_token(db_session(), token.strip(), now=deployment().clock.now())
        if user is None:
            raise Unauthenticated("the token is unknown, revoked or expired, or its user is deactivated",
                                  code="invalid_token")
        return user
    # The cookie's session must still be open on the server (signing out ends it).
    user = service.user_for_web_session(db_session(), cookie_session.get("sid"))
    if user is not None:
        return user
    raise Unauthenticated("authentication required: send 'Authorization: Bearer <token>'")


def current_user() -> User:
    user = g.get("user")
    if user is None:
        user = g.user = _authenticate()
    return user


def authorize(roles: tuple[str, ...]) -> User:
    """The caller, if one of ``roles`` (or admin); raises 401/403 otherwise."""
    user = current_user()
    if not user.has_role("admin", *roles):
        raise Forbidden(f"this needs one of the roles: {', '.join(roles)}", code="role_required")
    return user


def requires(*roles: str) -> Callable[[F], F]:
    # Put it directly under ``@blp.route``: it then runs before flask-smorest
    # parses ``@blp.arguments``, so a caller who may not use the endpoint gets
    # 401/403 and never validation feedback.
    def decorate(view: F) -> F:
        @wraps(view)
        @checks_after_auth
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            authorize(roles)
            check_request()  # the input, once the caller may call at all
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
