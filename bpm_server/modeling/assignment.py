"""Who a human task goes to: lanes, candidate groups and department properties resolved to
existing departments (by id or name, case-insensitively), and assignees to users.

Checked at upload, so that a lane named ``Sales`` does not become a department
nobody belongs to (a task naming none goes to the department of whoever started
the instance); resolved again when a task is created (departments are few
and rarely renamed: the answers are cached per process).
"""
from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from flask_babel import gettext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bpm_server.engine.adapter import Problem
from bpm_server.identity.models import Department, User

DEPARTMENT_PROPERTY = "department"
ASSIGNEE_PROPERTY = "assignee"
CANDIDATE_USERS_PROPERTY = "candidateUsers"
_VARIABLE = re.compile(r"^\s*[$#]\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\s*$")
INITIATOR = "initiator"

_cache: dict[str, str] = {}
_lock = threading.Lock()


def _names(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def raw_department(task: Any) -> str | None:
    return task.properties.get(DEPARTMENT_PROPERTY) or task.lane


def assignee_of(task: Any) -> str | None:
    """The task's assignee as written: a username, ``${initiator}`` or ``${variable}``; a single candidate
    user counts as the assignee (nobody else could take the task)."""
    assignee = task.properties.get(ASSIGNEE_PROPERTY)
    users = _names(task.properties.get(CANDIDATE_USERS_PROPERTY))
    return assignee or (users[0] if len(users) == 1 else None)


def _index(departments: Iterable[Department]) -> dict[str, str]:
    index: dict[str, str] = {}
    for department in departments:
        index.setdefault(department.name.strip().lower(), department.id)
    for department in departments:
        index[department.id.lower()] = department.id  # an id wins over another department's name
    return index


def check_assignments(session: Session, human_tasks: Iterable[Any], *, departments_exist: bool = True) -> list[Problem]:
    """Every human task's department and assignee resolve to existing ones; the problems otherwise."""
    departments = list(session.scalars(select(Department).order_by(Department.id)))
    index = _index(departments)
    problems: list[Problem] = []
    known = ", ".join(f"{d.id} ({d.name})" if d.name != d.id else d.id for d in departments) or "-"
    for task in human_tasks:
        assignee = assignee_of(task)
        if departments_exist:
            for user in {assignee, *_names(task.properties.get(CANDIDATE_USERS_PROPERTY))}:
                problems += _assignee_problems(session, task.name, user)
        raw = raw_department(task)
        if not raw:
            continue  # no lane, group or property: the task goes to the department of whoever started the instance
        if not departments_exist:
            continue
        resolved = {index.get(name.lower()) for name in _names(raw)}
        missing = [name for name in _names(raw) if name.lower() not in index]
        if missing:
            problems.append(Problem(task.name, gettext(
                "department %(names)s does not exist (looked up by id or name, case-insensitively); "
                "known departments: %(known)s", names=", ".join(map(repr, missing)), known=known)))
        elif len(resolved) > 1:
            problems.append(Problem(task.name, gettext(
                "a task goes to one department; %(groups)s names %(count)d", groups=repr(raw), count=len(resolved))))
    return problems


def _assignee_problems(session: Session, element: str, assignee: str | None) -> list[Problem]:
    if not assignee or _VARIABLE.match(assignee):
        return []
    if "{" in assignee or assignee.startswith("="):
        return [Problem(element, gettext("assignee expression %(assignee)s cannot be read: write a username, "
                                         "${initiator} or ${variable}", assignee=repr(assignee)))]
    return []


def assignment_warnings(session: Session, human_tasks: Iterable[Any]) -> list[Problem]:
    """Assignees that name nobody here. Not refused: diagrams from Camunda's examples name demo
    users (``kermit``, ``demo``) and still run; such a task waits in its department's inbox."""
    warnings: list[Problem] = []
    for task in human_tasks:
        named = {assignee_of(task), *_names(task.properties.get(CANDIDATE_USERS_PROPERTY))}
        for user in sorted(u for u in named if u and not _VARIABLE.match(u) and "{" not in u
                           and not u.startswith("=")):
            if session.scalar(select(User.id).where(func.lower(User.username) == user.lower())) is None:
                warnings.append(Problem(task.name, gettext(
                    "assignee %(assignee)s is not a known user: the task waits in its department's inbox "
                    "until someone there claims it", assignee=repr(user))))
    return warnings


def resolve_department(session: Session, raw: str | None) -> str | None:
    """The department id a lane or group name stands for (the first of a list), or None when
    nothing is named. A name no department has yet is kept as written (a model synced at
    deployment may name departments created afterwards): its tasks wait in that queue."""
    names = _names(raw)
    if not names:
        return None
    key = names[0].lower()
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    found = session.scalar(select(Department.id).where(func.lower(Department.id) == key)) or session.scalar(
        select(Department.id).where(func.lower(func.trim(Department.name)) == key).order_by(Department.id).limit(1))
    if found:
        with _lock:
            _cache[key] = found
    return found or names[0]


def resolve_assignee(session: Session, task: Any, data: Mapping[str, Any], started_by: str | None) -> User | None:
    """The user a task is assigned to when it is created, or None (it then waits in its department)."""
    assignee = assignee_of(task)
    if not assignee:
        return None
    variable = _VARIABLE.match(assignee)
    if variable:
        name = started_by if variable.group(1) == INITIATOR else data.get(variable.group(1))
        if not isinstance(name, str):
            return None
        assignee = name
    return session.scalar(select(User).where(func.lower(User.username) == assignee.lower(), User.active.is_(True)))
