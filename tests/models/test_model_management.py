"""Model management over the API: creating a model with its files, rolling back to an
older version, archiving (no new instances) and unarchiving."""
from __future__ import annotations

from io import BytesIO
from pathlib import Path

from tests.fixtures.diagrams import sequence, user_task

MODELS = "/api/v1/process-models"


def one_stage(title: str = "call the customer") -> bytes:
    return sequence("follow_up", user_task("call", "sales").replace('name="Call"', f'name="{title}"'))


def create(caller, model_id="follow-up", files=None, **extra):
    body = {"id": model_id, "name": "Follow up", "description": "after a visit",
            "files": files if files is not None else {"follow-up.bpmn": one_stage().decode()}, **extra}
    return caller.post(MODELS, json=body)


def start(caller, model_id="follow-up"):
    return caller.post("/api/v1/process-instances", json={"process_model_id": model_id, "account_id": "ACME",
                                                           "data": {}})


def test_a_new_model_is_created_with_its_first_version_and_starts(people) -> None:
    owner = people["owner"]
    response = create(owner)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["id"] == "follow-up" and body["name"] == "Follow up" and body["archived_at"] is None
    assert body["current_version"]["version"] == 1
    assert body["current_version"]["entry_process"] == "follow_up"  # inferred: the one executable process
    listed = {m["id"] for m in owner.get(MODELS).get_json()}
    assert "follow-up" in listed
    started = start(people["sales"])
    assert started.status_code == 201, started.get_json()
    assert [t["name"] for t in started.get_json()["tasks"]] == ["call"]


