"""Process models, their immutable versions, and the form library."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bpm_server.database import JsonType, Model, UTCDateTime


class ProcessModel(Model):
    __tablename__ = "process_model"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # e.g. "account-project"
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    current_version_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # An archived model starts no new instances; those running go on.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    archived_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class ProcessModelVersion(Model):
    """A published diagram. Never changed once written: instances run on the
    version they started with, and the forms it used are snapshotted with it."""

    __tablename__ = "process_model_version"
    __table_args__ = (UniqueConstraint("process_model_id", "version"),
                      UniqueConstraint("process_model_id", "content_hash"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    process_model_id: Mapped[str] = mapped_column(ForeignKey("process_model.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    entry_process: Mapped[str] = mapped_column(String(200))
    # Deferred: instances load their version on every step, and the diagram text
    # is only needed to compile it once per process (compiled models are cached).
    bpmn_xml: Mapped[str] = mapped_column(Text, deferred=True)
    forms: Mapped[dict] = mapped_column(JsonType)  # form name -> JSON Schema
    # A multi-file model (several BPMN files, DMN tables): file name -> text, the
    # entry file (also in bpmn_xml) included. NULL for a one-file version.
    files: Mapped[dict | None] = mapped_column(JsonType, nullable=True, deferred=True)
    source: Mapped[str] = mapped_column(String(20))  # "sync" or "upload"
    created_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FormDefinition(Model):
    """The current text of each form file under forms/, as last synced."""

    __tablename__ = "form_definition"

    name: Mapped[str] = mapped_column(String(300), primary_key=True)  # path under forms/
    content_hash: Mapped[str] = mapped_column(String(64))
    schema: Mapped[dict] = mapped_column(JsonType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
