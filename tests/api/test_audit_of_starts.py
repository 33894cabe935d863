"""Every instance start is on the audit trail (who, which model and version, which account),
whether a person, the ERP's webhook or a timer start event started it."""
from __future__ import annotations

from tests.api.flows import start_project


def test_a_start_is_audited_with_who_what_and_for_which_account(people) -> None:
    instance = start_project(people["sales"], "ACME")
    found = people["auditor"].get("/api/v1/audit", query_string={"action": "instance.start",
                                                                 "object_id": instance["id"]})
    assert found.status_code == 200, found.get_json()
    (entry,) = found.get_json()["items"]
    assert entry["actor"] == "sales"
    assert entry["details"]["process_model_id"] == "account-project" and entry["details"]["account_id"] == "ACME"
    assert entry["details"]["version"] == instance["version"]
    csv = people["auditor"].get("/api/v1/audit", query_string={"action": "instance.start", "format": "csv"})
    assert csv.status_code == 200 and instance["id"] in csv.get_data(as_text=True)
