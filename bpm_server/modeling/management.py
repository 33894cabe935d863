"""Managing process models as a whole: creating one with its first files, putting an
older version back as the one new instances start on, archiving and unarchiving.

Publishing a version's content stays in ``service``; this module adds the model's
lifecycle around it. The caller owns the transaction.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.audit.service import record as audit
from bpm_server.errors import Conflict, Invalid, NotFound
from bpm_server.modeling.models import ProcessModel, ProcessModelVersion
from bpm_server.modeling.service import publish_version

MODEL_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")


def create_model(session: Session, *, model_id: str, name: str, description: str,
                 content: bytes | Mapping[str, bytes], entry_process: str | None, actor: str, now: datetime,
                 local_forms: Mapping[str, Any] | None = None) -> tuple[ProcessModel, ProcessModelVersion]:
    """A new model with its first version (one diagram, or several BPMN and DMN files with the
    model's own forms); nothing is stored if the files have problems."""
    if not MODEL_ID.fullmatch(model_id):
        raise Invalid(f"model id {model_id!r} must be lower-case letters, digits, '-' or '_' (at most 100)",
                      code="invalid_model_id", details={"id": ["lower-case letters, digits, '-' or '_'"]})
    if session.get(ProcessModel, model_id) is not None:
        raise Conflict(f"process model {model_id!r} already exists; upload a new version to it instead",
                       code="process_model_exists")
    process_model = ProcessModel(id=model_id, name=name, description=description, created_at=now)
    session.add(process_model)
    session.flush()
    # publish_version raises Invalid (422 per element) before storing anything of the
    # version; the caller's rollback then removes the model row too.
    version, _created = publish_version(session, model_id, content, source="upload", now=now, created_by=actor,
                                        entry_process=entry_process, local_forms=dict(local_forms or {}))
    audit(session, actor=actor, action="process_model.create", object_type="process_model", object_id=model_id,
          now=now, version=version.version)
    return process_model, version


def get_model(session: Session, model_id: str) -> ProcessModel:
    process_model = session.get(ProcessModel, model_id)
    if process_model is None:
        raise NotFound(f"process model {model_id!r} does not exist", code="unknown_process_model")
    return process_model


def republish(session: Session, model_id: str, number: int, *, actor: str, now: datetime) -> ProcessModelVersion:
    """Make version ``number`` the one new instances start on again (a roll back).

    Versions are immutable and identified by their content, so the old version
    itself becomes current again rather than a copy under a new number; running
    instances keep the version they started with."""
    process_model = get_model(session, model_id)
    version = session.scalar(select(ProcessModelVersion).where(ProcessModelVersion.process_model_id == model_id,
                                                               ProcessModelVersion.version == number))
    if version is None:
        raise NotFound(f"process model {model_id!r} has no version {number}", code="unknown_version")
    if process_model.current_version_id == version.id:
        raise Conflict(f"version {number} is already the current version of {model_id!r}", code="already_current")
    previous = session.get(ProcessModelVersion, process_model.current_version_id) \
        if process_model.current_version_id else None
    process_model.current_version_id = version.id
    audit(session, actor=actor, action="process_model.republish", object_type="process_model", object_id=model_id,
          now=now, version=number, previous_version=previous.version if previous else None)
    session.flush()
    return version


def archive(session: Session, model_id: str, *, actor: str, now: datetime) -> ProcessModel:
    """No new instances of the model; running ones go on to their end."""
    process_model = get_model(session, model_id)
    if process_model.archived_at is not None:
        raise Conflict(f"process model {model_id!r} is already archived", code="already_archived")
    process_model.archived_at, process_model.archived_by = now, actor
    audit(session, actor=actor, action="process_model.archive", object_type="process_model", object_id=model_id,
          now=now)
    session.flush()
    return process_model


def unarchive(session: Session, model_id: str, *, actor: str, now: datetime) -> ProcessModel:
    process_model = get_model(session, model_id)
    if process_model.archived_at is None:
        raise Conflict(f"process model {model_id!r} is not archived", code="not_archived")
    process_model.archived_at = process_model.archived_by = None
    audit(session, actor=actor, action="process_model.unarchive", object_type="process_model", object_id=model_id,
          now=now)
    session.flush()
    return process_model


def check_startable(session: Session, model_id: str) -> None:
    """409 when the model is archived (404 when unknown is left to ``current_version``)."""
    process_model = session.get(ProcessModel, model_id)
    if process_model is not None and process_model.archived_at is not None:
        raise Conflict(f"process model {model_id!r} is archived: it starts no new instances "
                       f"(unarchive it first)", code="process_model_archived")
