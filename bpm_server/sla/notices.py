"""Official holiday notices: validated, stored as versioned calendar revisions, fed to the calendar.

The State Council publishes a year's schedule late in the year before, often
after deadlines in that year already exist, and the holiday package only
learns it with a new release.  So the deployment owns the data: an admin
imports the notice (``bpm-server calendar import FILE`` or
``POST /api/v1/calendar/notices``, the same JSON), and every process builds
its ``BusinessCalendar`` from the stored revisions.

A notice: ``{"year", "source", "published", "holidays": [[from, to], ...],
"working_days": [...]}`` with inclusive date ranges and make-up working days.
It must stay inside its year, cover every statutory holiday of that year, not
overlap itself, and make only weekend days working days.  A notice published
before the year's current revision is refused (409): it cannot be newer news.
Importing recomputes the open deadlines the new revision moves
(``recompute_open_deadlines``); other processes pick the revision up when
their next request or job first reads the calendar (``refresh_if_changed``).
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from bpm_server.audit.service import record as audit
from bpm_server.errors import Conflict, Invalid
from bpm_server.extensions import Deployment
from bpm_server.instances.models import ProcessInstance
from bpm_server.sla import statutory
from bpm_server.sla.calendar import OfficialNotice
from bpm_server.sla.models import CalendarRevision, SlaClock, SlaClockEvent, Timer
from bpm_server.sla.timers import add_timer, cancel_timers
from bpm_server.tasks.models import OPEN_STATES, HumanTask

log = logging.getLogger(__name__)
_ONE_DAY = timedelta(days=1)


class NoticeSchema(Schema):
    """A year's official holiday notice, as in the file ``bpm-server calendar import`` reads."""

    class Meta:
        unknown = RAISE  # a misspelt key ("workdays") must not be silently ignored

    year = fields.Integer(required=True, strict=True,
                          validate=validate.Range(min=statutory.FIRST_YEAR, max=statutory.LAST_YEAR,
                                                  error="statutory holidays are known for {min}-{max} only, "
                                                        "so a notice for this year cannot be checked"))
    source = fields.String(required=True, validate=validate.Length(min=1, max=500),
                           metadata={"description": "where the notice was published (document number, URL)"})
    published = fields.Date(required=True, metadata={"description": "publication date, YYYY-MM-DD"})
    holidays = fields.List(fields.Tuple((fields.Date(), fields.Date())), required=True,
                           validate=validate.Length(min=1, error="list at least one holiday range"),
                           metadata={"description": "inclusive [from, to] date ranges of days off"})
    working_days = fields.List(fields.Date(), load_default=list,
                               metadata={"description": "make-up working days (weekend days that are worked)"})

    @validates_schema
    def _check(self, data: dict[str, Any], **_: Any) -> None:
        year = data["year"]
        problems: dict[str, list[str]] = {}

        def problem(key: str, message: str) -> None:
            problems.setdefault(key, []).append(message)

        if data["published"].year > year:
            problem("published", f"{data['published'].isoformat()} is after the year {year} the notice is for")
        ranges = data["holidays"]
        for i, (start, end) in enumerate(ranges):
            for day in (start, end):
                if day.year != year:
                    problem("holidays", f"holidays[{i}]: {day.isoformat()} is outside {year}")
            if end < start:
                problem("holidays", f"holidays[{i}]: {end.isoformat()} is before {start.isoformat()}")
        ordered = sorted(ranges)
        for (s1, e1), (s2, e2) in itertools.pairwise(ordered):
            if s2 <= e1:
                problem("holidays", f"ranges {s1.isoformat()}..{e1.isoformat()} and "
                                    f"{s2.isoformat()}..{e2.isoformat()} overlap")
        off = _expand(ranges)
        seen: set[date] = set()
        for day in data["working_days"]:
            where = day.isoformat()
            if day.year != year:
                problem("working_days", f"{where} is outside {year}")
            if day in off:
                problem("working_days", f"{where} is also a holiday")
            if day.weekday() < 5:
                problem("working_days", f"{where} is a weekday; make-up working days are weekend days")
            if day in seen:
                problem("working_days", f"{where} is listed twice")
            seen.add(day)
        missing = sorted(statutory.statutory_holidays(year) - off)
        if missing:
            problem("holidays", "statutory holiday(s) not covered: " + ", ".join(d.isoformat() for d in missing))
        if problems:
            raise ValidationError(problems)


