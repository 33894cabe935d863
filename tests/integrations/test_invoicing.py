"""The invoicing stage against a fake ERP on loopback: request invoice (signed, idempotent,
retried with back-off), incidents an admin retries, and the "invoice issued" message."""
from __future__ import annotations

from tests.api.flows import (
    STAGE_DATA,
    contract_signed,
    do_stage,
    invoice_issued,
    post_contract_signed,
    walk_to_acceptance,
)
from tests.conftest import START
from tests.integrations.conftest import BACKOFF, ERP_OUT_SECRET, WEBHOOK_SECRET, pump
from tests.support import signed_by


def start_by_webhook(people, event_id="EV-1", contract_no="HT-1") -> str:
    response = post_contract_signed(people["erp"].client, contract_signed(event_id=event_id, contract_no=contract_no),
                                    secret=WEBHOOK_SECRET, timestamp=int(START.timestamp()))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["process_instance_id"]


def instance(people, iid) -> dict:
    return people["admin"].get(f"/api/v1/process-instances/{iid}").get_json()


def test_full_path_webhook_to_invoice_with_two_erp_failures(people, synced_app, fake_erp, clock):
    iid = start_by_webhook(people)
    walk_to_acceptance(people, iid)
    state = instance(people, iid)
    assert state["tasks"] == [] and state["state"] == "running"
    assert [(w["kind"], w["name"], w["attempts"]) for w in state["waiting_for"]] == [
        ("service_call", "erp.request_invoice", 0)]

    fake_erp.fail(2)
    pump(synced_app)  # attempt 1: 500
    state = instance(people, iid)
    assert state["waiting_for"][0]["attempts"] == 1 and "500" in state["waiting_for"][0]["last_error"]
    assert state["incidents"] == []

    pump(synced_app)  # not due yet: the back-off holds the retry
    assert len(fake_erp.requests) == 1
    clock.set(clock.now() + BACKOFF)
    pump(synced_app)  # attempt 2: 500 again; next back-off is doubled
    assert len(fake_erp.requests) == 2
    clock.set(clock.now() + BACKOFF)
    pump(synced_app)
    assert len(fake_erp.requests) == 2, "the second retry waits twice as long"
    clock.set(clock.now() + BACKOFF)
    pump(synced_app)  # attempt 3: accepted
    assert len(fake_erp.requests) == 3

    # Every attempt was the same request: signed like the webhook, one idempotency key.
    keys = {r.headers["Idempotency-Key"] for r in fake_erp.requests}
    assert len(keys) == 1
    for request in fake_erp.requests:
        assert request.path == "/invoice-requests"
        assert signed_by(ERP_OUT_SECRET, request.headers, request.body)
    sent = fake_erp.requests[-1].json
    assert sent["contract_no"] == "HT-1" and sent["account_id"] == "DELTA" and sent["process_instance_id"] == iid
    assert sent["acceptance_report_url"] == STAGE_DATA["delivery"]["acceptance_report_url"]

    state = instance(people, iid)
    assert [(w["kind"], w["name"], w["correlation"]) for w in state["waiting_for"]] == [
        ("message", "invoice_issued", {"contract_no": "HT-1"})]
    assert state["data"]["invoice_request"]["status"] == "accepted"
    assert state["tasks"] == []

    # The ERP calls back: finance gets the invoicing stage with the invoice in its data.
    delivered = invoice_issued(people["erp"], "HT-1", invoice_number="INV-2026-0042", invoice_date="2026-05-06")
    assert delivered.status_code == 200, delivered.get_json()
    assert delivered.get_json()["process_instance_id"] == iid and delivered.get_json()["duplicate"] is False
    task = instance(people, iid)["tasks"][0]
    assert task["name"] == "invoicing" and task["department"] == "finance"
    detail = people["finance"].get(f"/api/v1/tasks/{task['id']}").get_json()
    assert detail["data"]["invoice"]["invoice_number"] == "INV-2026-0042"
    do_stage(people, iid, "invoicing")
    final = instance(people, iid)
    assert final["state"] == "completed" and final["waiting_for"] == []

    outbound = people["auditor"].get("/api/v1/integration-log?direction=outbound&system=erp").get_json()["items"]
    assert [(e["status"], e["outcome"]) for e in reversed(outbound)] == [("500", "failed"), ("500", "failed"),
                                                                       ("200", "ok")]
    assert outbound[0]["endpoint"].endswith("/invoice-requests") and outbound[0]["process_instance_id"] == iid


def test_last_retry_failing_opens_an_incident_an_admin_retries(people, synced_app, fake_erp, clock):
    iid = start_by_webhook(people)
    walk_to_acceptance(people, iid)
    fake_erp.fail(100)
    for _ in range(3):  # outbound_max_attempts is 3 in these tests
        pump(synced_app)
        clock.set(clock.now() + BACKOFF * 4)
    pump(synced_app)
    assert len(fake_erp.requests) == 3

    state = instance(people, iid)
    assert state["state"] == "running" and len(state["incidents"]) == 1
    incident = state["incidents"][0]
    assert incident["element_id"] == "request_invoice" and incident["attempts"] == 3
    assert "HTTP 500" in incident["error"]
    listed = people["auditor"].get("/api/v1/incidents").get_json()
    assert [i["id"] for i in listed["items"]] == [incident["id"]]
    # The admins and the account owner hear about it.
    for who in ("admin", "sales"):
        kinds = [n["kind"] for n in people[who].get("/api/v1/notifications").get_json()["items"]]
        assert "incident" in kinds, who

    retry_url = f"/api/v1/incidents/{incident['id']}/retry"
    assert people["finance"].post(retry_url).status_code == 403
    fake_erp.fail(0)
    retried = people["admin"].post(retry_url)
    assert retried.status_code == 200 and retried.get_json()["state"] == "pending"
    assert people["admin"].post(retry_url).status_code == 409  # no longer open
    pump(synced_app)
    state = instance(people, iid)
    assert state["incidents"] == [] and state["waiting_for"][0]["kind"] == "message"
    assert people["auditor"].get("/api/v1/incidents").get_json()["total"] == 0
    assert people["auditor"].get("/api/v1/incidents?open=false").get_json()["items"][0]["retried_by"] == "admin"


