"""Multi-file models with DMN decision tables, over the API on SQLite and PostgreSQL.

The model (tests/fixtures/multifile) is three files and a form of its own: the
entry process asks sales for an amount (its form lives in the model), then
calls a process in a sibling file whose business rule task looks the discount
up in a decision table keyed on the account's tier and the amount.
"""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support import new_model

FILES = Path(__file__).resolve().parents[1] / "fixtures" / "multifile"


def _upload(caller, model_id: str, files: dict[str, bytes]):
    data = {"files": [(io.BytesIO(content), name) for name, content in files.items()]}
    return caller.post(f"/api/v1/process-models/{model_id}/versions", data=data,
                       content_type="multipart/form-data")


def _model_files() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(FILES.iterdir())}


def _run_quote(people, account_id: str, amount: float) -> dict:
    started = people["sales"].post("/api/v1/process-instances",
                                   json={"process_model_id": "quotes", "account_id": account_id, "data": {}})
    assert started.status_code == 201, started.get_json()
    instance = started.get_json()
    (task,) = instance["tasks"]
    assert task["name"] == "enter_amount"
    form = people["sales"].get(f"/api/v1/tasks/{task['id']}").get_json()["form"]
    assert form["required"] == ["amount"]  # the model's own form, not one of forms/
    assert people["sales"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    done = people["sales"].post(f"/api/v1/tasks/{task['id']}/complete", json={"data": {"amount": amount}})
    assert done.status_code == 200, done.get_json()
    return people["sales"].get(f"/api/v1/process-instances/{instance['id']}").get_json()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_multi_file_model_calls_a_sibling_process_that_decides_by_a_dmn_table(synced_app, people) -> None:
    new_model(synced_app, "quotes")
    response = _upload(people["owner"], "quotes", _model_files())
    assert response.status_code == 201, response.get_json()
    version = response.get_json()["version"]
    assert version["entry_process"] == "quote" and version["forms"] == ["quote-amount.json"]

    for account_id, amount, discount in (("BETA", 5000, 0.1), ("BETA", 10, 0.05), ("ACME", 1, 0.2),
                                         ("GAMMA", 99, 0)):
        finished = _run_quote(people, account_id, amount)
        assert finished["state"] == "completed", finished
        assert finished["data"]["discount"] == discount, (account_id, amount, finished["data"])

    again = _upload(people["owner"], "quotes", _model_files())
    assert again.status_code == 200 and again.get_json()["created"] is False  # same content, same version


BAD_TABLES = {
    "overlapping rules": (("&lt; 1000", "&lt;= 1000"), "r_key_small", "both match"),
    "a missing input entry": (('<inputEntry id="b2"><text>&gt;= 1000</text></inputEntry>', ""), "r_key_big",
                              "1 input entries for 2 inputs"),
    "an input without expression": (("<text>amount</text>", ""), "in_amount", "has no input expression"),
    "an unparseable output": (("0.05<", "0.05 +<"), "r_key_small", "cannot read entry"),
    "an unparseable input entry": (("&gt;= 1000", "[1..10]"), "r_key_big", "cannot read entry"),
}


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("case", sorted(BAD_TABLES))
def test_a_bad_decision_table_is_refused_naming_the_table_and_rule(synced_app, people, case: str) -> None:
    (old, new), element, words = BAD_TABLES[case]
    files = _model_files()
    assert old.encode() in files["discount.dmn"]
    files["discount.dmn"] = files["discount.dmn"].replace(old.encode(), new.encode())
    new_model(synced_app, "quotes")
    response = _upload(people["owner"], "quotes", files)
    assert response.status_code == 422, response.get_json()
    problems = response.get_json()["error"]["details"]["problems"]
    assert any(p["element_id"] == element and words in p["message"] and "discount.dmn" in p["message"]
               for p in problems), problems
    listed = people["owner"].get("/api/v1/process-models/quotes").get_json()
    assert listed["versions"] == []  # nothing stored


@pytest.mark.parametrize("backend", ["sqlite"])
def test_calls_that_cannot_be_resolved_or_never_end_are_refused_naming_the_call(synced_app, people) -> None:
    new_model(synced_app, "quotes")
    files = _model_files()
    missing = {k: v for k, v in files.items() if k != "scoring.bpmn"}
    problems = _upload(people["owner"], "quotes", missing).get_json()["error"]["details"]["problems"]
    assert any(p["element_id"] == "score" and "'scoring'" in p["message"] for p in problems), problems

    cyclic = dict(files)
    cyclic["scoring.bpmn"] = files["scoring.bpmn"].replace(
        b'<bpmn:endEvent id="e2"/>', b'<bpmn:endEvent id="e2"/><bpmn:callActivity id="back" calledElement="quote"/>'
    ).replace(b'targetRef="e2"', b'targetRef="back"').replace(
        b"</bpmn:process>", b'<bpmn:sequenceFlow id="g3" sourceRef="back" targetRef="e2"/></bpmn:process>')
    response = _upload(people["owner"], "quotes", cyclic)
    assert response.status_code == 422, response.get_json()
    problems = response.get_json()["error"]["details"]["problems"]
    assert any(p["element_id"] == "back" and "quote -> scoring -> quote" in p["message"] for p in problems), problems


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_model_folder_with_several_files_syncs_as_one_version(synced_app, tmp_path) -> None:
    from bpm_server.database import db
    from bpm_server.modeling.service import current_version, sync_from_disk

    folder = tmp_path / "models" / "quotes"
    folder.mkdir(parents=True)
    for name, content in _model_files().items():
        target = folder / ("forms" if name.endswith(".json") else "") / name
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(content)
    (folder / "model.json").write_text('{"id": "quotes", "name": "Quotes", "entry_process": "quote", '
                                       '"bpmn_file": "main.bpmn"}')
    with synced_app.app_context():
        rt = synced_app.extensions["bpm"]
        report = sync_from_disk(db.session, tmp_path / "models", rt.config.forms_dir, now=rt.clock.now())
        assert report.versions_created == ["quotes v1"]
        version = current_version(db.session, "quotes")
        assert sorted(version.files or {}) == ["discount.dmn", "main.bpmn", "scoring.bpmn"]
        assert set(version.forms) == {"quote-amount.json"}
        db.session.rollback()


def _scoring_files(strategic_discount: str = "0.2") -> dict[str, bytes]:
    files = _model_files()
    table = files["discount.dmn"].replace(b"<text>0.2</text>", f"<text>{strategic_discount}</text>".encode())
    return {"scoring.bpmn": files["scoring.bpmn"], "discount.dmn": table}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_call_into_another_model_runs_its_current_version_at_call_time(synced_app, people) -> None:
    from sqlalchemy import select

    from bpm_server.database import db
    from bpm_server.instances.models import ProcessInstance
    from bpm_server.modeling.models import ProcessModelVersion

    new_model(synced_app, "scoring")
    new_model(synced_app, "quotes")
    assert _upload(people["owner"], "scoring", _scoring_files("0.2")).status_code == 201
    files = _model_files()
    quote_only = {"main.bpmn": files["main.bpmn"], "quote-amount.json": files["quote-amount.json"]}
    assert _upload(people["owner"], "quotes", quote_only).status_code == 201, "calls the scoring model"

    started = people["sales"].post("/api/v1/process-instances",
                                   json={"process_model_id": "quotes", "account_id": "ACME", "data": {}}).get_json()
    # A new version of the called model, published while the instance waits before the call.
    assert _upload(people["owner"], "scoring", _scoring_files("0.3")).status_code == 201
    (task,) = started["tasks"]
    people["sales"].post(f"/api/v1/tasks/{task['id']}/claim")
    done = people["sales"].post(f"/api/v1/tasks/{task['id']}/complete", json={"data": {"amount": 1}})
    assert done.status_code == 200, done.get_json()
    finished = people["sales"].get(f"/api/v1/process-instances/{started['id']}").get_json()
    assert finished["state"] == "completed" and finished["data"]["discount"] == 0.3  # the version current at the call
    with synced_app.app_context():
        called = db.session.get_one(ProcessInstance, started["id"]).called_versions
        v2 = db.session.scalar(select(ProcessModelVersion.id).where(
            ProcessModelVersion.process_model_id == "scoring", ProcessModelVersion.version == 2))
        assert called == {"scoring": v2}

    # The called model may not call back into its caller: the calls would never end.
    back = _scoring_files()
    back["scoring.bpmn"] = back["scoring.bpmn"].replace(
        b'<bpmn:endEvent id="e2"/>', b'<bpmn:endEvent id="e2"/><bpmn:callActivity id="back" calledElement="quote"/>'
    ).replace(b'targetRef="e2"', b'targetRef="back"').replace(
        b"</bpmn:process>", b'<bpmn:sequenceFlow id="g3" sourceRef="back" targetRef="e2"/></bpmn:process>')
    refused = _upload(people["owner"], "scoring", back)
    assert refused.status_code == 422, refused.get_json()
    problems = refused.get_json()["error"]["details"]["problems"]
    assert any(p["element_id"] == "back" and "scoring -> quote -> scoring" in p["message"] for p in problems), problems


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_user_task_of_a_called_model_opens_in_its_department_and_finishes_the_caller(synced_app, people) -> None:
    from tests.fixtures.diagrams import sequence, user_task

    new_model(synced_app, "review")
    new_model(synced_app, "caller")
    review = sequence("review_process", user_task("check_quote", department="finance"))
    assert _upload(people["owner"], "review", {"review.bpmn": review}).status_code == 201
    caller = sequence("caller_process", '<bpmn:callActivity id="ask_finance" calledElement="review_process"/>')
    assert _upload(people["owner"], "caller", {"caller.bpmn": caller}).status_code == 201

    started = people["sales"].post("/api/v1/process-instances",
                                   json={"process_model_id": "caller", "account_id": "GAMMA", "data": {}})
    assert started.status_code == 201, started.get_json()
    (task,) = started.get_json()["tasks"]
    assert (task["name"], task["department"], task["process_model_id"]) == ("check_quote", "finance", "caller")
    inbox = people["finance"].get("/api/v1/tasks").get_json()["items"]
    assert [t["id"] for t in inbox] == [task["id"]]
    assert people["finance"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    assert people["finance"].post(f"/api/v1/tasks/{task['id']}/complete", json={"data": {}}).status_code == 200
    instance = people["sales"].get(f"/api/v1/process-instances/{started.get_json()['id']}").get_json()
    assert instance["state"] == "completed", instance


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_stage_of_a_called_model_shows_and_checks_that_models_own_form(synced_app, people) -> None:
    """The callee's form was published with the callee, not with the caller that reached it."""
    import json

    from tests.fixtures.diagrams import sequence, user_task

    new_model(synced_app, "review")
    new_model(synced_app, "caller")
    form = {"type": "object", "required": ["verdict"],
            "properties": {"verdict": {"type": "string", "title": "审核结论", "enum": ["ok", "not ok"]}}}
    review = sequence("review_process", user_task("check_quote", department="finance", form="verdict.json"))
    published = _upload(people["owner"], "review", {"review.bpmn": review, "verdict.json": json.dumps(form).encode()})
    assert published.status_code == 201, published.get_json()
    caller = sequence("caller_process", '<bpmn:callActivity id="ask_finance" calledElement="review_process"/>')
    assert _upload(people["owner"], "caller", {"caller.bpmn": caller}).status_code == 201

    started = people["sales"].post("/api/v1/process-instances",
                                   json={"process_model_id": "caller", "account_id": "GAMMA", "data": {}})
    (task,) = started.get_json()["tasks"]
    shown = people["finance"].get(f"/api/v1/tasks/{task['id']}").get_json()["form"]
    assert shown["required"] == ["verdict"] and shown["properties"]["verdict"]["title"] == "审核结论"
    assert people["finance"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    empty = people["finance"].post(f"/api/v1/tasks/{task['id']}/complete", json={"data": {}})
    assert empty.status_code == 422 and "verdict" in json.dumps(empty.get_json())
    done = people["finance"].post(f"/api/v1/tasks/{task['id']}/complete", json={"data": {"verdict": "ok"}})
    assert done.status_code == 200, done.get_json()
