"""What happens to a person's work when they are deactivated (a leaver): their
open tasks go back to the queue of the task's department, and each affected
department's lead is told which ones, so nothing waits on someone who is gone."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.audit.service import record as audit
from bpm_server.extensions import Deployment
from bpm_server.identity import service as identity
from bpm_server.identity.models import Department, User
from bpm_server.notifications.service import Message
from bpm_server.notifications.texts import render
from bpm_server.tasks.models import OPEN_STATES, HumanTask


def deactivate(session: Session, rt: Deployment, actor: User, username: str, *,
               now: datetime) -> tuple[User, list[HumanTask]]:
    """Deactivate ``username`` (its tokens and sessions stop at once) and return its open tasks to their departments."""
    user = identity.set_active(session, actor.username, username, False, now=now)
    returned = list(session.scalars(select(HumanTask).where(HumanTask.assignee_id == user.id,
                                                            HumanTask.state.in_(OPEN_STATES))
                                    .order_by(HumanTask.due_at, HumanTask.id)))
    by_department: dict[str, list[HumanTask]] = defaultdict(list)
    for task in returned:
        task.assignee, task.state, task.claimed_at = None, "ready", None
        audit(session, actor=actor.username, action="task.return", object_type="task", object_id=task.id, now=now,
              before=username, after=None, reason="assignee deactivated", department=task.department_id,
              process_instance_id=task.process_instance_id, stage=task.name)
        by_department[task.department_id].append(task)
    session.flush()
    for department_id, tasks in by_department.items():
        lead = identity.lead_of(session, department_id)
        if lead is None:
            continue  # nobody to tell; the tasks are in the department's queue for anyone there
        department = session.get(Department, department_id)
        params = {"count": len(tasks), "person": f"{user.display_name} ({username})", "actor": actor.display_name,
                  "department": department.name if department else department_id,
                  # said again in each reader's language (notifications.texts.render)
                  "department_id": department_id,
                  "tasks": "; ".join(f"{t.title} ({t.account_id})" for t in tasks)}
        rt.notifier.notify(session, lead, Message("tasks_returned", *render("tasks_returned", params),
                                                  tasks[0].id if len(tasks) == 1 else None, params=params), now)
    return user, returned
