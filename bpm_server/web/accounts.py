"""The account view: every process of an account, where each stands (its open
stages and their SLA state), what is late, and the account's breach history."""
from __future__ import annotations

from typing import Any

from flask import render_template
from sqlalchemy import select

from bpm_server.accounts.models import Account
from bpm_server.accounts.service import get_account
from bpm_server.database import db
from bpm_server.extensions import deployment
from bpm_server.instances import service as instances
from bpm_server.sla import breaches
from bpm_server.tasks import inbox as inbox_service
from bpm_server.web.session import page_blueprint, page_requires

blp = page_blueprint("account_pages", __name__)
VIEWERS = ("staff", "process_owner", "auditor")
MAX_INSTANCES = 200
@blp.route("/accounts")
@page_requires(*VIEWERS)
def account_list() -> Any:
    accounts = db.session.scalars(select(Account).order_by(Account.id)).all()
    return render_template("accounts/list.html", accounts=accounts)


@blp.route("/accounts/<account_id>")
@page_requires(*VIEWERS)
def account(account_id: str) -> Any:
    session = db.session
    rt = deployment()
    now = rt.clock.now()
    found = get_account(session, account_id)
    processes, total = instances.list_instances(session, account_id=account_id, per_page=MAX_INSTANCES)
    open_tasks = inbox_service.open_tasks_of_account(session, account_id)
    glances = inbox_service.glances(session, open_tasks, rt.calendar, now)
    stages: dict[str, list] = {}
    for task in open_tasks:
        stages.setdefault(task.process_instance_id, []).append(task)
    late = [t for t in open_tasks if glances[t.id].state == "breached"]
    history, history_total = breaches.search(session, breaches.BreachFilter(account_id=account_id, per_page=100))
    return render_template("accounts/account.html", account=found, processes=processes, total=total, stages=stages,
                           glances=glances, late=late, history=history, history_total=history_total)
