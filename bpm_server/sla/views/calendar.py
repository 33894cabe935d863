"""Official holiday notices over HTTP: import one (admins, audited), list the current ones."""
from __future__ import annotations

from marshmallow import Schema, fields

from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import READERS, current_user, requires
from bpm_server.sla import notices
from bpm_server.sla.views.blueprint import blp


class RevisionSchema(Schema):
    year = fields.Integer()
    revision = fields.Integer(metadata={"description": "1, 2, ... per year; the highest is in force"})
    source = fields.String()
    published = fields.Date()
    holidays = fields.List(fields.List(fields.String()), metadata={"description": "inclusive [from, to] ranges"})
    working_days = fields.List(fields.String())
    imported_at = fields.DateTime()
    imported_by = fields.String()
    moved_deadlines = fields.Integer(dump_only=True, metadata={
        "description": "on import: open deadlines the revision moved (recomputed, timers re-armed, recorded)"})


class CalendarSchema(Schema):
    items = fields.List(fields.Nested(RevisionSchema), metadata={"description": "the current revision per year"})
    provisional_years = fields.List(fields.Integer(), metadata={
        "description": "this year and the next two when neither a notice nor the holiday package covers "
                       "them: statutory holidays only, make-up working days unknown"})


@blp.route("/calendar/notices")
@requires(*READERS)
@blp.response(200, CalendarSchema)
def list_notices():
    """The official holiday notices in force, one per year, and the years still provisional."""
    rt = deployment()
    year = rt.clock.now().astimezone(rt.calendar.time_zone).year
    return {"items": notices.list_current(db_session()),
            "provisional_years": rt.calendar.provisional_years(range(year, year + 3))}


@blp.route("/calendar/notices", methods=["POST"])
@requires("admin")
@blp.arguments(notices.NoticeSchema)
@blp.response(201, RevisionSchema)
@blp.alt_response(200, schema=RevisionSchema, description="the same notice is already the current revision")
@blp.alt_response(409, description="a notice published before the year's current revision")
def import_notice(notice: dict):
    """Import a year's official holiday notice (the same JSON as ``bpm-server calendar import FILE``).

    Validated (dates inside the year, every statutory holiday covered, no
    overlapping ranges, make-up days on weekends and not on holidays), stored
    as the year's next revision and used by the calendar at once; open
    deadlines it moves are recomputed, their timers re-armed, each change
    recorded on the task's clock events and in the audit trail.  A deadline
    already past stays breached."""
    rt, session = deployment(), db_session()
    revision, created, moved = notices.apply_notice(session, rt, notice, actor=current_user().username,
                                                    now=rt.clock.now())
    setattr(revision, "moved_deadlines", len(moved))  # noqa: B010  (for the answer only; not a column)
    return revision, 201 if created else 200
