"""What the browser modeler relies on: checking a diagram without publishing it,
and how many instances run on each version."""
from __future__ import annotations

from tests.api.flows import start_project
from tests.sla.test_sla_definitions_upload import BPMN, upload, versions, with_property

VALIDATE = "/api/v1/process-models/account-project/versions/validate"
COUNTS = "/api/v1/process-models/account-project/instance-counts"


def validate(caller, xml: bytes):
    return caller.post(VALIDATE, data=xml, content_type="application/xml")


def test_a_clean_diagram_validates_and_nothing_is_published(people) -> None:
    owner = people["owner"]
    before = versions(owner)

    response = validate(owner, with_property("kickoff", "sla", "4 working days"))

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"valid": True, "problems": [], "warnings": []}
    assert versions(owner) == before


def test_problems_are_listed_per_element_and_nothing_is_published(people) -> None:
    owner = people["owner"]
    before = versions(owner)
    xml = with_property("kickoff", "slaWarnAt", "180%").decode()
    # The IT stage names a department nobody set up.
    xml = xml.replace('<spiffworkflow:property name="department" value="it" />',
                      '<spiffworkflow:property name="department" value="it-ops" />')

    response = validate(owner, xml.encode())

    assert response.status_code == 200
    body = response.get_json()
    assert body["valid"] is False
    by_element = {p["element_id"]: p["message"] for p in body["problems"]}
    assert "180%" in by_element["kickoff"]
    assert "it-ops" in by_element["resource_preparation"]
    assert versions(owner) == before
    # The same diagram uploaded is refused with the same problems: one set of checks.
    uploaded = upload(owner, xml.encode()).get_json()["error"]["details"]["problems"]
    assert sorted(p["element_id"] for p in uploaded) == sorted(p["element_id"] for p in body["problems"])


def test_malformed_xml_is_a_problem_not_an_error(people) -> None:
    response = validate(people["owner"], b"<bpmn:definitions")
    assert response.status_code == 200
    [problem] = response.get_json()["problems"]
    assert problem["element_id"] is None and "malformed XML" in problem["message"]


def test_validate_bad_requests(people) -> None:
    assert validate(people["sales"], BPMN.read_bytes()).status_code == 403
    assert validate(people["auditor"], BPMN.read_bytes()).status_code == 403
    assert validate(people["owner"], b"  ").status_code == 422
    missing = people["owner"].post("/api/v1/process-models/nope/versions/validate", data=BPMN.read_bytes(),
                                   content_type="application/xml")
    assert missing.status_code == 404


def test_instance_counts_per_version(people) -> None:
    owner, sales = people["owner"], people["sales"]
    start_project(sales, "ACME")
    start_project(sales, "BETA")
    assert upload(owner, with_property("kickoff", "sla", "3 working days")).status_code == 201
    on_v2 = start_project(sales, "GAMMA")
    assert on_v2["version"] == 2

    body = people["auditor"].get(COUNTS).get_json()

    assert body["versions"] == [
        {"version": 2, "running": 1, "total": 1, "by_state": {"running": 1}},
        {"version": 1, "running": 2, "total": 2, "by_state": {"running": 2}},
    ]
    assert people["owner"].get("/api/v1/process-models/nope/instance-counts").status_code == 404