def _expand(ranges: list[tuple[date, date]]) -> frozenset[date]:
    days: set[date] = set()
    for start, end in ranges:
        day = start
        while day <= end and day.year == start.year:  # a backwards or cross-year range is reported, not walked
            days.add(day)
            day += _ONE_DAY
    return frozenset(days)


def parse_notice(raw: Any) -> dict[str, Any]:
    """The notice from JSON (a file's content), or ``Invalid`` naming each bad field."""
    if not isinstance(raw, dict):
        raise Invalid(f"a holiday notice is a JSON object, got {type(raw).__name__}", code="invalid_notice")
    try:
        return NoticeSchema().load(raw)
    except ValidationError as exc:
        messages = exc.normalized_messages()
        lines = [f"{key}: {msg}" for key, value in messages.items()
                 for msg in (value if isinstance(value, list) else [value])]
        raise Invalid("The notice is invalid: " + "; ".join(str(line) for line in lines),
                      code="invalid_notice", details=messages) from None


def current_revision(session: Session, year: int) -> CalendarRevision | None:
    return session.scalar(select(CalendarRevision).where(CalendarRevision.year == year)
                          .order_by(CalendarRevision.revision.desc()).limit(1))


def import_notice(session: Session, notice: dict[str, Any], *, actor: str,
                  now: datetime) -> tuple[CalendarRevision, bool]:
    """Store a validated notice (``parse_notice`` / ``NoticeSchema``) as the year's next revision.

    Returns the revision and whether it is new: the same notice again is the
    current revision, unchanged (so a repeated import is harmless).  A notice
    published before the current revision is refused with 409."""
    year = notice["year"]
    holidays = [[s.isoformat(), e.isoformat()] for s, e in sorted(notice["holidays"])]
    working_days = sorted({d.isoformat() for d in notice["working_days"]})
    current = current_revision(session, year)
    if current is not None:
        if notice["published"] < current.published:
            raise Conflict(f"{year} already has revision {current.revision}, published "
                           f"{current.published.isoformat()}; this notice was published earlier "
                           f"({notice['published'].isoformat()})", code="stale_revision",
                           details={"published": [f"before {current.published.isoformat()}, the date of "
                                                  f"revision {current.revision}"]})
        if (current.holidays, current.working_days, current.source, current.published) == \
                (holidays, working_days, notice["source"], notice["published"]):
            return current, False
    revision = CalendarRevision(year=year, revision=(current.revision + 1) if current else 1,
                                source=notice["source"], published=notice["published"], holidays=holidays,
                                working_days=working_days, imported_at=now, imported_by=actor)
    session.add(revision)
    try:
        session.flush()  # the (year, revision) key: two imports of a year at once cannot both be revision N
    except IntegrityError:
        raise Conflict(f"another notice for {year} was imported at the same moment; list the notices and try "
                       "again", code="concurrent_change") from None
    audit(session, actor=actor, action="calendar.import", object_type="calendar", object_id=str(year), now=now,
          revision=revision.revision, replaces=current.revision if current else None, source=revision.source,
          published=revision.published.isoformat(), holidays=holidays, working_days=working_days)
    return revision, True


def list_current(session: Session) -> list[CalendarRevision]:
    """The current revision of every year that has one, by year."""
    newest = (select(CalendarRevision.year, func.max(CalendarRevision.revision).label("revision"))
              .group_by(CalendarRevision.year).subquery())
    return list(session.scalars(select(CalendarRevision).join(
        newest, (CalendarRevision.year == newest.c.year) & (CalendarRevision.revision == newest.c.revision))
        .order_by(CalendarRevision.year)))


def official_notice(revision: CalendarRevision) -> OfficialNotice:
    ranges = [(date.fromisoformat(s), date.fromisoformat(e)) for s, e in revision.holidays]
    return OfficialNotice(year=revision.year, revision=revision.revision, holidays=_expand(ranges),
                          working_days=frozenset(date.fromisoformat(d) for d in revision.working_days),
                          source=revision.source, published=revision.published, stored_id=revision.id)


def refresh_calendar(session: Session, rt: Deployment) -> None:
    """Give the deployment a calendar with the stored notices (a new object: calendars are immutable,
    so a request or job holding the old one finishes with a consistent calendar)."""
    rt.calendar = rt.calendar.with_notices(official_notice(r) for r in list_current(session))


@dataclass(frozen=True)
class MovedDeadline:
    task_id: str
    old_due: datetime | None
    new_due: datetime


