"""Signing in to the web UI, the CSRF token, and who may open which page.

The session cookie (Flask's signed cookie; HttpOnly, SameSite=Lax from the app
factory) carries the user's id, the page language and a CSRF token. Every
state-changing request that relies on the cookie must bring that token back:
as the ``csrf_token`` form field from a page, or as the ``X-CSRF-Token`` header
from ``fetch()``. Bearer-token API calls need no token (a browser never sends
them on its own).
"""
from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from bpm_server.audit.service import record as audit
from bpm_server.database import db
from bpm_server.errors import AppError, TooManyAttempts, error_body
from bpm_server.extensions import deployment
from bpm_server.identity import service as identity
from bpm_server.identity.models import Department, User
from bpm_server.web.nav import NAV_ITEMS

F = TypeVar("F", bound=Callable[..., Any])
blp = Blueprint("session", __name__, template_folder="templates", static_folder="static",
                static_url_path="/static/web")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LEAD = "lead"  # a pseudo-role for page_requires: the user leads their department


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _csrf_ok() -> bool:
    expected = session.get("csrf")
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    return bool(expected) and hmac.compare_digest(str(expected), str(sent))


def _check_csrf() -> ResponseReturnValue | None:
    if request.method in SAFE_METHODS:
        return None
    if request.path.startswith("/api/"):
        # Only cookie-authenticated API calls can be forged by another site.
        if request.headers.get("Authorization") or not session.get("user_id"):
            return None
        if _csrf_ok():
            return None
        return jsonify(error_body(403, "csrf_failed", "missing or wrong X-CSRF-Token header")), 403
    if _csrf_ok():
        return None
    return Response(render_template("errors/csrf.html"), status=400)


def page_user() -> User | None:
    """The signed-in user of this request, or None."""
    if "page_user" in g:
        return g.page_user
    # The cookie alone is not enough: its session must not have been ended by signing out.
    user = identity.user_for_web_session(db.session, session.get("sid"))
    g.page_user = user
    return user


def is_lead(user: User | None) -> bool:
    if user is None:
        return False
    department = db.session.get(Department, user.department_id) if user.department_id else None
    return bool(department and department.lead_user_id == user.id)


def user_may(user: User | None, *roles: str) -> bool:
    """Whether the user has one of the roles (admin has them all; "lead" = leads their department)."""
    if user is None:
        return False
    if user.has_role("admin", *[r for r in roles if r != LEAD]):
        return True
    return LEAD in roles and is_lead(user)


def forbidden_page(message: str | None = None) -> Response:
    return Response(render_template("errors/403.html", message=message), status=403)


def error_page(status: int, message: str | None = None) -> Response:
    template = {403: "errors/403.html", 404: "errors/404.html"}.get(status, "errors/error.html")
    return Response(render_template(template, message=message, status=status), status=status)


def page_blueprint(name: str, import_name: str, **options: Any) -> Blueprint:
    """A blueprint for pages: a service's AppError becomes an HTML page with
    its message (403, 404, 409, 422...), never JSON or a traceback."""
    blueprint = Blueprint(name, import_name, **options)

    @blueprint.errorhandler(AppError)
    def _app_error(exc: AppError) -> Response:
        return error_page(exc.status, exc.message)

    return blueprint


def page_requires(*roles: str) -> Callable[[F], F]:
    """Anonymous visitors go to the login page; a signed-in user without one of
    ``roles`` (no roles = any signed-in user) gets the 403 page."""
    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = page_user()
            if user is None:
                # Back to the page after signing in; a form post cannot be replayed, so not to that.
                target = request.full_path.rstrip("?") if request.method == "GET" else None
                return redirect(url_for("session.login", next=target))
            g.user = user  # so bpm_server.identity.auth.current_user() sees the same person
            if roles and not user_may(user, *roles):
                return forbidden_page()
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def home_for(user: User) -> str:
    """Where a user lands after signing in: the first page of the navigation they may open."""
    links = nav_links(user)
    return links[0][1] if links else url_for("session.start")


def _endpoints() -> set[str]:
    return set(current_app.view_functions)


