"""What an escalation rung did, in the reader's language.

The breach log keeps each rung's actions as the English sentences the ladder wrote
(``sla.policies._act``: "notify department_lead: sales.boss", "reassigned to it.lead",
"priority raised to 2", ...). Those entries are hashed into the chain, so they stay as
written; pages read them back into their parts here and say them again in the reader's
language, naming people and departments by name. A sentence of another shape (an older
or unknown action) is shown as written.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from flask_babel import gettext as _

from bpm_server.web.i18n import current_language
from bpm_server.web.labels import department_name, model_name, person_name

# The ladder's note when a target named nobody (sla.policies._fallback_note).
_NO_FALLBACK = re.compile(r"nobody \(not set; no BPM_ESCALATION_FALLBACK\): ")
_FELL_BACK = re.compile(r"nobody \(not set\), fell back to [^:]+: ")
_NOTIFY = re.compile(r"notify (?P<target>\S+): (?P<rest>.*)")
_TO_DEPARTMENT = re.compile(r"reassigned to department (?P<department>.+)")
_REASSIGN_FAILED = re.compile(r"reassign to (?P<target>\S+): .*nobody")
_REASSIGNED = re.compile(r"(?P<fallback>nobody \(not set[^:]*: )?reassigned to (?P<person>\S+)"
                         r"(?: \(standing in for (?P<absent>\S+), who is away\))?")
_PRIORITY = re.compile(r"priority raised to (?P<n>-?\d+)")
_START = re.compile(r"start_process (?P<model>\S+) requested \(timer [^)]*\)")


def target_text(target: str) -> str:
    """Whom a ladder action addressed ("department_lead", "user:li.na", "department:it")."""
    kind, _sep, ref = target.partition(":")
    if kind == "user" and ref:
        return person_name(ref)
    if kind == "department" and ref:
        return _("everyone in %(department)s", department=department_name(ref))
    roles: dict[str, Callable[[], str]] = {
        "assignee": lambda: _("the assignee"), "department_lead": lambda: _("the department lead"),
        "account_owner": lambda: _("the account owner"), "executive_sponsor": lambda: _("the executive sponsor")}
    return roles[target]() if target in roles else target


def _people(listed: str) -> str:
    if listed == "nobody":
        return _("nobody")
    separator = ", " if current_language() == "en" else "\u3001"  # 、 between Chinese names
    return separator.join(person_name(name) for name in listed.split(", "))


def _notify(target: str, rest: str) -> str:
    if _NO_FALLBACK.match(rest):
        return _("Notified nobody: %(target)s is not set and there is no fallback", target=target_text(target))
    fell_back = _FELL_BACK.match(rest)
    if fell_back:
        return _("%(target)s is not set; notified %(people)s instead", target=target_text(target),
                 people=_people(rest[fell_back.end():]))
    return _("Notified %(target)s: %(people)s", target=target_text(target), people=_people(rest))


def action_text(action: str) -> str:
    """One stored action sentence said again in the reader's language (as written when unknown)."""
    if found := _NOTIFY.fullmatch(action):
        return _notify(found["target"], found["rest"])
    if found := _TO_DEPARTMENT.fullmatch(action):
        return _("Moved to the queue of %(department)s", department=department_name(found["department"]))
    if found := _REASSIGN_FAILED.fullmatch(action):
        return _("Could not reassign to %(target)s: nobody to give it to", target=target_text(found["target"]))
    if found := _REASSIGNED.fullmatch(action):
        person = person_name(found["person"])
        if found["absent"]:
            text = _("Reassigned to %(person)s (standing in for %(absent)s, who is away)", person=person,
                     absent=person_name(found["absent"]))
        else:
            text = _("Reassigned to %(person)s", person=person)
        return _("Nobody was set; %(what)s", what=text) if found["fallback"] else text
    if found := _PRIORITY.fullmatch(action):
        return _("Priority raised to %(n)s", n=found["n"])
    if found := _START.fullmatch(action):
        return _("Asked to start %(process)s", process=model_name(found["model"]))
    return action


def actions_text(actions: list[str]) -> str:
    """A rung's actions, each said again, in one line (a fullwidth semicolon between them in Chinese)."""
    separator = "; " if current_language() == "en" else "\uff1b"  # fullwidth: it carries its own space
    return separator.join(action_text(action) for action in actions)
