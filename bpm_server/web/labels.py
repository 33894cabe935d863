"""Names, not ids, wherever a person reads: departments, process models and account tiers
in the reader's language, as Jinja filters::

    {{ task.department_id|department }}   {{ task.process_model_id|model_name }}   {{ account.tier|tier }}
    {{ row.assignee|person }}   (a username, as breach entries keep it)

Each lookup table is read once per request (kept on ``flask.g``); an unknown code is
shown as written, so a department nobody named still shows its code.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask, g
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bpm_server.database import db
from bpm_server.identity import departments
from bpm_server.identity.models import User
from bpm_server.modeling.catalogs import ModelTexts
from bpm_server.tasks import service as task_service
from bpm_server.tasks.models import HumanTask
from bpm_server.web.i18n import current_language

TIER_LABELS = {"strategic": _l("Strategic"), "key": _l("Key"), "standard": _l("Standard")}


def _cached(key: str, load: Any) -> Any:
    # Keyed by language as well: a page renders in one language, but a test client may
    # switch between requests that share nothing else.
    slot = f"_labels_{key}_{current_language()}"
    if slot not in g:
        setattr(g, slot, load())
    return getattr(g, slot)


def department_name(code: str | None) -> str:
    """The department's name in the reader's language (its code when it has none)."""
    if not code:
        return ""
    names: dict[str, str] = _cached("departments", lambda: departments.names(db.session, current_language()))
    return names.get(code, code)


def model_texts() -> ModelTexts:
    """This request's model catalogues in the reader's language."""
    texts: ModelTexts = _cached("model_texts", lambda: ModelTexts(db.session, current_language()))
    return texts


def model_name(model_id: str | None) -> str:
    """The process model's name in the reader's language (its id when there is no such model)."""
    if not model_id:
        return ""
    names: dict[str, str] = _cached("models", lambda: model_texts().model_names())
    return names.get(model_id, model_id)


def tier_label(tier: str | None) -> str:
    return str(TIER_LABELS.get(tier, tier)) if tier else ""


def person_name(username: str | None) -> str:
    """The person's display name (the username as written when there is no such user)."""
    if not username:
        return ""
    names: dict[str, str] = _cached("people", lambda: dict(db.session.execute(
        select(User.username, User.display_name)).tuples().all()))
    return names.get(username, username)


def stage_titles(task_ids: Iterable[str | None]) -> dict[str, str]:
    """Task id -> its stage title in the reader's language (through its instance's version's
    messages file), for rows that carry only a task id and an element id (breach entries)."""
    wanted = {task_id for task_id in task_ids if task_id}
    if not wanted:
        return {}
    rows = db.session.scalars(select(HumanTask).where(HumanTask.id.in_(wanted)))
    return task_service.titles_in(db.session, rows, current_language())


def init_labels(app: Flask) -> None:
    app.jinja_env.filters.update(department=department_name, model_name=model_name, tier=tier_label,
                                 person=person_name)
