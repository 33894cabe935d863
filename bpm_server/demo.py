"""Demo data for ``make run``: one user per department, the other roles, an
account per tier and one running account project. Safe to run repeatedly."""
from __future__ import annotations

from flask import Flask

from bpm_server.accounts.service import upsert_account
from bpm_server.database import db
from bpm_server.identity.service import add_user, find_user, issue_token
from bpm_server.instances.service import list_instances
from bpm_server.runtime import start_instance

DEMO_PASSWORD = "demo"
DEMO_USERS = [
    # username, department, roles, display name
    ("sales.li", "sales", ["staff"], "Li Na (sales / project manager)"),
    ("sales.boss", "sales", ["staff"], "Zhou Qiang (head of sales, department lead)"),
    ("consult.wang", "consulting", ["staff"], "Wang Fang (product consultant)"),
    ("it.zhang", "it", ["staff"], "Zhang Wei (IT / implementation)"),
    ("delivery.chen", "delivery", ["staff"], "Chen Jie (implementation / test)"),
    ("finance.liu", "finance", ["staff"], "Liu Yang (finance)"),
    ("owner.zhao", "pmo", ["process_owner"], "Zhao Min (process owner)"),
    ("auditor.sun", "audit", ["auditor"], "Sun Li (auditor)"),
    ("admin", "it", ["admin"], "Administrator"),
    ("erp", "erp", ["integration"], "ERP integration"),
]
DEMO_ACCOUNTS = [
    ("ACME-001", "Acme Manufacturing", "strategic", "sales.li"),
    ("BETA-002", "Beta Logistics", "key", "sales.li"),
    ("GAMMA-003", "Gamma Retail", "standard", "sales.li"),
]


def seed(app: Flask) -> list[str]:
    """Create what is missing; return one line per user: username, roles, department, a fresh token."""
    session = db.session
    now = app.extensions["bpm"].clock.now()
    lines = []
    for username, department, roles, display in DEMO_USERS:
        user = find_user(session, username) or add_user(
            session, username, department=department, roles=roles, password=DEMO_PASSWORD,
            display_name=display, now=now)
        if username == "sales.boss":
            user.department.lead_user_id = user.id
        token = issue_token(session, user, now=now)
        lines.append(f"{username}\t{','.join(roles)}\t{department}\t{token}")
    for account_id, name, tier, owner in DEMO_ACCOUNTS:
        upsert_account(session, account_id, name=name, tier=tier, owner=owner,
                       executive_sponsor="admin" if tier == "strategic" else None, now=now)
    _, running = list_instances(session, process_model_id="account-project")
    if not running:
        start_instance(session, app.extensions["bpm"], process_model_id="account-project",
                       account_id="ACME-001", now=now, started_by="sales.li",
                       data={"contract_no": "HT-2026-0001", "signed_at": now.isoformat(),
                             "amount": 1200000, "currency": "CNY"})
    session.commit()
    return lines
