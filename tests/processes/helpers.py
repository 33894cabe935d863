"""Starting a shipped process and working its stages as the people of tests.conftest."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.api.flows import open_task
from tests.conftest import Caller


def start(caller: Caller, model_id: str, account: str, data: dict[str, Any] | None = None) -> dict:
    response = caller.post("/api/v1/process-instances",
                           json={"process_model_id": model_id, "account_id": account, "data": data or {}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def instance(caller: Caller, instance_id: str) -> dict:
    response = caller.get(f"/api/v1/process-instances/{instance_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def open_names(caller: Caller, instance_id: str) -> list[str]:
    return sorted(t["name"] for t in instance(caller, instance_id)["tasks"])


def work(caller: Caller, instance_id: str, name: str, data: dict[str, Any]) -> dict:
    """Claim (if needed) and complete the stage as ``caller``; the completed task."""
    task = open_task(caller, instance_id, name)
    if task["state"] == "ready":
        claimed = caller.post(f"/api/v1/tasks/{task['id']}/claim")
        assert claimed.status_code == 200, claimed.get_json()
    response = caller.post(f"/api/v1/tasks/{task['id']}/complete", json={"data": data})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def breaches(caller: Caller, **filters: Any) -> list[dict]:
    response = caller.get("/api/v1/sla/breaches", query_string={"per_page": 200, **filters})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]
