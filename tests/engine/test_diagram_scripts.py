"""Process owners' diagrams cannot run arbitrary code on the server.

Scripts that are forbidden by construction (imports, dunder access) are
refused at upload with the element named; scripts that only fail when run
(calling open(), which does not exist in the sandbox) put that instance in
error with a clear message, and the server carries on serving everyone else.
"""
from __future__ import annotations

import pytest

from bpm_server.config import Config
from tests.api.flows import do_stage, start_project
from tests.fixtures.diagrams import script_task, sequence, user_task
from tests.support import new_model


def _upload(caller, model_id: str, xml: bytes):
    return caller.post(f"/api/v1/process-models/{model_id}/versions", data=xml,
                       headers={"Content-Type": "application/xml"})


def test_import_in_a_script_is_refused_at_upload_naming_the_element(synced_app, people):
    new_model(synced_app, "evil")
    for script in ("import os\nos.system('id')", "x = __import__('os')",
                   "x = ().__class__.__mro__[1].__subclasses__()"):
        response = _upload(people["owner"], "evil", sequence("evil", script_task("steal", script), user_task("t")))
        assert response.status_code == 422, response.get_json()
        problems = response.get_json()["error"]["details"]["problems"]
        assert [p["element_id"] for p in problems] == ["steal"]
    models = {m["id"]: m for m in people["owner"].get("/api/v1/process-models").get_json()}
    assert models["evil"]["versions"] == []


def test_reading_a_file_fails_at_run_time_with_a_clear_error_and_the_server_stays_up(synced_app, people):
    new_model(synced_app, "reader")
    xml = sequence("reader", script_task("read_secrets", 'secret = open("/etc/passwd").read()'), user_task("t"))
    assert _upload(people["owner"], "reader", xml).status_code == 201

    response = people["sales"].post("/api/v1/process-instances",
                                    json={"process_model_id": "reader", "account_id": "ACME", "data": {}})
    assert response.status_code == 201
    instance = response.get_json()
    assert instance["state"] == "error"
    assert instance["error"]["element_id"] == "read_secrets"
    assert "open" in instance["error"]["message"] and "root:" not in str(instance)
    assert instance["tasks"] == []

    # Everyone else's work goes on.
    iid = start_project(people["sales"])["id"]
    do_stage(people, iid, "kickoff")
    assert people["sales"].get("/api/v1/health").status_code == 200


def test_a_failing_script_after_a_stage_keeps_the_completion_and_flags_the_instance(synced_app, people):
    new_model(synced_app, "brittle")
    xml = sequence("brittle", user_task("fill"), script_task("compute", "total = amount * 2"), user_task("check"))
    assert _upload(people["owner"], "brittle", xml).status_code == 201
    iid = people["sales"].post("/api/v1/process-instances", json={
        "process_model_id": "brittle", "account_id": "ACME", "data": {}}).get_json()["id"]
    task = people["sales"].get("/api/v1/tasks").get_json()["items"][0]
    response = people["sales"].post(f"/api/v1/tasks/{task['id']}/complete", json={"data": {}})
    assert response.status_code == 200
    instance = people["sales"].get(f"/api/v1/process-instances/{iid}").get_json()
    assert instance["state"] == "error"
    assert instance["error"]["element_id"] == "compute"
    assert "amount" in instance["error"]["message"]
    assert [h["name"] for h in instance["history"]] == ["fill"]


def test_instances_keep_the_version_they_started_with(synced_app, people):
    old = start_project(people["sales"])
    xml = (synced_app.extensions["bpm"].config.models_dir / "account-project" / "account-project.bpmn").read_bytes()
    changed = xml.replace(b'name="Project kickoff"', b'name="Kickoff meeting"')
    response = _upload(people["owner"], "account-project", changed)
    assert response.status_code == 201 and response.get_json()["version"]["version"] == 2
    new = start_project(people["sales"])
    assert (old["version"], new["version"]) == (1, 2)
    titles = {t["process_instance_id"]: t["title"] for t in people["sales"].get("/api/v1/tasks").get_json()["items"]}
    assert titles == {old["id"]: "Project kickoff", new["id"]: "Kickoff meeting"}
    # The old instance still runs to its next stage on version 1.
    do_stage(people, old["id"], "kickoff")
    assert people["sales"].get(f"/api/v1/process-instances/{old['id']}").get_json()["version"] == 1


@pytest.fixture
def config(config: Config) -> Config:
    # A short CPU budget keeps the runaway case quick; the other budgets keep their defaults.
    return config.but(script_cpu_seconds=0.2)


@pytest.mark.parametrize(("script", "budget"), [
    ("x = 'a' * 10**10", "value size budget exceeded"),
    ("x = 10 ** 10 ** 8", "value size budget exceeded"),
    ("for i in range(10**6):\n    for j in range(10**6):\n        pass", "CPU time budget exceeded"),
], ids=["huge string", "huge power", "endless loop"])
def test_a_script_over_budget_puts_only_its_instance_in_error(synced_app, people, script, budget):
    new_model(synced_app, "greedy")
    xml = sequence("greedy", script_task("grab", script), user_task("t"))
    assert _upload(people["owner"], "greedy", xml).status_code == 201  # only running it tells
    response = people["sales"].post("/api/v1/process-instances",
                                    json={"process_model_id": "greedy", "account_id": "ACME", "data": {}})
    assert response.status_code == 201
    instance = response.get_json()
    assert instance["state"] == "error"
    assert instance["error"]["element_id"] == "grab"
    assert f"{budget} at element grab" in instance["error"]["message"]

    # Everyone else's work goes on.
    iid = start_project(people["sales"])["id"]
    do_stage(people, iid, "kickoff")
    assert people["sales"].get("/api/v1/health").status_code == 200


def test_a_process_calling_itself_is_refused_at_upload(synced_app, people):
    new_model(synced_app, "echo")
    call = '<bpmn:callActivity id="again" name="Again" calledElement="echo"/>'
    response = _upload(people["owner"], "echo", sequence("echo", user_task("t"), call))
    assert response.status_code == 422, response.get_json()
    [problem] = response.get_json()["error"]["details"]["problems"]
    assert problem["element_id"] == "again" and "echo -> echo" in problem["message"]