def safe_next(target: str | None) -> str | None:
    # Only same-site paths: "//host" and "http://" would be an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def sso_buttons() -> list[tuple[str, str]]:
    """(label, url) of the single sign-on providers configured (config.py), for the login page."""
    labels = {"oidc": _("Use single sign-on"), "dingtalk": _("Sign in with DingTalk"),
              "wecom": _("Sign in with WeCom"), "feishu": _("Sign in with Feishu")}
    config = deployment().config
    buttons = []
    for name in current_app.extensions.get("bpm_sso", {}):
        label = config.oidc.label if name == "oidc" and config.oidc and config.oidc.label else labels[name]
        buttons.append((str(label), url_for("sso.begin", provider=name, next=request.args.get("next"))))
    return buttons


def login_page(error: str | None = None, username: str = "", status: int = 200) -> Response:
    return Response(render_template("login.html", error=error, username=username, sso_buttons=sso_buttons()),
                    status=status)


def begin_session(user: User, *, method: str) -> None:
    """Sign ``user`` in on this browser (a fresh cookie session and CSRF token), audited."""
    language = session.get("lang")
    session.clear()  # a fresh session (and CSRF token) on every sign-in
    if language:
        session["lang"] = language
    now = deployment().clock.now()
    session["user_id"] = user.id
    session["sid"] = identity.start_web_session(db.session, user, now=now)
    csrf_token()
    audit(db.session, actor=user.username, action="session.sign_in", object_type="user", object_id=user.username,
          now=now, method=method, remote_addr=request.remote_addr)


def record_failed_sign_in(username: str, reason: str, **details: Any) -> None:
    """Audited (and committed: the page that follows answers 401/429, which rolls back)."""
    audit(db.session, actor=username or "anonymous", action="session.sign_in_failed", object_type="user",
          object_id=username or "-", now=deployment().clock.now(), reason=reason,
          remote_addr=request.remote_addr, **details)
    db.session.commit()


@blp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    username = ""
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        config = deployment().config
        try:
            user = identity.sign_in(db.session, username, request.form.get("password", ""),
                                    remote_addr=request.remote_addr, now=deployment().clock.now(),
                                    attempts=config.sign_in_attempts, address_attempts=config.sign_in_address_attempts,
                                    window=timedelta(seconds=config.sign_in_window_seconds))
        except TooManyAttempts as exc:
            db.session.rollback()
            record_failed_sign_in(username, "throttled", method="password")
            minutes = (exc.retry_after_seconds + 59) // 60
            message = _("Too many failed sign-ins for this username or from this address. "
                        "Try again in %(minutes)s minutes.", minutes=minutes)
            response = login_page(message, username, 429)
            response.headers["Retry-After"] = str(exc.retry_after_seconds)
            return response
        if user is not None:
            begin_session(user, method="password")
            db.session.commit()
            return redirect(safe_next(request.args.get("next")) or home_for(user))
        # This request owns its transaction; a refused sign-in answers 401, which
        # rolls back, so the failure that counts towards the throttle is kept here.
        record_failed_sign_in(username, "wrong_password", method="password")
        # The same words whether the user exists or not.
        error = _("Wrong username or password.")
    return login_page(error, username, 401 if error else 200)


@blp.route("/logout", methods=["POST"])
def logout() -> Any:
    # Ended on the server: a copy of this cookie saved before no longer signs anyone in.
    user = page_user()
    now = deployment().clock.now()
    identity.end_web_session(db.session, session.get("sid"), now=now)
    if user is not None:
        audit(db.session, actor=user.username, action="session.sign_out", object_type="user",
              object_id=user.username, now=now, remote_addr=request.remote_addr)
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    return redirect(url_for("session.login"))


@blp.route("/")
def start() -> Any:
    """The start page: wherever the signed-in user works."""
    user = page_user()
    if user is None:
        return redirect(url_for("session.login"))
    target = home_for(user)
    if target == url_for("session.start"):
        return forbidden_page(_("There is no page for your role yet."))
    return redirect(target)


def nav_links(user: User | None) -> list[tuple[str, str]]:
    """(label, url) of the pages this user may open, for the navigation bar."""

    if user is None:
        return []
    known = _endpoints()
    return [(str(label), url_for(endpoint)) for roles, endpoint, label in NAV_ITEMS
            if endpoint in known and user_may(user, *roles)]


def init_session(app: Flask) -> None:
    app.before_request(_check_csrf)
    app.jinja_env.globals.update(csrf_token=csrf_token, nav_links=lambda: nav_links(page_user()),
                                 page_user=page_user, is_lead=lambda: is_lead(page_user()))
