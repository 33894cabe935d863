"""SLA state: a clock per task, timers, escalation policies and the breach log."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bpm_server.database import JsonType, Model, UTCDateTime
from bpm_server.tasks.models import HumanTask


class SlaClock(Model):
    """How much working time a task has, has used, and whether it is paused.

    Paused time does not count: pausing banks the working time used so far in
    ``consumed_seconds``; resuming restarts the count and moves the due moment.
    """

    __tablename__ = "sla_clock"

    task_id: Mapped[str] = mapped_column(ForeignKey("human_task.id"), primary_key=True)
    length: Mapped[str] = mapped_column(String(50))  # as written, e.g. "2 working days"
    total_seconds: Mapped[int] = mapped_column(Integer)  # working seconds until due
    warn_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    anchor: Mapped[str] = mapped_column(String(200))  # "task:created", "stage:kickoff", "data:signed_at"
    anchor_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)  # e.g. why the anchor fell back
    policy: Mapped[str | None] = mapped_column(String(100), nullable=True)
    pausable: Mapped[bool] = mapped_column(default=False)
    consumed_seconds: Mapped[int] = mapped_column(Integer, default=0)  # working time used before running_since
    running_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # None while paused
    state: Mapped[str] = mapped_column(String(20))  # running, paused, stopped
    pause_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    # Tells the unit of work to insert a new task before its clock when both are
    # written in one flush (the task row is written once, with its due moments).
    task: Mapped[HumanTask] = relationship(lazy="raise")


class NamedClock(Model):
    """A named clock of a stage (response, resolution: ``task_id`` is that stage) or of
    the whole instance (ola, end_to_end: ``task_id`` is the stage it last ran for,
    which the breach log names). Declared in the model (``slaClock.<name>.*``).

    Working time is banked in ``consumed_seconds`` whenever the clock stops running
    (paused, or an ola clock whose department holds no open stage: "idle"), and
    ``due_at`` is recomputed each time it runs again.
    """

    __tablename__ = "sla_named_clock"
    __table_args__ = (Index("ix_named_clock_instance", "process_instance_id"),
                      Index("ix_named_clock_task", "task_id"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    process_instance_id: Mapped[str] = mapped_column(String(36))
    task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    name: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(20))  # response, resolution, ola, end_to_end
    department: Mapped[str | None] = mapped_column(String(64), nullable=True)  # ola
    length: Mapped[str] = mapped_column(String(50))
    total_seconds: Mapped[int] = mapped_column(Integer)
    warn_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    policy: Mapped[str | None] = mapped_column(String(100), nullable=True)
    consumed_seconds: Mapped[int] = mapped_column(Integer, default=0)
    running_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    state: Mapped[str] = mapped_column(String(20))  # running, paused, idle, stopped
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    breach_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # its breach-log entry
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    stopped_by: Mapped[str | None] = mapped_column(String(100), nullable=True)  # what stopped it: claim, ...


class SlaClockEvent(Model):
    """Every pause and resume, with who and why (append-only)."""

    __tablename__ = "sla_clock_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("human_task.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # pause, resume
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    due_at_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Timer(Model):
    """A moment something must happen. The database is the truth; queues only carry wake-ups."""

    __tablename__ = "timer"
    __table_args__ = (
        # Only pending timers are indexed: the pump's query stays cheap however many have fired.
        Index("ix_timer_pending", "due_at", postgresql_where=text("fired_at IS NULL AND cancelled_at IS NULL"),
              sqlite_where=text("fired_at IS NULL AND cancelled_at IS NULL")),
        Index("ix_timer_task", "task_id"),
        Index("ix_timer_instance", "process_instance_id"),
        Index("ix_timer_version", "version_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # sla_warning, sla_breach, escalation, bpmn
    # None for a timer start event's row, which belongs to a model version, not an instance.
    process_instance_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    version_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # timer start events only
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[dict] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the pump last handed it to the queue; re-handed after a while if still
    # unfired (a lost Redis or a killed worker must not lose it).
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EscalationPolicy(Model):
    """A named escalation ladder (rules as data, editable through the API)."""

    __tablename__ = "escalation_policy"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    rules: Mapped[list] = mapped_column(JsonType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class EscalationSetting(Model):
    """Deployment-wide choice of ladders: the default one and one per account tier."""

    __tablename__ = "escalation_setting"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)  # "default" or "tier:<tier>"
    policy: Mapped[str] = mapped_column(ForeignKey("escalation_policy.name"))


class BreachEntry(Model):
    """The breach log: inserted, never updated (a PostgreSQL trigger refuses UPDATE/DELETE).

    ``kind`` is "breach" for the breach itself; "escalation" and "completion"
    entries follow it and point back through ``breach_id``. Each entry carries
    the hash of the previous one, so removing or editing any entry breaks the chain.
    """

    __tablename__ = "sla_breach_log"
    __table_args__ = (
        Index("ix_breach_filters", "kind", "breached_at"),
        Index("ix_breach_account", "account_id"),
        Index("ix_breach_breach_id", "breach_id"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    breach_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    process_instance_id: Mapped[str] = mapped_column(String(36))
    process_model_id: Mapped[str] = mapped_column(String(100))
    account_id: Mapped[str] = mapped_column(String(100))
    task_id: Mapped[str] = mapped_column(String(36))
    task_name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(64))
    assignee: Mapped[str | None] = mapped_column(String(100), nullable=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    details: Mapped[dict] = mapped_column(JsonType)  # escalation actions, completion lateness, ...
    # The kind of named clock that breached (response, resolution, ola, end_to_end);
    # None for a stage's own SLA, as every entry before named clocks existed.
    clock_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class BreachLogHead(Model):
    """One row: the chain's last sequence number and hash. Updating it first in
    the writer's transaction serializes writers, so the chain cannot fork."""

    __tablename__ = "sla_breach_log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))



class CalendarRevision(Model):
    """One imported official holiday notice for a year (inserted, never updated).

    A year's current schedule is its highest ``revision``; older ones stay as
    the record of what the calendar said when.
    """

    __tablename__ = "calendar_revision"
    __table_args__ = (UniqueConstraint("year", "revision", name="uq_calendar_revision_year"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    year: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per year
    source: Mapped[str] = mapped_column(String(500))
    published: Mapped[date] = mapped_column(Date)
    holidays: Mapped[list] = mapped_column(JsonType)  # [["YYYY-MM-DD", "YYYY-MM-DD"], ...] inclusive ranges
    working_days: Mapped[list] = mapped_column(JsonType)  # ["YYYY-MM-DD", ...]
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    imported_by: Mapped[str] = mapped_column(String(100))