def test_multipart_upload_creates_a_model(people) -> None:
    response = people["owner"].post(MODELS, data={"id": "visit", "name": "Visit",
                                                  "files": (BytesIO(one_stage()), "visit.bpmn")},
                                    content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["current_version"]["version"] == 1


def test_duplicate_id_is_409_and_bad_files_are_422_with_nothing_created(people) -> None:
    owner = people["owner"]
    assert create(owner).status_code == 201
    assert create(owner).status_code == 409
    assert create(owner, "account-project").get_json()["error"]["code"] == "process_model_exists"

    broken = one_stage().decode().replace('value="sales"', 'value="nowhere"')  # no such department
    refused = create(owner, "broken", files={"broken.bpmn": broken})
    assert refused.status_code == 422
    assert [p["element_id"] for p in refused.get_json()["error"]["details"]["problems"]] == ["call"]
    assert create(owner, "no-files", files={}).status_code == 422
    bad_id = create(owner, "Bad Id")
    assert bad_id.status_code == 422 and "id" in bad_id.get_json()["error"]["details"]
    missing = owner.post(MODELS, json={"id": "x"})
    assert missing.status_code == 422 and "name" in missing.get_json()["error"]["details"]
    assert {"broken", "no-files", "bad id", "x"}.isdisjoint({m["id"] for m in owner.get(MODELS).get_json()})
    assert people["sales"].post(MODELS, json={"id": "y", "name": "y", "files": {}}).status_code == 403


def test_an_older_version_is_republished_as_current(people) -> None:
    owner = people["owner"]
    assert create(owner).status_code == 201
    second = owner.post(f"{MODELS}/follow-up/versions", data=one_stage("call them twice"),
                        content_type="application/xml")
    assert second.status_code == 201 and second.get_json()["version"]["version"] == 2

    rolled = owner.post(f"{MODELS}/follow-up/versions/1/republish")
    assert rolled.status_code == 200, rolled.get_json()
    assert rolled.get_json()["current_version"]["version"] == 1
    started = start(people["sales"]).get_json()
    assert started["version"] == 1 and started["tasks"][0]["title"] == "call the customer"

    assert owner.post(f"{MODELS}/follow-up/versions/1/republish").status_code == 409  # already current
    assert owner.post(f"{MODELS}/follow-up/versions/9/republish").status_code == 404
    assert people["sales"].post(f"{MODELS}/follow-up/versions/2/republish").status_code == 403


def test_an_archived_model_starts_nothing_until_unarchived(people) -> None:
    owner, sales = people["owner"], people["sales"]
    assert create(owner).status_code == 201
    running = start(sales).get_json()["id"]

    archived = owner.post(f"{MODELS}/follow-up/archive")
    assert archived.status_code == 200 and archived.get_json()["archived_at"]
    refused = start(sales)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "process_model_archived"
    assert owner.post(f"{MODELS}/follow-up/archive").status_code == 409
    # The instance that was running goes on.
    task = people["admin"].get(f"/api/v1/process-instances/{running}").get_json()["tasks"][0]
    assert sales.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    assert sales.post(f"/api/v1/tasks/{task['id']}/complete", json={"data": {}}).status_code == 200

    assert owner.post(f"{MODELS}/follow-up/unarchive").get_json()["archived_at"] is None
    assert start(sales).status_code == 201
    assert owner.post(f"{MODELS}/follow-up/unarchive").status_code == 409
    assert owner.post(f"{MODELS}/nothing/archive").status_code == 404


MULTIFILE = Path(__file__).resolve().parents[1] / "fixtures" / "multifile"


def test_a_new_model_is_created_from_several_files_with_its_own_form(people) -> None:
    """POST /process-models takes the model's BPMN and DMN files and its own forms, as a folder holds them."""
    files = {p.name: p.read_text() for p in sorted(MULTIFILE.iterdir())}
    response = create(people["owner"], "quotes", files=files, entry_process="quote")
    assert response.status_code == 201, response.get_json()
    version = response.get_json()["current_version"]
    assert version["entry_process"] == "quote"
    started = start(people["sales"], "quotes")
    assert started.status_code == 201, started.get_json()
    (task,) = started.get_json()["tasks"]
    form = people["sales"].get(f"/api/v1/tasks/{task['id']}").get_json()["form"]
    assert form["required"] == ["amount"]  # the form uploaded with the model


def test_a_multipart_new_model_takes_several_files(people) -> None:
    data = {"id": "quotes", "name": "Quotes", "entry_process": "quote",
            "files": [(BytesIO(p.read_bytes()), p.name) for p in sorted(MULTIFILE.iterdir())]}
    response = people["owner"].post(MODELS, data=data, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["current_version"]["entry_process"] == "quote"


def test_new_model_files_that_cannot_make_a_model_are_refused_by_name(people) -> None:
    owner = people["owner"]
    only_table = create(owner, "tables", files={"discount.dmn": (MULTIFILE / "discount.dmn").read_text()})
    assert only_table.status_code == 422 and only_table.get_json()["error"]["code"] == "missing_file"
    stray = create(owner, "stray", files={"a.bpmn": one_stage().decode(), "notes.txt": "hello"})
    assert stray.status_code == 422 and stray.get_json()["error"]["details"]["files"] == ["notes.txt"]
    empty = create(owner, "empty", files={"a.bpmn": "  "})
    assert empty.status_code == 422 and empty.get_json()["error"]["code"] == "empty_upload"
    not_text = owner.post(MODELS, json={"id": "nt", "name": "nt", "files": {"a.bpmn": 5}})
    assert not_text.status_code == 422
    assert {"tables", "stray", "empty", "nt"}.isdisjoint({m["id"] for m in owner.get(MODELS).get_json()})


def test_two_processes_nobody_calls_need_the_entry_process_named(people) -> None:
    """Which process instances start with is not guessed from file names."""
    files = {"a.bpmn": one_stage().decode(),
             "b.bpmn": sequence("other_start", user_task("visit", "sales")).decode()}
    refused = create(people["owner"], "two", files=files)
    assert refused.status_code == 422
    (problem,) = refused.get_json()["error"]["details"]["problems"]
    assert "follow_up, other_start" in problem["message"] and "entry_process" in problem["message"]
    chosen = create(people["owner"], "two", files=files, entry_process="other_start")
    assert chosen.status_code == 201, chosen.get_json()
    assert chosen.get_json()["current_version"]["entry_process"] == "other_start"
