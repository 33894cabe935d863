"""Model texts in the reader's language on pages that list stages of many models at once
(the SLA dashboard, the breach log, the lead page, notifications).

A task's own texts come from its instance's version (``tasks.service.shown_in``); a row
that groups a stage across versions (a dashboard bar, a weekly trend) or names only a
model reads through the model's current version's messages file, the same files
(``modeling/texts.py``) by the same rule: a text the catalogue does not know is shown
as written.
"""
from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.modeling import texts
from bpm_server.modeling.models import ProcessModel
from bpm_server.modeling.service import forms_of_version


class ModelTexts:
    """``shown(model_id, text)``: the text in ``locale`` through that model's current catalogue.
    Each model's catalogue is read once per instance (one per page or notification)."""

    def __init__(self, session: Session, locale: str) -> None:
        self._session = session
        self._locale = locale
        self._catalogs: dict[str, Mapping[str, str]] = {}

    def catalog(self, model_id: str | None) -> Mapping[str, str]:
        if not model_id:
            return {}
        if model_id not in self._catalogs:
            version_id = self._session.scalar(select(ProcessModel.current_version_id)
                                              .where(ProcessModel.id == model_id))
            self._catalogs[model_id] = (texts.catalog(forms_of_version(self._session, version_id), self._locale)
                                        if version_id else {})
        return self._catalogs[model_id]

    def shown(self, model_id: str | None, text: str | None) -> str:
        return texts.text(text, self.catalog(model_id)) or (text or "")

    def model_names(self) -> dict[str, str]:
        """Every model's name in the reader's language, by id (for lists and filters)."""
        rows = self._session.execute(select(ProcessModel.id, ProcessModel.name)).tuples().all()
        return {model_id: self.shown(model_id, name) for model_id, name in rows}
