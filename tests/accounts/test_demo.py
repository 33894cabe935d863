"""The demo data shows the account features on first start: every quadrant, a health
history, one intervention the signals started, a lead in every department."""
from __future__ import annotations

from sqlalchemy import select

from bpm_server.accounts.models import HealthSnapshot, RuleFiring
from bpm_server.database import db
from bpm_server.demo import DEMO_ACCOUNTS, seed
from bpm_server.identity.models import Department
from bpm_server.instances.models import ProcessInstance
from bpm_server.modeling.models import ProcessModel
from bpm_server.modeling.service import publish_version
from tests.accounts.conftest import FIXTURES
from tests.support import new_model


def test_the_demo_fills_every_quadrant_and_has_fired_one_intervention(synced_app) -> None:
    with synced_app.app_context():
        if db.session.get(ProcessModel, "churn-risk-intervention") is None:
            new_model(synced_app, "churn-risk-intervention", "客户流失风险干预 (fixture)")
            publish_version(db.session, "churn-risk-intervention", (FIXTURES / "intervention.bpmn").read_bytes(),
                            source="sync", now=synced_app.extensions["bpm"].clock.now())
            db.session.commit()
        for _round in range(2):  # safe to run again: nothing fires twice
            seed(synced_app)
        firings = db.session.scalars(select(RuleFiring)).all()
        assert [(f.account_id, f.rule_id, f.outcome) for f in firings] == [("BETA-002", "churn-usage-low", "started")]
        instance = db.session.get_one(ProcessInstance, firings[0].process_instance_id)
        assert instance.state == "running" and instance.data["trigger"]["rule"] == "churn-usage-low"
        days = db.session.scalars(select(HealthSnapshot.day).where(HealthSnapshot.account_id == "ACME-001")).all()
        assert len(days) == 36
        assert all(d.lead_user_id for d in db.session.scalars(select(Department)))

    client = synced_app.test_client()
    token = next(line.split("\t")[3] for line in seed_lines(synced_app) if line.startswith("sales.li\t"))
    matrix = client.get("/api/v1/accounts/matrix", headers={"Authorization": f"Bearer {token}"}).get_json()
    quadrants = {p["account_id"]: p["quadrant"] for p in matrix["items"]}
    assert set(quadrants) == {a[0] for a in DEMO_ACCOUNTS}
    assert set(quadrants.values()) == {"star", "cash_cow", "potential", "problem"}


def seed_lines(app) -> list[str]:
    with app.app_context():
        return seed(app)
