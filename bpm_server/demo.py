"""Demo data for ``make run``: users with a lead in every department, accounts in every
quadrant of the value matrix with a signal history, one running account project and,
when the churn-risk model is there, the intervention those signals started. Safe to run
repeatedly (signals are idempotent on their ids; nothing fires twice on the same facts)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.accounts.models import Account
from bpm_server.accounts.service import upsert_account
from bpm_server.accounts.signals import record_signal
from bpm_server.database import db
from bpm_server.extensions import Deployment
from bpm_server.identity.departments import CATALOG_FILE, sync_catalog
from bpm_server.identity.models import Department
from bpm_server.identity.service import add_user, find_user, issue_token
from bpm_server.instances.service import list_instances
from bpm_server.modeling.models import ProcessModel
from bpm_server.runtime import evaluate_account, start_instance

DEMO_PASSWORD = "demo"
DEMO_USERS = [
    # username, department, roles, display name
    ("sales.li", "sales", ["staff"], "李娜 Li Na (销售 / 项目经理 sales / project manager)"),
    ("sales.boss", "sales", ["staff"], "周强 Zhou Qiang (销售总监 head of sales)"),
    ("consult.wang", "consulting", ["staff"], "王芳 Wang Fang (产品顾问 product consultant)"),
    ("consult.lead", "consulting", ["staff"], "郑浩 Zheng Hao (顾问部负责人 head of consulting)"),
    ("it.zhang", "it", ["staff"], "张伟 Zhang Wei (IT / 实施 implementation)"),
    ("it.lead", "it", ["staff"], "吴磊 Wu Lei (IT 负责人 head of IT)"),
    ("delivery.chen", "delivery", ["staff"], "陈杰 Chen Jie (实施 / 测试 delivery / test)"),
    ("delivery.lead", "delivery", ["staff"], "冯涛 Feng Tao (交付负责人 head of delivery)"),
    ("finance.liu", "finance", ["staff"], "刘洋 Liu Yang (财务 finance)"),
    ("finance.lead", "finance", ["staff"], "何静 He Jing (财务主管 head of finance)"),
    ("cs.huang", "customer_success", ["staff"], "黄丽 Huang Li (客户成功经理 customer-success manager)"),
    ("cs.lead", "customer_success", ["staff"], "林峰 Lin Feng (客户成功负责人 head of customer success)"),
    ("owner.zhao", "pmo", ["process_owner"], "赵敏 Zhao Min (流程负责人 process owner)"),
    ("auditor.sun", "audit", ["auditor"], "孙丽 Sun Li (审计 auditor)"),
    ("admin", "it", ["admin"], "管理员 Administrator"),
    ("erp", "erp", ["integration"], "ERP 集成 ERP integration"),
]
# The lead of each department (every department has one).
DEMO_LEADS = {"sales": "sales.boss", "consulting": "consult.lead", "it": "it.lead", "delivery": "delivery.lead",
              "finance": "finance.lead", "customer_success": "cs.lead", "pmo": "owner.zhao", "audit": "auditor.sun",
              "erp": "erp"}
# id, name, tier, owner, industry, contract value (CNY/year), customer since, growth potential (0-100)
DEMO_ACCOUNTS = [
    ("ACME-001", "艾克米制造 Acme Manufacturing", "strategic", "sales.li", "制造业 manufacturing", 8_600_000,
     date(2016, 4, 1), 85),
    ("BETA-002", "贝塔物流 Beta Logistics", "key", "sales.li", "物流 logistics", 5_200_000, date(2017, 9, 1), 25),
    ("GAMMA-003", "伽马零售 Gamma Retail", "standard", "sales.li", "零售 retail", 900_000, date(2024, 3, 1), 90),
    ("DELTA-004", "德尔塔能源 Delta Energy", "key", "sales.boss", "能源 energy", 600_000, date(2023, 6, 1), 20),
    ("EPSILON-005", "艾普西隆医疗 Epsilon Health", "standard", "sales.boss", "医疗 healthcare", 2_100_000,
     date(2020, 1, 1), 70),
]
DEMO_CONTACTS = {
    "ACME-001": [{"name": "王建国", "role": "decision_maker", "phone": "+86 138 1000 0001", "since": "2019-03-01"},
                 {"name": "陈晓", "role": "user", "email": "chen.xiao@acme.example", "since": "2021-07-15"},
                 {"name": "赵会计", "role": "finance", "phone": "+86 21 5555 0101", "since": "2016-04-01"}],
    "BETA-002": [{"name": "刘总", "role": "decision_maker", "phone": "+86 139 2000 0002", "since": "2017-09-01"}],
}
CHURN_MODEL = "churn-risk-intervention"
# Per account: (kind, [(days ago, value), ...]). BETA's usage falls below 70% for two weeks.
DEMO_SIGNALS: dict[str, list[tuple[str, list[tuple[int, float]]]]] = {
    "ACME-001": [("usage_rate", [(35, 91), (28, 93), (21, 90), (14, 94), (7, 92), (1, 95)]), ("nps", [(20, 60)]),
                 ("payment_overdue_days", [(10, 0)]), ("support_tickets", [(12, 2)])],
    "BETA-002": [("usage_rate", [(35, 92), (28, 86), (21, 79), (14, 74), (9, 66), (2, 61)]), ("nps", [(30, 10)]),
                 ("competitor_activity", [(6, 4)]), ("support_tickets", [(8, 6)])],
    "GAMMA-003": [("usage_rate", [(21, 80), (10, 84), (3, 88)]), ("csat", [(15, 4.6)])],
    "DELTA-004": [("usage_rate", [(20, 75), (12, 72), (4, 71)]), ("payment_overdue_days", [(5, 18)]),
                  ("nps", [(25, -30)]), ("renewal_stalled", [(6, 14)])],
    "EPSILON-005": [("usage_rate", [(14, 78), (6, 76)]), ("csat", [(9, 3.8)])],
}


def seed(app: Flask) -> list[str]:
    """Create what is missing; return one line per user: username, roles, department, a fresh token."""
    session = db.session
    rt = app.extensions["bpm"]
    now = rt.clock.now()
    lines = []
    # Named before anyone joins them, so no department of the demo shows as its bare code.
    sync_catalog(session, rt.config.models_dir / CATALOG_FILE, now=now, actor="demo")
    for username, department, roles, display in DEMO_USERS:
        user = find_user(session, username) or add_user(
            session, username, department=department, roles=roles, password=DEMO_PASSWORD,
            display_name=display, now=now)
        token = issue_token(session, user, now=now)
        lines.append(f"{username}\t{','.join(roles)}\t{department}\t{token}")
    for department, lead in DEMO_LEADS.items():
        lead_user = find_user(session, lead)
        if lead_user is not None:
            session.get_one(Department, department).lead_user_id = lead_user.id
    for account_id, name, tier, owner, industry, value, since, growth in DEMO_ACCOUNTS:
        existing = session.get(Account, account_id)
        upsert_account(session, account_id, name=name, tier=existing.tier if existing else tier, owner=owner,
                       executive_sponsor="admin" if tier == "strategic" else None, now=now, actor="demo",
                       industry=industry, contract_value=value, relationship_start=since, growth_potential=growth,
                       contacts=DEMO_CONTACTS.get(account_id) if existing is None else None)
    _, running = list_instances(session, process_model_id="account-project")
    if not running:
        start_instance(session, rt, process_model_id="account-project", account_id="ACME-001", now=now,
                       started_by="sales.li", data={"contract_no": "HT-2026-0001", "signed_at": now.isoformat(),
                                                    "amount": 1200000, "currency": "CNY"})
    _signals(session, rt, now)
    session.commit()
    return lines


def _signals(session: Session, rt: Deployment, now: datetime) -> None:
    """The signal history, a health row for each of the last 5 weeks' days, and today's rules.
    The rules run only when the churn-risk model is there: otherwise nothing would start."""
    for account_id, series in DEMO_SIGNALS.items():
        account = session.get_one(Account, account_id)
        for kind, readings in series:
            for days_ago, value in readings:
                record_signal(session, account, signal_id=f"demo-{account_id}-{kind}-{days_ago}", kind=kind,
                              value=value, at=now - timedelta(days=days_ago, hours=1), source="demo", note=None,
                              actor="demo", now=now)
    churn_model_there = session.scalar(select(ProcessModel.id).where(ProcessModel.id == CHURN_MODEL)) is not None
    for account_id in DEMO_SIGNALS:
        account = session.get_one(Account, account_id)
        for days_ago in range(35, 0, -1):
            evaluate_account(session, rt, account, "demo", now - timedelta(days=days_ago), run_rules=False)
        evaluate_account(session, rt, account, "demo", now, run_rules=churn_model_there)
