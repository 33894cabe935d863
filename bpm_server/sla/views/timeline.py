"""The timeline of a stage's SLA clock, and of an instance, over HTTP."""
from __future__ import annotations

from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import READERS, WORKERS, current_user, requires
from bpm_server.sla import timeline
from bpm_server.sla.schemas import TimelineSchema
from bpm_server.sla.views.blueprint import blp
from bpm_server.tasks import service as tasks
from bpm_server.tasks import verbs


@blp.route("/tasks/<task_id>/timeline")
@requires(*WORKERS, *READERS)
@blp.response(200, TimelineSchema)
def task_timeline(task_id: str) -> dict:
    """Every event of a stage's SLA clock in order, with who and why: ready, clock started (length,
    due), claimed, paused, resumed, due moved, warning, breach, each escalation rung, completed."""
    session = db_session()
    task = tasks.get_task(session, task_id)
    if not verbs.can_view(session, current_user(), task):
        tasks.authorize_view(current_user(), task)
    return {"events": [e.as_dict() for e in timeline.task_timeline(session, task, deployment().calendar)]}
