"""POST /api/v1/messages: correlation, idempotency on message_id, and what is refused."""
from __future__ import annotations

from tests.api.flows import invoice_issued, start_project, walk_to_acceptance
from tests.integrations.conftest import pump


def waiting_project(people, app, contract_no: str) -> str:
    iid = start_project(people["sales"], contract_no=contract_no)["id"]
    walk_to_acceptance(people, iid)
    pump(app)  # the ERP accepts the invoice request; the instance now waits for invoice_issued
    return iid


def state(people, iid) -> dict:
    return people["admin"].get(f"/api/v1/process-instances/{iid}").get_json()


def test_message_goes_to_the_instance_with_that_contract(people, synced_app):
    first = waiting_project(people, synced_app, "HT-A")
    second = waiting_project(people, synced_app, "HT-B")
    response = invoice_issued(people["erp"], "HT-B", message_id="M-B")
    assert response.status_code == 200 and response.get_json()["process_instance_id"] == second
    assert response.get_json()["element_id"] == "invoice_issued"
    assert [t["name"] for t in state(people, second)["tasks"]] == ["invoicing"]
    assert state(people, first)["tasks"] == [] and state(people, first)["waiting_for"][0]["kind"] == "message"


def test_no_waiting_instance_is_404_and_a_later_retry_can_succeed(people, synced_app):
    response = invoice_issued(people["erp"], "HT-NONE", message_id="M-1")
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["code"] == "no_waiting_instance" and error["details"]["correlation"] == {"contract_no": "HT-NONE"}
    # Not buffered, and the message id is not used up: the sender's retry works once the instance waits.
    iid = waiting_project(people, synced_app, "HT-NONE")
    again = invoice_issued(people["erp"], "HT-NONE", message_id="M-1")
    assert again.status_code == 200 and again.get_json()["process_instance_id"] == iid


def test_message_to_an_instance_not_yet_waiting_is_refused(people, synced_app):
    iid = start_project(people["sales"], contract_no="HT-EARLY")["id"]
    response = invoice_issued(people["erp"], "HT-EARLY")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "no_waiting_instance"
    assert [t["name"] for t in state(people, iid)["tasks"]] == ["kickoff"]


def test_two_waiting_instances_with_the_same_correlation_is_409(people, synced_app):
    one = waiting_project(people, synced_app, "HT-SAME")
    two = waiting_project(people, synced_app, "HT-SAME")
    response = invoice_issued(people["erp"], "HT-SAME")
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "ambiguous_correlation" and set(error["details"]["process_instance_ids"]) == {one, two}
    assert state(people, one)["tasks"] == state(people, two)["tasks"] == []


def test_repeated_message_id_is_answered_not_delivered_again(people, synced_app):
    iid = waiting_project(people, synced_app, "HT-R")
    assert invoice_issued(people["erp"], "HT-R", message_id="M-R").get_json()["duplicate"] is False
    repeat = invoice_issued(people["erp"], "HT-R", message_id="M-R")
    assert repeat.status_code == 200
    assert repeat.get_json() == {"message_id": "M-R", "process_instance_id": iid, "element_id": "invoice_issued",
                                 "duplicate": True}
    assert [t["name"] for t in state(people, iid)["tasks"]] == ["invoicing"]
    other = invoice_issued(people["erp"], "HT-R", message_id="M-R", invoice_number="INV-OTHER")
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "message_id_reused"


def test_messages_need_the_integration_role_and_a_valid_body(people, synced_app):
    assert invoice_issued(people["sales"], "HT-1").status_code == 403
    bad = people["erp"].post("/api/v1/messages", json={"name": "invoice_issued", "payload": []})
    assert bad.status_code == 422
    assert set(bad.get_json()["error"]["details"]) >= {"correlation", "message_id", "payload"}
    unauth = synced_app.test_client().post("/api/v1/messages", json={})
    assert unauth.status_code == 401


def test_message_deliveries_are_in_the_integration_log(people, synced_app):
    iid = waiting_project(people, synced_app, "HT-L")
    invoice_issued(people["erp"], "HT-NOPE", message_id="M-X")
    invoice_issued(people["erp"], "HT-L", message_id="M-L")
    entries = people["admin"].get("/api/v1/integration-log?system=messages").get_json()["items"]
    assert [(e["reference"], e["status"], e["outcome"]) for e in entries] == [
        ("M-L", "200", "ok"), ("M-X", "404", "rejected")]
    assert entries[0]["process_instance_id"] == iid
    assert people["sales"].get("/api/v1/integration-log").status_code == 403


def test_the_same_message_twice_at_the_same_moment_is_delivered_once(people, synced_app, backend):
    import threading

    iid = waiting_project(people, synced_app, "HT-RACE")
    barrier = threading.Barrier(2)
    answers: list = [None, None]

    def send(i: int) -> None:
        barrier.wait()
        answers[i] = invoice_issued(people["erp"], "HT-RACE", message_id="M-RACE")

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(a.status_code for a in answers) == [200, 200], [a.get_json() for a in answers]
    assert sorted(a.get_json()["duplicate"] for a in answers) == [False, True]
    assert {a.get_json()["process_instance_id"] for a in answers} == {iid}
    tasks = state(people, iid)["tasks"]
    assert [t["name"] for t in tasks] == ["invoicing"], "the instance moved on once"
