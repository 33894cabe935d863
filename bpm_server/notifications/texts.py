"""What notifications say, in the recipient's language (Chinese by default, English on request).

The texts are gettext messages of the ``messages`` catalogue (bpm_server/translations),
rendered with Flask-Babel for the language given, never the request's: a notification
is written for its recipient, often by a job or by someone else's request. A
notification keeps its kind and parameters as well, so the notification centre can
say it again in the reader's current language.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l

from bpm_server.extensions import deployment

DEFAULT_LANGUAGE = "zh_CN"
LANGUAGES = ("zh_CN", "en")

# template -> (title, body); ``%(…)s`` are the notification's params. Written lazily so that
# pybabel extracts them; rendered in the recipient's language by ``render``.
_TEXTS: dict[str, tuple[Any, Any]] = {
    "sla_warning": (_l("Due soon: %(title)s (%(account)s)"),
                    _l("The stage “%(title)s” of %(account)s is close to its due time (%(due_at)s).")),
    "sla_breach": (_l("Overdue: %(title)s (%(account)s)"),
                   _l("The stage “%(title)s” of %(account)s is past its due time (%(due_at)s).")),
    "task_sent_back": (_l("Sent back: %(title)s"),
                       _l("%(actor)s sent “%(from_title)s” back to “%(title)s” (account %(account)s). "
                          "Reason: %(reason)s")),
    "task_transferred": (_l("Transferred to you: %(title)s"),
                         _l("%(actor)s transferred “%(title)s” (account %(account)s) to you. Reason: %(reason)s")),
    "task_delegated": (_l("On behalf of %(delegator)s: %(title)s"),
                       _l("“%(title)s” (account %(account)s) was meant for %(delegator)s, who delegated their work "
                          "to you for now: please handle it on their behalf.")),
    "task_signer_added:before": (_l("Please sign: %(title)s"),
                                 _l("%(actor)s asks you to sign before them on “%(title)s” (account %(account)s).")),
    "task_signer_added:after": (_l("Please sign: %(title)s"),
                                _l("%(actor)s asks you to sign after them on “%(title)s” (account %(account)s).")),
    "task_sign_decided": (_l("No longer needed: your signature on %(title)s"),
                          _l("%(actor)s signed “%(title)s” (account %(account)s) first; one signature was "
                             "enough, so yours is no longer needed.")),
    "task_signed": (_l("Signed: %(title)s"),
                    _l("%(actor)s signed “%(title)s” (account %(account)s); the task is back with you.")),
    "task_cc": (_l("Copied to you: %(title)s"),
                _l("%(actor)s copied “%(title)s” (account %(account)s) to you (read only).")),
    "task_urged": (_l("Reminder: %(title)s"),
                   _l("%(actor)s asks you to deal with “%(title)s” (account %(account)s) soon.")),
    "task_withdrawn": (_l("Withdrawn: %(title)s"),
                       _l("%(actor)s took “%(from_title)s” back; “%(title)s” left your inbox.")),
    "task_commented": (_l("New comment: %(title)s"),
                       _l("%(actor)s commented on “%(title)s” (account %(account)s): %(reason)s")),
    "tasks_returned": (_l("%(count)s task(s) of %(person)s are back in %(department)s's queue"),
                       _l("%(person)s was deactivated by %(actor)s; their open tasks are unassigned and can be "
                          "claimed by anyone in %(department)s: %(tasks)s")),
    "incident:external_task": (_l("Incident: external task %(topic)s failed"),
                               _l("Worker %(worker)s gave up on external task %(task_id)s (topic %(topic)s, stage "
                                  "%(element)s) of process instance %(instance)s: %(error)s. An admin can give it "
                                  "retries: POST /api/v1/external-tasks/%(task_id)s/retries")),
    "incident:call": (_l("Incident: %(system)s %(operation)s failed (%(account)s)"),
                      _l("The call “%(operation)s” to %(system)s for process instance %(instance)s (stage "
                         "%(element)s) failed %(attempts)s times; last error: %(error)s. An admin can retry it: "
                         "POST /api/v1/incidents/%(call_id)s/retry")),
}


def template_of(kind: str, params: Mapping[str, Any]) -> str:
    """Which text a notification of ``kind`` uses (some kinds have variants, named in params)."""
    if kind == "task_signer_added":
        return f"{kind}:{'after' if params.get('position') == 'after' else 'before'}"
    variant = params.get("variant")
    return f"{kind}:{variant}" if variant else kind


def knows(kind: str, params: Mapping[str, Any] | None = None) -> bool:
    return template_of(kind, params or {}) in _TEXTS


def language_of(language: str | None) -> str:
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


#: Parameters that are a model's own texts (stage titles), shown through its messages file.
MODEL_TEXTS = ("title", "from_title")


def render(kind: str, params: Mapping[str, Any], language: str | None = DEFAULT_LANGUAGE,
           model_texts: Mapping[str, str] | None = None,
           department_names: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(title, body) of a notification of ``kind`` in ``language`` (Chinese when unknown);
    ``model_texts``: the task's model's translations into that language, for its stage titles;
    ``department_names``: departments' names in that language by code, for a ``department``
    parameter that came with its ``department_id``."""
    title, body = _TEXTS[template_of(kind, params)]
    with force_locale(language_of(language)):
        values = _Blank({key: _shown(key, (model_texts or {}).get(value, value)
                                     if key in MODEL_TEXTS and isinstance(value, str) else value)
                         for key, value in params.items()})
        code = params.get("department_id")
        if department_names and isinstance(code, str) and code in department_names:
            values["department"] = department_names[code]
        return str(title) % values, str(body) % values


def addressee(display_name: str, username: str, language: str | None) -> tuple[str, str]:
    """The channels' lines naming the recipient: (the robots' "for …", the e-mail signature)."""
    with force_locale(language_of(language)):
        return (gettext("for %(name)s (%(username)s)", name=display_name, username=username),
                gettext("Notification from the BPM server for %(name)s", name=display_name))


def _shown(key: str, value: Any) -> str:
    """A parameter as the reader sees it: a moment in the calendar's zone, a blank as a dash."""
    if value is None or value == "":
        return gettext("no due time") if key == "due_at" else "—"
    if key == "due_at":
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return moment.astimezone(deployment().calendar.time_zone).strftime("%Y-%m-%d %H:%M")
    return str(value)


class _Blank(dict):
    """A missing parameter renders as a dash rather than failing the notification."""

    def __missing__(self, key: str) -> str:
        return "—"