def test_a_retried_incident_gets_a_fresh_round_of_attempts(people, synced_app, fake_erp, clock):
    iid = start_by_webhook(people)
    walk_to_acceptance(people, iid)
    fake_erp.fail(100)

    def attempts_until_quiet() -> None:  # long enough steps for any back-off of these attempts (at most 8 min)
        for _ in range(4):
            pump(synced_app)
            clock.set(clock.now() + BACKOFF * 32)

    attempts_until_quiet()
    [incident] = instance(people, iid)["incidents"]
    assert len(fake_erp.requests) == 3 and incident["attempts"] == 3

    assert people["admin"].post(f"/api/v1/incidents/{incident['id']}/retry").status_code == 200
    pump(synced_app)  # the first attempt of the new round fails too: retried later, no incident yet
    state = instance(people, iid)
    assert len(fake_erp.requests) == 4 and state["incidents"] == []
    assert state["waiting_for"][0]["attempts"] == 4

    attempts_until_quiet()
    assert len(fake_erp.requests) == 6, "three more attempts (outbound_max_attempts), then an incident again"
    [again] = instance(people, iid)["incidents"]
    assert again["id"] == incident["id"] and again["attempts"] == 6


def test_erp_timeout_and_garbage_are_failures_that_retry(people, synced_app, fake_erp, clock):
    iid = start_by_webhook(people)
    walk_to_acceptance(people, iid)
    fake_erp.mode = "hang"  # no answer at all: the client gives up after its 2 s timeout
    pump(synced_app)
    fake_erp.release()
    fake_erp.mode = "garbage"
    clock.set(clock.now() + BACKOFF)
    pump(synced_app)
    log = people["auditor"].get("/api/v1/integration-log?direction=outbound").get_json()["items"]
    assert [e["status"] for e in reversed(log)] == ["timeout", "200"]
    assert "not JSON" in log[0]["error"] and "no answer within 2 s" in log[1]["error"]
    fake_erp.mode = "ok"
    clock.set(clock.now() + BACKOFF * 2)
    pump(synced_app)
    assert instance(people, iid)["waiting_for"][0]["kind"] == "message"


def test_unreachable_erp_is_a_failure_with_a_reason(people, synced_app, fake_erp):
    iid = start_by_webhook(people)
    walk_to_acceptance(people, iid)
    fake_erp.stop()
    pump(synced_app)
    state = instance(people, iid)
    assert "cannot connect" in state["waiting_for"][0]["last_error"]


def test_repeated_attempt_job_does_nothing(people, synced_app, fake_erp):
    """A job handed out twice (a flushed Redis, a re-pumped timer) makes one call."""
    iid = start_by_webhook(people)
    walk_to_acceptance(people, iid)
    pump(synced_app)
    with synced_app.app_context():
        from bpm_server.database import db
        from bpm_server.erp.jobs import attempt_call
        from bpm_server.erp.models import OutboundCall

        call = db.session.query(OutboundCall).one()
        assert attempt_call(call.id, 1) == "stale attempt"
        db.session.remove()
    assert len(fake_erp.requests) == 1


def test_invoice_payload_is_kept_in_the_process_data(people, synced_app, fake_erp):
    iid = start_by_webhook(people)
    walk_to_acceptance(people, iid)
    pump(synced_app)
    invoice_issued(people["erp"], "HT-1", message_id="M-9", invoice_number="INV-9", invoice_date="2026-05-07",
                   pdf_url="https://erp.example/inv/9.pdf")
    data = instance(people, iid)["data"]
    assert data["invoice"] == {"invoice_number": "INV-9", "invoice_date": "2026-05-07",
                               "pdf_url": "https://erp.example/inv/9.pdf", "contract_no": "HT-1"}
    # Finance, who issues the receipt, sees the invoice on the invoicing stage.
    [task] = instance(people, iid)["tasks"]
    shown = people["finance"].get(f"/api/v1/tasks/{task['id']}").get_json()
    assert task["name"] == "invoicing" and shown["data"]["invoice"]["pdf_url"] == "https://erp.example/inv/9.pdf"


def test_a_service_task_operator_must_name_system_and_operation(people):
    from tests.api.test_access import GOOD_XML

    xml = GOOD_XML.replace('id="erp.request_invoice"', 'id="invoice-please"', 1)
    response = people["owner"].post("/api/v1/process-models/account-project/versions", data=xml.encode(),
                                    content_type="application/xml")
    assert response.status_code == 422, response.get_json()
    assert "request_invoice" in str(response.get_json()["error"]) and "<system>.<operation>" in str(
        response.get_json()["error"])


def test_health_says_whether_the_erp_is_wired(synced_app, config):
    from bpm_server.app import create_app

    wired = synced_app.test_client().get("/api/v1/health").get_json()["checks"]["erp"]
    assert wired == {"ok": True, "configured": True, "webhook_secret_set": True}
    bare = create_app(config.but(erp_base_url=None, erp_webhook_secret=None))
    check = bare.test_client().get("/api/v1/health").get_json()["checks"]["erp"]
    assert check["configured"] is False and check["webhook_secret_set"] is False
    assert "BPM_ERP_BASE_URL" in check["warning"] and "BPM_ERP_WEBHOOK_SECRET" in check["warning"]
