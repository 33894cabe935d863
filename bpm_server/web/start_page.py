"""Start a process from the browser: choose a model and an account, fill its start form."""
from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for
from sqlalchemy import select

from bpm_server import runtime
from bpm_server.accounts.models import Account
from bpm_server.database import db
from bpm_server.errors import AppError, Invalid
from bpm_server.extensions import deployment
from bpm_server.identity.auth import current_user
from bpm_server.modeling.service import compiled, current_version, form_of, list_models, start_form_name
from bpm_server.web import forms
from bpm_server.web.session import page_blueprint, page_requires

blp = page_blueprint("start_page", __name__)


def _schema(model_id: str | None) -> dict[str, Any]:
    if not model_id:
        return {}
    try:
        version = current_version(db.session, model_id)
    except AppError:
        return {}
    name = start_form_name(compiled(version))
    return form_of(version, name) if name else {}


def _render(model_id: str | None, values: dict | None = None, errors: dict | None = None,
            status: int = 200) -> Any:
    session = db.session
    models = [m for m, versions in list_models(session) if versions]
    accounts = list(session.scalars(select(Account).order_by(Account.name)))
    schema = _schema(model_id)
    return render_template("start/start.html", models=models, accounts=accounts, model_id=model_id,
                           account_id=request.values.get("account_id"), fields=forms.fields_of(schema, values, errors),
                           errors=[m for v in (errors or {}).values() for m in v]), status


@blp.route("/processes/start")
@page_requires("staff")
def start_form() -> Any:
    return _render(request.args.get("model"))


@blp.route("/processes/start", methods=["POST"])
@page_requires("staff")
def start() -> Any:
    session = db.session
    rt = deployment()
    model_id = request.form.get("model") or ""
    data = forms.data_from_form(_schema(model_id), request.form)
    try:
        instance = runtime.start_instance(session, rt, process_model_id=model_id,
                                          account_id=request.form.get("account_id") or "", data=data,
                                          now=rt.clock.now(), started_by=current_user().username)
    except Invalid as exc:
        session.rollback()
        details = exc.details if isinstance(exc.details, dict) else {"data": [exc.message]}
        return _render(model_id, data, details, status=422)
    return redirect(url_for("instance_pages.instance_view", instance_id=instance.id))
