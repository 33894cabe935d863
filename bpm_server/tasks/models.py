"""Human tasks as normalized rows, so the inbox never deserializes a workflow."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bpm_server.database import JsonType, Model, UTCDateTime
from bpm_server.identity.models import User

TASK_STATES = ("ready", "claimed", "completed", "cancelled")
OPEN_STATES = ("ready", "claimed")


class HumanTask(Model):
    __tablename__ = "human_task"
    __table_args__ = (
        # The two halves of the inbox query: my department's unclaimed work and
        # my own work, each already in due-date order.
        Index("ix_human_task_department_inbox", "department_id", "state", "due_at"),
        Index("ix_human_task_assignee_inbox", "assignee_id", "state", "due_at"),
        # Migration 0017 adds the same pair by priority (highest first, then soonest
        # due) for the inbox's priority sort; declared there only, as the DESC
        # NULLS LAST column order is PostgreSQL's.
        Index("ix_human_task_instance", "process_instance_id", "state"),
        Index("ix_human_task_account", "account_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    process_instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id"))
    engine_task_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(200))  # BPMN element id
    title: Mapped[str] = mapped_column(String(300))
    department_id: Mapped[str] = mapped_column(String(64))
    lane: Mapped[str | None] = mapped_column(String(200), nullable=True)
    form_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    instructions: Mapped[str | None] = mapped_column(String(4000), nullable=True)
    state: Mapped[str] = mapped_column(String(20))
    priority: Mapped[int] = mapped_column(Integer, default=0)  # raised by escalation rules
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    account_id: Mapped[str] = mapped_column(String(100))
    process_model_id: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict] = mapped_column(JsonType)  # process data when the task became ready
    submitted: Mapped[dict | None] = mapped_column(JsonType, nullable=True)  # what the completer entered
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    history_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)  # order of completion in the instance
    completed_by_id: Mapped[str | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    row_version: Mapped[int] = mapped_column(Integer, nullable=False)
    # 加签 (tasks.verbs): "stage" rows are the engine's; "sign_before"/"sign_after" rows
    # are a signer's ad hoc step on ``parent_task_id`` (same engine task).
    kind: Mapped[str] = mapped_column(String(20), default="stage", server_default="stage")
    parent_task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    waiting_on_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # a signer before me
    # Who signs after me, in turn: a user id (one signer), or {"users": [ids], "mode": "all"|"any"}
    # for a group signing together (tasks.signers).
    after_signers: Mapped[list | None] = mapped_column(JsonType, nullable=True)
    # A signer's step in a group: 会签 "all" (every one signs) or 或签 "any" (the first decides).
    sign_mode: Mapped[str | None] = mapped_column(String(3), nullable=True)
    # 委托: the person this task was meant for, when a delegation gave it to its assignee instead.
    on_behalf_of_id: Mapped[str | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    # A response clock (sla.named_clocks) may still run on this stage: claim, transfer and
    # comment look for one to stop only then, so most first actions cost no extra query.
    response_clock: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="joined")
    completed_by: Mapped[User | None] = relationship(foreign_keys=[completed_by_id], lazy="joined")
    on_behalf_of: Mapped[User | None] = relationship(foreign_keys=[on_behalf_of_id], lazy="joined")

    # Not stored: the single-task view attaches the form's JSON Schema here.
    # (Typed for the checker only: SQLAlchemy would take an annotation for a column.)
    # 加签 to a group answers the signers' steps here (tasks.signers).
    if TYPE_CHECKING:
        form: dict[str, Any] | None = None
        signer_steps: list[HumanTask] | None = None
    else:
        form = None
        signer_steps = None

    # Two claims or completions racing on the same row: the second UPDATE
    # finds the version moved on and becomes a 409.
    __mapper_args__ = {"version_id_col": row_version}  # noqa: RUF012 - read once by SQLAlchemy


class TaskAction(Model):
    """One verb a person used on a task (退回, 转交, 加签, 抄送, 催办, 撤回, release), with
    the reason: the history the next holder reads, and the count urging is limited by."""

    __tablename__ = "task_action"
    __table_args__ = (
        Index("ix_task_action_instance", "process_instance_id", "created_at"),
        Index("ix_task_action_task_verb", "task_id", "verb", "actor_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    process_instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id"))
    task_id: Mapped[str] = mapped_column(String(36))
    verb: Mapped[str] = mapped_column(String(30))
    actor_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"))
    target_user_id: Mapped[str | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    to_stage: Mapped[str | None] = mapped_column(String(200), nullable=True)
    new_task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # the row the verb opened
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    actor: Mapped[User] = relationship(foreign_keys=[actor_id], lazy="joined")
    target_user: Mapped[User | None] = relationship(foreign_keys=[target_user_id], lazy="joined")


class TaskCopy(Model):
    """抄送: a person given read-only sight of a task; ``read_at`` is the read receipt."""

    __tablename__ = "task_cc"
    __table_args__ = (UniqueConstraint("task_id", "user_id", name="uq_task_cc_task_user"),
                      Index("ix_task_cc_user", "user_id", "created_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("human_task.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"))
    by_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")
    by: Mapped[User] = relationship(foreign_keys=[by_id], lazy="joined")


class Comment(Model):
    """A comment on a task, or on the instance as a whole (``task_id`` empty)."""

    __tablename__ = "task_comment"
    __table_args__ = (Index("ix_task_comment_instance", "process_instance_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    process_instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id"))
    task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    author_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    author: Mapped[User] = relationship(lazy="joined")


class Attachment(Model):
    """A file on a task or instance. The bytes live in the database, in the same
    transaction as the history row: no file left behind by a rolled-back request,
    one backup holds everything, and the size limit keeps rows small."""

    __tablename__ = "task_attachment"
    __table_args__ = (Index("ix_task_attachment_instance", "process_instance_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    process_instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id"))
    task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    uploaded_by_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    uploaded_by: Mapped[User] = relationship(lazy="joined")


class InboxView(Model):
    """A saved inbox view (Camunda Tasklist's "filter"): a named set of inbox
    filters and a sort. Personal, or shared with the owner's department when
    ``department_id`` is set; only the owner renames, changes or deletes it."""

    __tablename__ = "inbox_view"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_inbox_view_owner_name"),
                      Index("ix_inbox_view_department", "department_id"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"))
    name: Mapped[str] = mapped_column(String(100))
    department_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # shared with it
    filters: Mapped[dict] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    owner: Mapped[User] = relationship(lazy="joined")


class Delegation(Model):
    """委托: from ``starts_at`` until ``ends_at`` (exclusive), tasks that would land on
    ``delegator`` land on ``delegate`` instead, for every process (``process_model_ids``
    empty) or only the named models. Replaced the day-based out-of-office substitutes."""

    __tablename__ = "delegation"
    __table_args__ = (Index("ix_delegation_delegator_period", "delegator_id", "starts_at", "ends_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    delegator_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"))
    delegate_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    process_model_ids: Mapped[list] = mapped_column(JsonType)  # empty: every process
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    delegator: Mapped[User] = relationship(foreign_keys=[delegator_id], lazy="joined")
    delegate: Mapped[User] = relationship(foreign_keys=[delegate_id], lazy="joined")

    def covers(self, process_model_id: str) -> bool:
        return not self.process_model_ids or process_model_id in self.process_model_ids
