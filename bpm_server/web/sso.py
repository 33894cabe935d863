"""Single sign-on pages: off to the provider, and back.

``/login/sso/<provider>`` keeps a fresh ``state`` and ``nonce`` in the session cookie
and sends the browser to the provider; ``/login/sso/<provider>/callback`` accepts the
answer only with that ``state`` (once: it is dropped on the first callback), lets the
provider turn the code into a person, and signs them in (a user made on their first
sign-in). Every refusal is a 401 page naming what was wrong, audited, with nothing made.
"""
from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from bpm_server.database import db
from bpm_server.errors import Conflict
from bpm_server.extensions import deployment
from bpm_server.identity.sso import SsoFailed, SsoProvider, sign_in_external
from bpm_server.web.session import begin_session, home_for, record_failed_sign_in, safe_next

blp = Blueprint("sso", __name__, template_folder="templates")
PENDING = "sso_pending"


def _provider(name: str) -> SsoProvider | None:
    return current_app.extensions.get("bpm_sso", {}).get(name)


def _callback_url(name: str) -> str:
    return url_for("sso.callback", provider=name, _external=True)


def _refused(provider: str, message: str, reason: str, status: int = 401) -> Response:
    record_failed_sign_in("", reason, method=provider)
    return Response(render_template("sso_refused.html", message=message), status=status)


@blp.route("/login/sso/<provider>")
def begin(provider: str) -> Any:
    found = _provider(provider)
    if found is None:
        return Response(render_template("errors/404.html", message=None), status=404)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    session[PENDING] = {"provider": provider, "state": state, "nonce": nonce,
                        "next": safe_next(request.args.get("next"))}
    try:
        target = found.authorization_url(redirect_uri=_callback_url(provider), state=state, nonce=nonce)
    except SsoFailed as exc:
        return _refused(provider, _("The identity provider cannot be reached: %(reason)s", reason=exc.reason),
                        exc.code, status=502)
    return redirect(target)


@blp.route("/login/sso/<provider>/callback")
def callback(provider: str) -> Any:
    found = _provider(provider)
    if found is None:
        return Response(render_template("errors/404.html", message=None), status=404)
    # Dropped now, so neither this state nor this code can be used from this browser again.
    pending = session.pop(PENDING, None)
    sent_state = request.args.get("state", "")
    if not pending or pending.get("provider") != provider or not hmac.compare_digest(
            str(pending.get("state", "")), sent_state):
        return _refused(provider, _("This sign-in was not started here or has already been used (the state does "
                                    "not match). Please sign in again."), "state_mismatch")
    if request.args.get("error"):
        return _refused(provider, _("The identity provider refused the sign-in: %(reason)s",
                                    reason=request.args.get("error_description") or request.args["error"]),
                        "provider_error")
    code = request.args.get("code") or request.args.get("authCode")  # DingTalk names it authCode
    if not code:
        return _refused(provider, _("The identity provider sent no sign-in code."), "no_code")
    now = deployment().clock.now()
    try:
        person = found.identity(code=code, redirect_uri=_callback_url(provider), nonce=pending["nonce"], now=now)
        outcome = sign_in_external(db.session, person, deployment().config.sso_mapping, now=now)
    except SsoFailed as exc:
        db.session.rollback()
        return _refused(provider, _("Single sign-on failed: %(reason)s", reason=exc.reason), exc.code)
    except Conflict as exc:
        db.session.rollback()
        return _refused(provider, _("Single sign-on failed: %(reason)s", reason=exc.message), exc.code, status=409)
    begin_session(outcome.user, method=provider)
    db.session.commit()
    target = pending.get("next") or home_for(outcome.user)
    if outcome.without_department:
        groups = "、".join(outcome.unmapped_groups) or _("(none)")
        return render_template("sso_no_department.html", target=target, groups=groups)
    return redirect(target)
