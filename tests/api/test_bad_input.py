"""Bad input never breaks anything: a clear JSON error with the right status,
never a 500, and nothing changed afterwards (no new version, no new instance,
the task still open where it was)."""
from __future__ import annotations

import io
from typing import Any

import pytest

from bpm_server.config import PROJECT_ROOT
from tests.api.flows import STAGE_DATA, do_stage, open_task, start_project
from tests.conftest import Caller

MODEL_URL = "/api/v1/process-models/account-project"
UPLOAD_URL = f"{MODEL_URL}/versions"
GOOD_XML = (PROJECT_ROOT / "process_models" / "account-project" / "account-project.bpmn").read_text("utf-8")


# --------------------------------------------------------------------------- helpers


def assert_error(response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is a JSON error body with that status (and code); returns the error object."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:2000])
    body = response.get_json(silent=True)
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), response.get_data(as_text=True)[:2000]
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"]
    assert isinstance(error.get("message"), str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def changed(xml: str, old: str, new: str) -> str:
    assert old in xml, f"the fixture diagram no longer contains {old!r}"
    return xml.replace(old, new, 1)


def upload(caller: Caller, xml: str | bytes, *, transport: str = "xml", model_url: str = MODEL_URL):
    payload = xml.encode() if isinstance(xml, str) else xml
    if transport == "multipart":
        return caller.post(f"{model_url}/versions", data={"file": (io.BytesIO(payload), "diagram.bpmn")},
                           content_type="multipart/form-data")
    return caller.post(f"{model_url}/versions", data=payload, content_type="application/xml")


def version_numbers(caller: Caller) -> list[int]:
    models = {m["id"]: m for m in caller.get("/api/v1/process-models").get_json()}
    model = models["account-project"]
    assert model["current_version"]["version"] == max(v["version"] for v in model["versions"])
    return sorted(v["version"] for v in model["versions"])


def problem_ids(error: dict) -> list[str | None]:
    return [p["element_id"] for p in error["details"]["problems"]]


def instance_count(caller: Caller) -> int:
    return caller.get("/api/v1/process-instances").get_json()["total"]


def claimed_kickoff(people: dict[str, Caller]) -> tuple[str, str]:
    """A fresh instance with its kickoff claimed by sales: (instance id, task id)."""
    iid = start_project(people["sales"])["id"]
    task = open_task(people["sales"], iid, "kickoff")
    assert people["sales"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    return iid, task["id"]


def assert_still_open(people: dict[str, Caller], iid: str, task_id: str, name: str, *, history: list[str],
                      state: str = "claimed", holder: str = "sales") -> None:
    """The instance has not moved: the same task is open (same state) and nothing was added to history."""
    instance = people["auditor"].get(f"/api/v1/process-instances/{iid}").get_json()
    assert instance["state"] == "running"
    assert [(t["id"], t["name"], t["state"]) for t in instance["tasks"]] == [(task_id, name, state)]
    assert [h["name"] for h in instance["history"]] == history
    task = people[holder].get(f"/api/v1/tasks/{task_id}").get_json()
    assert task["state"] == state and task["completed_at"] is None and not task["submitted"]
    assert task_id in [t["id"] for t in people[holder].get("/api/v1/tasks").get_json()["items"]]


# --------------------------------------------------------------------------- BPMN upload

NOT_EXECUTABLE = changed(GOOD_XML, 'isExecutable="true"', 'isExecutable="false"')
MISSING_FORM = changed(GOOD_XML, "account-project/needs_research.json", "account-project/no_such_form.json")
# A department nobody set up (a task without any goes to the starter's department instead).
UNKNOWN_DEPARTMENT = changed(GOOD_XML, '<spiffworkflow:property name="department" value="consulting" />',
                             '<spiffworkflow:property name="department" value="research-lab" />')
IMPORTS_OS = changed(GOOD_XML, "rework_rounds = rework_rounds + 1",
                     "import os\nrework_rounds = len(os.listdir('/'))")

BAD_DIAGRAMS = {
    # name: (body, message fragment expected, BPMN element id expected in details.problems)
    "malformed": ("<bpmn:definitions><unclosed></bpmn:definitions>", "malformed", None),
    "truncated": (GOOD_XML[: len(GOOD_XML) // 2], "malformed", None),
    "html": ("<html/>", "not a BPMN", None),
    "no_executable_process": (NOT_EXECUTABLE, "executable", None),
    "missing_form_file": (MISSING_FORM, "no_such_form.json", "needs_research"),
    "unknown_department": (UNKNOWN_DEPARTMENT, "research-lab", "needs_research"),
    "script_imports_os": (IMPORTS_OS, "record_rework", "record_rework"),
}


@pytest.mark.parametrize("transport", ["xml", "multipart"])
@pytest.mark.parametrize("case", sorted(BAD_DIAGRAMS))
def test_bad_diagram_is_refused_with_its_problem_and_publishes_nothing(people, case, transport):
    owner = people["owner"]
    body, fragment, element_id = BAD_DIAGRAMS[case]
    error = assert_error(upload(owner, body, transport=transport), 422)
    assert fragment.lower() in error["message"].lower(), error
    assert error["details"]["problems"], error
    if element_id is not None:
        assert element_id in problem_ids(error), error
    assert version_numbers(owner) == [1]


def test_import_in_a_script_task_is_reported_on_that_task(people):
    error = assert_error(upload(people["owner"], IMPORTS_OS), 422, "invalid_bpmn")
    problems = [p for p in error["details"]["problems"] if p["element_id"] == "record_rework"]
    assert problems and "import" in problems[0]["message"].lower(), error
    assert version_numbers(people["owner"]) == [1]


def test_every_problem_of_a_diagram_is_listed_at_once(people):
    both = changed(MISSING_FORM, "account-project/invoicing.json", "account-project/also_missing.json")
    error = assert_error(upload(people["owner"], both), 422, "invalid_bpmn")
    assert {"needs_research", "invoicing"} <= set(problem_ids(error)), error


@pytest.mark.parametrize("body", [b"", b"   \n  "], ids=["empty", "whitespace"])
@pytest.mark.parametrize("transport", ["xml", "multipart"])
def test_empty_upload_is_refused(people, body, transport):
    assert_error(upload(people["owner"], body, transport=transport), 422)
    assert version_numbers(people["owner"]) == [1]


def test_multipart_upload_without_the_file_field(people):
    response = people["owner"].post(UPLOAD_URL, data={"diagram": (io.BytesIO(GOOD_XML.encode()), "x.bpmn")},
                                    content_type="multipart/form-data")
    error = assert_error(response, 422, "missing_file")
    assert "file" in error["message"] and "file" in error["details"]
    assert version_numbers(people["owner"]) == [1]


@pytest.mark.parametrize("transport", ["xml", "multipart"])
def test_upload_to_an_unknown_model_is_404(people, transport):
    response = upload(people["owner"], GOOD_XML, transport=transport, model_url="/api/v1/process-models/no-such-model")
    error = assert_error(response, 404)
    assert "no-such-model" in error["message"]
    assert "no-such-model" not in [m["id"] for m in people["owner"].get("/api/v1/process-models").get_json()]
    assert version_numbers(people["owner"]) == [1]


@pytest.mark.parametrize("transport", ["xml", "multipart"])
def test_same_diagram_again_is_not_a_new_version(people, transport):
    response = upload(people["owner"], GOOD_XML, transport=transport)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["created"] is False and body["version"]["version"] == 1
    assert version_numbers(people["owner"]) == [1]


@pytest.mark.parametrize("transport", ["xml", "multipart"])
def test_changed_diagram_becomes_version_2_and_new_instances_use_it(people, transport):
    response = upload(people["owner"], changed(GOOD_XML, 'name="Invoicing"', 'name="Invoicing and receipt"'),
                      transport=transport)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["created"] is True and body["version"]["version"] == 2
    assert body["version"]["created_by"] == "owner"
    assert version_numbers(people["owner"]) == [1, 2]
    assert start_project(people["sales"])["version"] == 2


XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
PASSWD_ENTITY = '<!DOCTYPE bpmn:definitions [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'


def _with_doctype(doctype: str, old: str = "", new: str = "") -> str:
    xml = changed(GOOD_XML, old, new) if old else GOOD_XML
    return changed(xml, XML_DECLARATION, XML_DECLARATION + doctype)


def _laugh(level: int) -> str:
    expansion = f"&l{level - 1};" * 10
    return f'<!ENTITY l{level} "{expansion}">'


BILLION_LAUGHS = '<!ENTITY l0 "lol">' + "".join(_laugh(i) for i in range(1, 10))

XXE_CASES = {
    "in_task_name": _with_doctype(PASSWD_ENTITY, 'name="Invoicing"', 'name="&xxe;"'),
    "in_instructions": _with_doctype(PASSWD_ENTITY, "Issue the invoice for the accepted project,", "&xxe;"),
    "in_script": _with_doctype(PASSWD_ENTITY, "rework_rounds = rework_rounds + 1",
                               "rework_rounds = rework_rounds + 1\n&xxe;"),
    # Declared but not referenced: storing it would hand the payload to every
    # tool that later downloads the diagram.
    "declared_only": _with_doctype(PASSWD_ENTITY),
    "parameter_entity": _with_doctype('<!DOCTYPE bpmn:definitions [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>\n'),
    "external_dtd": _with_doctype('<!DOCTYPE bpmn:definitions SYSTEM "file:///etc/passwd">\n'),
    # A billion laughs: 10**9 "lol"s must be refused, not expanded.
    "entity_bomb": _with_doctype("<!DOCTYPE bpmn:definitions [" + BILLION_LAUGHS + "]>\n",
                                 'name="Invoicing"', 'name="&l9;"'),
}


@pytest.mark.parametrize("case", sorted(XXE_CASES))
def test_external_entity_is_neither_read_nor_published(people, case):
    owner = people["owner"]
    response = upload(owner, XXE_CASES[case])
    assert "root:" not in response.get_data(as_text=True)
    error = assert_error(response, 422)
    # Says what is wrong with the upload, not that the server failed.
    assert "internal error" not in error["message"].lower(), error
    assert "entit" in error["message"].lower() or "doctype" in error["message"].lower(), error
    assert version_numbers(owner) == [1]


def test_staff_cannot_publish_and_nothing_changes(people):
    changed_xml = changed(GOOD_XML, 'name="Invoicing"', 'name="Invoicing v2"')
    assert_error(upload(people["sales"], changed_xml), 403)
    assert version_numbers(people["owner"]) == [1]


# --------------------------------------------------------------------------- completing tasks

FORM_ERRORS = {
    # name: (stage, data, the field the details must name)
    "missing_required": ("kickoff", {"attendees": "Li, Wang"}, "kickoff_minutes"),
    "too_short": ("kickoff", {"kickoff_minutes": "short"}, "kickoff_minutes"),
    "wrong_type": ("kickoff", {"kickoff_minutes": 12345678901}, "kickoff_minutes"),
    "bad_date": ("kickoff", {**STAGE_DATA["kickoff"], "kickoff_date": "next Tuesday"}, "kickoff_date"),
    "extra_field": ("kickoff", {**STAGE_DATA["kickoff"], "budget": 100000}, "budget"),
    "wrong_enum": ("solution_signoff", {"customer_decision": "maybe"}, "customer_decision"),
    "rejected_without_reason": ("solution_signoff", {"customer_decision": "rejected"}, "rejection_reason"),
    "approved_without_plan": ("solution_signoff", {"customer_decision": "approved",
                                                   "planned_go_live": "2026-04-30"}, "signed_plan_url"),
}


def _reach(people: dict[str, Caller], stage: str) -> tuple[str, str, list[str]]:
    """An instance whose ``stage`` is claimed by sales: (instance id, task id, history so far)."""
    iid = start_project(people["sales"])["id"]
    history: list[str] = []
    if stage == "solution_signoff":
        history = ["kickoff", "needs_research"]
        for name in history:
            do_stage(people, iid, name)
    task = open_task(people["sales"], iid, stage)
    assert people["sales"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    return iid, task["id"], history


@pytest.mark.parametrize("case", sorted(FORM_ERRORS))
def test_form_data_failing_validation_names_the_field_and_moves_nothing(people, case):
    stage, data, field = FORM_ERRORS[case]
    iid, task_id, history = _reach(people, stage)
    error = assert_error(people["sales"].post(f"/api/v1/tasks/{task_id}/complete", json={"data": data}), 422)
    assert field in error["details"], error
    assert all(isinstance(msgs, list) and msgs for msgs in error["details"].values()), error
    assert field in error["message"], error
    assert_still_open(people, iid, task_id, stage, history=history)


@pytest.mark.parametrize("body", [{"data": "kickoff held"}, {"data": ["kickoff_minutes"]}, {"data": None},
                                  {"data": 42}, {}, {"kickoff_minutes": "Kickoff held with the customer"},
                                  ["data"], "data"],
                         ids=["string", "list", "null", "number", "empty_body", "fields_at_top_level",
                              "body_is_list", "body_is_string"])
def test_complete_body_without_a_data_object_is_invalid(people, body):
    iid, task_id = claimed_kickoff(people)
    error = assert_error(people["sales"].post(f"/api/v1/tasks/{task_id}/complete", json=body), 422)
    if isinstance(body, dict):
        assert "data" in str(error.get("details")) + error["message"], error
    assert_still_open(people, iid, task_id, "kickoff", history=[])


@pytest.mark.parametrize("raw, content_type", [("{not json", "application/json"),
                                               ('{"data": {"kickoff_minutes": ', "application/json"),
                                               ("", "application/json"),
                                               ("data=kickoff", "application/x-www-form-urlencoded"),
                                               (b"\xff\xfe\x00garbage", "application/json")],
                         ids=["not_json", "truncated_json", "empty", "form_encoded", "not_utf8"])
def test_complete_with_a_body_that_is_not_json_is_invalid(people, raw, content_type):
    iid, task_id = claimed_kickoff(people)
    response = people["sales"].post(f"/api/v1/tasks/{task_id}/complete", data=raw, content_type=content_type)
    error = assert_error(response, 422)
    assert "invalid" in error["code"], error
    assert_still_open(people, iid, task_id, "kickoff", history=[])


def test_completing_twice_is_a_conflict_and_the_process_moves_once(people):
    iid, task_id = claimed_kickoff(people)
    url = f"/api/v1/tasks/{task_id}/complete"
    assert people["sales"].post(url, json={"data": STAGE_DATA["kickoff"]}).status_code == 200
    again = {**STAGE_DATA["kickoff"], "kickoff_minutes": "A different set of minutes"}
    error = assert_error(people["sales"].post(url, json={"data": again}), 409, "already_completed")
    assert task_id in error["message"]
    instance = people["auditor"].get(f"/api/v1/process-instances/{iid}").get_json()
    assert [h["name"] for h in instance["history"]] == ["kickoff"]
    assert instance["history"][0]["data"] == STAGE_DATA["kickoff"]
    assert [t["name"] for t in instance["tasks"]] == ["needs_research"]
    # Claiming a completed task is a conflict too.
    assert_error(people["sales"].post(f"/api/v1/tasks/{task_id}/claim"), 409, "already_completed")


def test_completing_another_departments_task_is_forbidden(people):
    iid = start_project(people["sales"])["id"]
    task_id = open_task(people["sales"], iid, "kickoff")["id"]
    response = people["consulting"].post(f"/api/v1/tasks/{task_id}/complete", json={"data": STAGE_DATA["kickoff"]})
    assert_error(response, 403, "not_your_department")
    assert_still_open(people, iid, task_id, "kickoff", history=[], state="ready")


def test_claiming_a_claimed_task_is_a_conflict(people):
    iid, task_id = claimed_kickoff(people)
    url = f"/api/v1/tasks/{task_id}/claim"
    error = assert_error(people["sales2"].post(url), 409, "claimed_by_other")
    assert "sales" in error["message"]
    assert_error(people["sales"].post(url), 409, "already_claimed")
    # sales2 cannot complete it either, and the claim stays with sales.
    assert_error(people["sales2"].post(f"/api/v1/tasks/{task_id}/complete", json={"data": STAGE_DATA["kickoff"]}),
                 409, "claimed_by_other")
    assert people["sales"].get(f"/api/v1/tasks/{task_id}").get_json()["assignee"] == "sales"
    assert_still_open(people, iid, task_id, "kickoff", history=[])


@pytest.mark.parametrize("method, url", [
    ("get", "/api/v1/tasks/no-such-task"),
    ("post", "/api/v1/tasks/no-such-task/claim"),
    ("post", "/api/v1/tasks/no-such-task/complete"),
    ("get", "/api/v1/process-instances/no-such-instance"),
    ("get", "/api/v1/process-models/no-such-model"),
    ("get", "/api/v1/process-models/account-project/versions/99/bpmn"),
    ("get", "/api/v1/accounts/NO-SUCH-ACCOUNT"),
])
def test_unknown_ids_are_404(people, method, url):
    caller = people["admin"]
    kwargs = {"json": {"data": STAGE_DATA["kickoff"]}} if url.endswith("/complete") else {}
    error = assert_error(getattr(caller, method)(url, **kwargs), 404)
    assert "no-such" in error["message"].lower() or "99" in error["message"], error


# --------------------------------------------------------------------------- starting instances

START_ERRORS = {
    # name: (body, status, code or None, a word the error must contain)
    "unknown_model": ({"process_model_id": "no-such-model", "account_id": "ACME"}, 404, "unknown_process_model",
                      "no-such-model"),
    "unknown_account": ({"process_model_id": "account-project", "account_id": "NOBODY"}, 404, "unknown_account",
                        "NOBODY"),
    "data_not_object": ({"process_model_id": "account-project", "account_id": "ACME", "data": ["x"]}, 422, None,
                        "data"),
    "data_is_string": ({"process_model_id": "account-project", "account_id": "ACME", "data": "x"}, 422, None,
                       "data"),
    "no_model_id": ({"account_id": "ACME", "data": {}}, 422, None, "process_model_id"),
    "empty_model_id": ({"process_model_id": "", "account_id": "ACME"}, 422, None, "process_model_id"),
    "no_account_id": ({"process_model_id": "account-project"}, 422, None, "account_id"),
    "model_id_not_string": ({"process_model_id": 7, "account_id": "ACME"}, 422, None, "process_model_id"),
    "body_is_list": ([{"process_model_id": "account-project", "account_id": "ACME"}], 422, None, None),
}


@pytest.mark.parametrize("case", sorted(START_ERRORS))
def test_bad_start_is_refused_and_starts_nothing(people, case):
    body, status, code, word = START_ERRORS[case]
    error = assert_error(people["sales"].post("/api/v1/process-instances", json=body), status, code)
    if word:
        assert word in error["message"] + str(error.get("details")), error
    if status == 422 and isinstance(body, dict) and word in ("process_model_id", "account_id", "data"):
        assert word in error["details"], error
    assert instance_count(people["auditor"]) == 0
    assert people["sales"].get("/api/v1/tasks").get_json()["total"] == 0


def test_start_with_a_body_that_is_not_json(people):
    response = people["sales"].post("/api/v1/process-instances", data="{not json", content_type="application/json")
    assert_error(response, 422)
    assert instance_count(people["auditor"]) == 0


@pytest.mark.parametrize("query", ["state=bogus", "per_page=0", "per_page=100000", "page=-1", "overdue=perhaps",
                                   "page=abc"])
def test_bad_inbox_filters_are_invalid_not_500(people, query):
    error = assert_error(people["sales"].get(f"/api/v1/tasks?{query}"), 422)
    assert query.split("=")[0] in error["details"], error
