"""The account pages: the list with the value matrix, and one account with its health,
signals, rule firings, every process (open stages and their SLA state), what is late,
and the breach history."""
from __future__ import annotations

from typing import Any

from flask import abort, render_template, request
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bpm_server.accounts import health, rules, signals
from bpm_server.accounts.models import TIERS
from bpm_server.accounts.service import get_account, list_accounts
from bpm_server.database import db
from bpm_server.extensions import deployment
from bpm_server.instances import service as instances
from bpm_server.modeling.models import ProcessModel
from bpm_server.sla import breaches
from bpm_server.tasks import inbox as inbox_service
from bpm_server.web.account_charts import scatter, trend
from bpm_server.web.labels import TIER_LABELS, stage_titles
from bpm_server.web.session import page_blueprint, page_requires

blp = page_blueprint("account_pages", __name__)
VIEWERS = ("staff", "process_owner", "auditor")
MAX_INSTANCES = 200
BAND_LABELS = {"healthy": _l("Healthy"), "watch": _l("Watch"), "at_risk": _l("At risk"), "unknown": _l("No data")}
QUADRANT_LABELS = {"star": _l("Star"), "cash_cow": _l("Cash cow"), "potential": _l("Potential"),
                   "problem": _l("Problem")}
COMPONENT_LABELS = {"usage": _l("Product usage"), "satisfaction": _l("Satisfaction (NPS / CSAT)"),
                    "payment": _l("Payment"), "support": _l("Support tickets"), "relationship": _l("Relationship")}
KIND_LABELS = {"usage_rate": _l("Product usage rate"), "key_contact_left": _l("Key contact left"),
               "key_contact_changed": _l("Key contact changed"), "payment_overdue_days": _l("Payment overdue (days)"),
               "renewal_stalled": _l("Renewal talks stalled (days)"), "competitor_activity": _l("Competitor activity"),
               "nps": _l("NPS"), "csat": _l("CSAT"), "support_tickets": _l("Support tickets opened")}
ROLE_LABELS = {"decision_maker": _l("Decision maker"), "user": _l("User"), "finance": _l("Finance"),
               "technical": _l("Technical"), "other": _l("Other")}
LABELS = {"tiers": TIER_LABELS, "bands": BAND_LABELS, "quadrants": QUADRANT_LABELS, "components": COMPONENT_LABELS,
          "kinds": KIND_LABELS, "roles": ROLE_LABELS}


@blp.route("/accounts")
@page_requires(*VIEWERS)
def account_list() -> Any:
    session, rt = db.session, deployment()
    tier = request.args.get("tier") or None
    band = request.args.get("health_band") or None
    if (tier and tier not in TIERS) or (band and band not in BAND_LABELS):
        abort(400)
    everyone = list_accounts(session)
    shown = list_accounts(session, tier=tier, owner=request.args.get("owner") or None,
                          q=request.args.get("q") or None)
    scores = health.latest_scores(session)
    if band:
        shown = [a for a in shown if health.band(scores[a.id].score if a.id in scores else None) == band]
    placements, cuts = health.value_matrix(session, everyone, rt.clock.now().astimezone(rt.calendar.time_zone).date())
    placed = {p.account_id: p for p in placements}
    chart = scatter(placements, {a.id: a.name for a in everyone}, cuts)
    return render_template("accounts/list.html", accounts=shown, scores=scores, placed=placed, chart=chart,
                           cuts=cuts, band_of=health.band, labels=LABELS, args=request.args, tiers=TIERS)


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
    days = health.health_history(session, account_id)
    today = days[-1] if days else None
    placements, _ = health.value_matrix(session, list_accounts(session), now.astimezone(rt.calendar.time_zone).date())
    placement = next((p for p in placements if p.account_id == account_id), None)
    return render_template("accounts/account.html", account=found, processes=processes, total=total, stages=stages,
                           glances=glances, late=late, history=history, history_total=history_total,
                           today=today, band=health.band(today.score if today else None), trend=trend(days),
                           placement=placement, signals=signals.history(session, account_id, limit=30),
                           firings=rules.firings(session, account_id, limit=30), labels=LABELS,
                           rule_names={v.rule_id: v.name for v in rules.current_versions(session)},
                           model_names=dict(session.execute(select(ProcessModel.id, ProcessModel.name)).tuples().all()),
                           titles=stage_titles([t.id for t in open_tasks] + [b["task_id"] for b in history]))
