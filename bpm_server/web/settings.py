"""The user's own settings page: the language of their notifications, and 委托 (my
delegations); also the delegation forms the department lead's page posts to."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from bpm_server.database import db
from bpm_server.errors import AppError
from bpm_server.extensions import deployment
from bpm_server.identity.auth import current_user
from bpm_server.identity.models import User
from bpm_server.modeling.catalogs import ModelTexts
from bpm_server.notifications import service as notifications
from bpm_server.notifications.texts import LANGUAGES
from bpm_server.tasks import delegation
from bpm_server.web.i18n import TIMEZONE, current_language
from bpm_server.web.session import page_blueprint, page_requires

blp = page_blueprint("settings", __name__)

_MESSAGES = {
    "unknown_user": lambda: _("There is no such active person."),
    "not_staff": lambda: _("That person is not staff and cannot work on tasks."),
    "invalid_period": lambda: _("The period must end after it starts, and not be over already."),
    "delegate_is_self": lambda: _("A person cannot delegate to themselves."),
    "unknown_process_model": lambda: _("There is no such process."),
    "delegation_overlaps": lambda: _("That person already delegates the same work in this period."),
    "delegation_cycle": lambda: _("The delegate already delegates their work back in this period; "
                                  "work would go round in a circle."),
    "not_department_lead": lambda: _("Only the person, their department's lead or an admin can do this."),
}


def say(exc: AppError) -> str:
    known = _MESSAGES.get(exc.code)
    return known() if known else exc.message


def staff_people() -> list[User]:
    return [u for u in db.session.scalars(select(User).where(User.active).order_by(User.username))
            if u.has_role("staff")]


@dataclass(frozen=True)
class ModelChoice:
    id: str
    name: str  # in the reader's language (the model's messages file)


def process_models() -> list[ModelChoice]:
    return sorted((ModelChoice(model_id, name) for model_id, name in model_names().items()), key=lambda m: m.name)


def model_names() -> dict[str, str]:
    return ModelTexts(db.session, current_language()).model_names()


def local_input(moment: datetime) -> str:
    """A moment as a datetime-local field shows it (the pages' time zone, to the minute)."""
    return moment.astimezone(ZoneInfo(TIMEZONE)).strftime("%Y-%m-%dT%H:%M")


def _moment(name: str) -> datetime | None:
    """A datetime-local field, read in the pages' time zone (the one they show times in)."""
    try:
        return datetime.fromisoformat(request.form.get(name, "")).replace(tzinfo=ZoneInfo(TIMEZONE))
    except ValueError:
        return None


def _back() -> Any:
    if request.form.get("back") == "leads":
        return redirect(url_for("leads.lead_inbox", department=request.form.get("department") or None))
    return redirect(url_for("settings.settings"))


@blp.route("/settings")
@page_requires()
def settings() -> Any:
    user = current_user()
    now = deployment().clock.now()
    rows = delegation.listed(db.session, user, now=now, user=user.username)
    return render_template("settings/settings.html", works=user.has_role("staff", "admin"),
                           given=[d for d in rows if d.delegator_id == user.id],
                           taken=[d for d in rows if d.delegate_id == user.id], staff=staff_people(),
                           models=process_models(), model_names=model_names(), starts=local_input(now), now=now,
                           languages=LANGUAGES, language=notifications.language_of(db.session, user))


@blp.route("/settings/notification-language", methods=["POST"])
@page_requires()
def set_notification_language() -> Any:
    try:
        notifications.set_language(db.session, current_user(), request.form.get("locale", ""),
                                   deployment().clock.now())
    except AppError:
        db.session.rollback()
        flash(_("Choose one of the languages offered."), "error")
        return redirect(url_for("settings.settings"))
    flash(_("Your notifications will be written in the language you chose."), "ok")
    return redirect(url_for("settings.settings"))


@blp.route("/delegations", methods=["POST"])
@page_requires("staff")
def add_delegation() -> Any:
    starts_at, ends_at = _moment("starts_at"), _moment("ends_at")
    if starts_at is None or ends_at is None:
        flash(_("Enter when the delegation starts and ends."), "error")
        return _back()
    user = current_user()
    try:
        row = delegation.create(db.session, user, delegator=request.form.get("delegator") or user.username,
                                delegate=request.form.get("delegate", ""), starts_at=starts_at, ends_at=ends_at,
                                process_model_ids=[m for m in request.form.getlist("process_model_id") if m],
                                reason=(request.form.get("reason") or "").strip()[:500] or None,
                                now=deployment().clock.now())
    except AppError as exc:
        db.session.rollback()
        flash(say(exc), "error")
        return _back()
    flash(_("From %(start)s, %(delegate)s handles %(delegator)s's work on their behalf.",
            start=local_input(row.starts_at).replace("T", " "), delegate=row.delegate.display_name,
            delegator=row.delegator.display_name), "ok")
    return _back()


@blp.route("/delegations/<delegation_id>/end", methods=["POST"])
@page_requires("staff")
def end_delegation(delegation_id: str) -> Any:
    try:
        delegation.cancel(db.session, current_user(), delegation_id, deployment().clock.now())
    except AppError as exc:
        db.session.rollback()
        flash(say(exc), "error")
        return _back()
    flash(_("Delegation ended."), "ok")
    return _back()
