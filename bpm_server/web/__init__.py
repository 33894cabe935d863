"""The web UI: server-rendered pages on top of the same services as the REST API.

``register_pages(app)`` is called by the app factory. Each page module owns a
Flask blueprint named ``blp`` (made with ``session.page_blueprint`` so service
errors become HTML pages); add new ones to ``_page_blueprints`` and their entry
in the navigation to ``nav.NAV_ITEMS``. Blueprint names must differ from the API's
(health, identity, accounts, modeling, instances, tasks, sla, notifications,
audit, test): pages use e.g. "inbox", "account_pages", "instance_pages".
"""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Flask

from bpm_server.extensions import deployment
from bpm_server.web.accounts import blp as account_pages
from bpm_server.web.breaches import blp as breaches
from bpm_server.web.dashboard import blp as dashboard
from bpm_server.web.escalation_texts import actions_text
from bpm_server.web.i18n import init_i18n
from bpm_server.web.inbox import blp as inbox
from bpm_server.web.incidents import blp as incident_pages
from bpm_server.web.instances import blp as instance_pages
from bpm_server.web.labels import init_labels
from bpm_server.web.leads import blp as leads
from bpm_server.web.modeler import blp as modeler
from bpm_server.web.session import blp as session
from bpm_server.web.session import init_session
from bpm_server.web.settings import blp as settings
from bpm_server.web.sso import blp as sso
from bpm_server.web.start_page import blp as start_page
from bpm_server.web.task_page import blp as task_page
from bpm_server.web.task_verbs import blp as task_verbs_pages
from bpm_server.web.task_verbs import unread_notifications


def _page_blueprints() -> list[Blueprint]:
    return [session, inbox, task_page, leads, account_pages,  # engineer B
            modeler, instance_pages, incident_pages, breaches, dashboard,  # engineer C
            task_verbs_pages, start_page, sso, settings]


def register_pages(app: Flask) -> None:
    init_i18n(app)
    init_labels(app)
    app.jinja_env.filters.update(escalation_actions=actions_text)
    init_session(app)
    app.jinja_env.globals.update(due_provisional=due_provisional, unread_notifications=unread_notifications)
    for blueprint in _page_blueprints():
        app.register_blueprint(blueprint)


def due_provisional(moment: datetime | None) -> bool:
    """Whether a due moment lies in a year without an official holiday notice (its badge says "暂定")."""
    return deployment().calendar.is_provisional(moment)