def apply_notice(session: Session, rt: Deployment, notice: dict[str, Any], *, actor: str,
                 now: datetime) -> tuple[CalendarRevision, bool, list[MovedDeadline]]:
    """Import a validated notice, switch the deployment's calendar to it and move the open deadlines it moves."""
    revision, created = import_notice(session, notice, actor=actor, now=now)
    if not created:
        return revision, False, []
    refresh_calendar(session, rt)
    return revision, True, recompute_open_deadlines(session, rt, revision, actor=actor, now=now)


def recompute_open_deadlines(session: Session, rt: Deployment, revision: CalendarRevision, *, actor: str,
                             now: datetime) -> list[MovedDeadline]:
    """Due moments of running clocks, recomputed on the current calendar; each change re-arms the
    task's timers and is recorded on its clock events and in the audit trail.

    A deadline already past (breached, or about to be logged so) stays as it
    was: a new calendar must not undo a breach.  Paused clocks have no due
    moment (resuming computes one on the calendar of that day), and the timers
    of a suspended instance are held until it resumes."""
    calendar = rt.calendar
    rows = session.execute(
        select(HumanTask, SlaClock).join(SlaClock, SlaClock.task_id == HumanTask.id)
        .join(ProcessInstance, ProcessInstance.id == HumanTask.process_instance_id)
        .where(HumanTask.state.in_(OPEN_STATES), SlaClock.state == "running", SlaClock.breached_at.is_(None),
               SlaClock.running_since.is_not(None), HumanTask.due_at > now, ProcessInstance.suspended_at.is_(None))
        .order_by(HumanTask.id)).all()
    reason = f"calendar {revision.year} revision {revision.revision} ({revision.source})"[:500]
    moved: list[MovedDeadline] = []
    for task, clock in rows:
        since = cast(datetime, clock.running_since)  # the query keeps running clocks only
        due = calendar.add_working_time(since,
                                        timedelta(seconds=max(clock.total_seconds - clock.consumed_seconds, 0)))
        warn = None
        if clock.warn_seconds is not None and clock.warn_seconds > clock.consumed_seconds:
            warn = calendar.add_working_time(since,
                                             timedelta(seconds=clock.warn_seconds - clock.consumed_seconds))
        if due == task.due_at and warn == task.warn_at:
            continue
        old_due, old_warn = task.due_at, task.warn_at
        warned = session.scalar(select(Timer.id).where(Timer.task_id == task.id, Timer.kind == "sla_warning",
                                                       Timer.fired_at.is_not(None)).limit(1)) is not None
        cancel_timers(session, task_id=task.id, kind="sla_breach", now=now)
        add_timer(session, "sla_breach", task.process_instance_id, task.id, due, {}, now)
        if not warned:  # a warning already given is not given again
            cancel_timers(session, task_id=task.id, kind="sla_warning", now=now)
            if warn is not None:
                add_timer(session, "sla_warning", task.process_instance_id, task.id, warn, {}, now)
        task.due_at, task.warn_at = due, (warn if not warned else old_warn)
        session.add(SlaClockEvent(task_id=task.id, kind="due_moved", at=now, actor=actor, reason=reason,
                                  due_at_after=due))
        audit(session, actor=actor, action="sla.due_moved", object_type="task", object_id=task.id, now=now,
              old_due=old_due.isoformat() if old_due else None, new_due=due.isoformat(), year=revision.year,
              revision=revision.revision)
        moved.append(MovedDeadline(task.id, old_due, due))
    return moved


def refresh_if_changed(rt: Deployment, session: Session) -> None:
    """Reload the notices when another process imported one (each process has its own calendar).

    Runs at the first use of the calendar in each app context (a request, a
    job: ``Deployment.calendar``), so it must cost next to nothing: one indexed
    ``max(id)`` statement inside the caller's own transaction, which never
    flushes the caller's pending rows.  (It used to take a pooled connection
    of its own per context: a checkout with its pre-ping and a transaction
    more per request, which doubled PostgreSQL's CPU per task completion.)
    Revisions are only inserted, so a new id means new data.  A database that
    cannot answer (down, or not yet migrated) leaves the calendar as it is;
    the request or job meets that error itself, or the next context retries."""
    loaded = max((n.stored_id for n in rt.loaded_calendar.notices.values()), default=0)
    try:
        newest = session.connection().scalar(select(func.max(CalendarRevision.id))) or 0
        if newest != loaded:
            with session.no_autoflush:
                refresh_calendar(session, rt)
    except SQLAlchemyError as exc:
        log.debug("calendar notices not (re)loaded: %s", exc)
