"""The accounts' daily evaluation as a durable timer: one row per local day, at a set time.

The row's id is fixed per day (``accounts-daily-YYYY-MM-DD``), so however many
processes arm it (every pump pass, every test-clock advance, two replicas at
once) the day has one row and the evaluation fires once; the insert runs in a
savepoint and a duplicate is simply left out. The runtime acts on the row
(``bpm_server.runtime.accounts``) and arms the next day's when it fires. This
module only keeps the schedule: it imports nothing that evaluates.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bpm_server.sla.models import Timer

KIND = "accounts_daily"


def timer_id(day: date) -> str:
    return f"accounts-daily-{day.isoformat()}"


def next_moment(at: time, zone: ZoneInfo, now: datetime) -> tuple[date, datetime]:
    """The next local day whose moment ``at`` is still ahead of ``now`` (today's, or else tomorrow's).
    A moment already passed today is not caught up: the evaluation can be run by hand."""
    today = now.astimezone(zone).date()
    for day in (today, today + timedelta(days=1)):
        moment = datetime.combine(day, at, tzinfo=zone)
        if moment > now:
            return day, moment
    raise AssertionError("unreachable: tomorrow's moment is always ahead")  # pragma: no cover


def arm(session: Session, at: time | None, zone: ZoneInfo, now: datetime, *, known: str | None = None) -> str | None:
    """Make sure the next daily evaluation has its row; returns its id (None when switched off).
    ``known``: a row id the caller already saw stored (the pump, every second), not looked up again."""
    if at is None:
        return None
    day, moment = next_moment(at, zone, now)
    row_id = timer_id(day)
    if row_id == known or session.get(Timer, row_id) is not None:
        return row_id
    try:
        with session.begin_nested():  # another process may insert the same day's row at the same moment
            session.add(Timer(id=row_id, kind=KIND, process_instance_id=None, task_id=None, due_at=moment,
                              payload={"day": day.isoformat()}, created_at=now))
    except IntegrityError:
        pass  # armed by someone else: that row is the day's one
    return row_id
