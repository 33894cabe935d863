"""Input as a hostile or careless caller sends it: NUL characters, lone
surrogates, JSON nested thousands deep, numbers past any column, moments past
year 9999, bodies over the limits. Each is refused with 413 or 422 naming the
field or the limit (401/403 first where the caller may not call at all), and
nothing is stored; none is a 500."""
from __future__ import annotations

import json

import pytest
from flask import Flask

from bpm_server.database import db
from bpm_server.integration_log.models import IntegrationLogEntry
from tests.api.flows import STAGE_DATA, open_task, post_contract_signed, start_project
from tests.api.test_bad_input import (
    GOOD_XML,
    MODEL_URL,
    assert_error,
    assert_still_open,
    claimed_kickoff,
    instance_count,
    version_numbers,
)
from tests.conftest import Caller

WEBHOOK_SECRET = "test-webhook-secret"  # tests/conftest.py's config
START = "/api/v1/process-instances"
DEEP = "[" * 5000 + "]" * 5000


def start_body(**data: object) -> dict:
    return {"process_model_id": "account-project", "account_id": "ACME",
            "data": {"contract_no": "HT-1", "signed_at": "2026-03-02T09:00:00+08:00", **data}}


def raw_json(caller: Caller, url: str, text: str, method: str = "post"):
    return getattr(caller.client, method)(url, data=text.encode("utf-8", "surrogatepass"),
                                          content_type="application/json",
                                          headers={"Authorization": f"Bearer {caller.token}"})


# --------------------------------------------------------------------------- NUL and lone surrogates

BAD_TEXT = {"nul": "minutes\u0000here", "surrogate": "minutes\ud800here"}


@pytest.mark.parametrize("bad", sorted(BAD_TEXT))
def test_unstorable_characters_in_start_data_name_the_field(people, bad):
    # json.dumps writes "\u0000" / "\ud800" escapes: valid JSON, unstorable text.
    response = raw_json(people["sales"], START, json.dumps(start_body(note=BAD_TEXT[bad])))
    error = assert_error(response, 422, "invalid_characters")
    assert "data.note" in error["details"], error
    assert instance_count(people["auditor"]) == 0


@pytest.mark.parametrize("bad", sorted(BAD_TEXT))
def test_unstorable_characters_in_a_key_name_the_key(people, bad):
    response = raw_json(people["sales"], START, json.dumps(start_body(**{f"x{BAD_TEXT[bad]}": "1"})))
    error = assert_error(response, 422, "invalid_characters")
    assert any(key.startswith("data.x") for key in error["details"]), error
    assert instance_count(people["auditor"]) == 0


@pytest.mark.parametrize("bad", sorted(BAD_TEXT))
def test_unstorable_characters_in_completion_data_move_nothing(people, bad):
    iid, task_id = claimed_kickoff(people)
    data = {**STAGE_DATA["kickoff"], "kickoff_minutes": "Kickoff held " + BAD_TEXT[bad]}
    response = raw_json(people["sales"], f"/api/v1/tasks/{task_id}/complete", json.dumps({"data": data}))
    error = assert_error(response, 422, "invalid_characters")
    assert "data.kickoff_minutes" in error["details"], error
    assert_still_open(people, iid, task_id, "kickoff", history=[])


@pytest.mark.parametrize("bad", sorted(BAD_TEXT))
def test_unstorable_characters_in_an_account_name(people, bad):
    response = raw_json(people["sales"], "/api/v1/accounts/ACME", json.dumps({"name": BAD_TEXT[bad]}), "put")
    error = assert_error(response, 422, "invalid_characters")
    assert "name" in error["details"], error
    assert people["sales"].get("/api/v1/accounts/ACME").get_json()["name"] == "ACME Ltd"


@pytest.mark.parametrize("url, field", [
    ("/api/v1/tasks/abc%00def", "task_id"),
    ("/api/v1/process-instances/abc%00def", None),
    ("/api/v1/accounts/A%00B", "account_id"),
    ("/api/v1/tasks?account_id=%00", "account_id"),
    ("/api/v1/process-instances?account_id=AC%00ME", "account_id"),
    ("/api/v1/sla/breaches?department=%00", "department"),
])
def test_nul_in_path_or_query_parameters_is_refused_naming_it(people, url, field):
    error = assert_error(people["admin"].get(url), 422, "invalid_characters")
    assert len(error["details"]) == 1, error
    if field:
        assert field in error["details"], error


# --------------------------------------------------------------------------- JSON nested thousands deep


def test_deep_json_on_start_names_the_depth_limit(people):
    response = raw_json(people["sales"], START, json.dumps(start_body())[:-2] + ', "x": ' + DEEP + "}}")
    error = assert_error(response, 422, "too_deep")
    assert error["details"]["limit"] == "max_json_depth" and "max_json_depth" in error["message"], error
    assert instance_count(people["auditor"]) == 0


def test_deep_json_on_complete_accounts_and_messages(people):
    iid, task_id = claimed_kickoff(people)
    cases = [(people["sales"], f"/api/v1/tasks/{task_id}/complete", '{"data": ' + DEEP + "}", "post"),
             (people["sales"], "/api/v1/accounts/ACME", '{"name": "x", "owner": ' + DEEP + "}", "put"),
             (people["erp"], "/api/v1/messages", '{"name": "invoice_issued", "message_id": "M1", "correlation": '
                                                  '{"contract_no": "HT-1"}, "payload": ' + DEEP + "}", "post")]
    for caller, url, text, method in cases:
        assert_error(raw_json(caller, url, text, method), 422, "too_deep")
    assert_still_open(people, iid, task_id, "kickoff", history=[])


def test_deep_json_on_the_signed_webhook_is_refused_and_logged(people, synced_app: Flask, clock):
    client = people["admin"].client
    response = post_contract_signed(client, ('{"event_id": ' + DEEP + "}").encode(), secret=WEBHOOK_SECRET,
                                    timestamp=int(clock.now().timestamp()))
    assert_error(response, 422, "too_deep")
    assert instance_count(people["auditor"]) == 0
    with synced_app.app_context():
        entry = db.session.query(IntegrationLogEntry).one()
        assert entry.status == "422" and entry.outcome == "rejected"


@pytest.mark.parametrize("body", [b"\x00", b'{"event_id": "\\u0000"}', ('{"event_id": ' + DEEP + "}").encode()],
                         ids=["nul_byte", "nul_escape", "deep"])
def test_webhook_without_credentials_is_401_whatever_the_body(people, synced_app: Flask, body):
    response = people["admin"].client.post("/api/v1/hooks/erp/contract-signed", data=body,
                                           content_type="application/json")
    assert_error(response, 401, "missing_timestamp")
    with synced_app.app_context():  # the refusal is logged, the unstorable character replaced
        entry = db.session.query(IntegrationLogEntry).one()
        assert entry.status == "401" and "\x00" not in json.dumps(entry.payload, ensure_ascii=False)


@pytest.mark.parametrize("bad", sorted(BAD_TEXT))
def test_unstorable_characters_in_a_message_key_are_refused_and_the_refusal_logged(people, synced_app: Flask, bad):
    body = {"name": "invoice_issued", "message_id": "M1", "correlation": {"contract_no": "HT-1"},
            "payload": {f"k{BAD_TEXT[bad]}": 1}}
    error = assert_error(raw_json(people["erp"], "/api/v1/messages", json.dumps(body)), 422, "invalid_characters")
    assert list(error["details"]) == ["payload.kminutes\ufffdhere"], error
    with synced_app.app_context():  # the integration log keeps the refusal, with the key it could store
        entry = db.session.query(IntegrationLogEntry).one()
        assert entry.status == "422" and "payload.kminutes\ufffdhere" in (entry.error or ""), entry.error


@pytest.mark.parametrize("body", [{"name": "invoice_issued", "message_id": "M1", "correlation": {"contract_no": "X"}},
                                  {"name": "invoice_issued\u0000", "message_id": "M1", "correlation": {}}],
                         ids=["plain", "nul"])
def test_staff_token_on_messages_is_403(people, body):
    assert_error(raw_json(people["sales"], "/api/v1/messages", json.dumps(body)), 403, "role_required")


# --------------------------------------------------------------------------- numbers and moments out of range


@pytest.mark.parametrize("query", ["page=89464249447904980501738291200", "page=9223372036854775808",
                                   "per_page=9223372036854775808"])
@pytest.mark.parametrize("url", ["/api/v1/tasks", "/api/v1/process-instances", "/api/v1/audit",
                                 "/api/v1/sla/breaches"])
def test_page_numbers_past_any_column_are_invalid(people, url, query):
    error = assert_error(people["admin"].get(f"{url}?{query}"), 422)
    name = query.split("=")[0]
    assert name in error["details"], error
    assert f"max_{'page_number' if name == 'page' else 'page_size'}" in str(error["details"]), error


MODEL_MIGRATE = "/api/v1/process-models/account-project/migrate"


@pytest.mark.parametrize("url, body, field", [
    (MODEL_MIGRATE, {"to_version": 2**34}, "to_version"),
    (MODEL_MIGRATE, {"to_version": 1, "from_version": 2**31}, "from_version"),
    ("/api/v1/process-instances/{iid}/migrate", {"version": 2**34}, "version"),
    ("/api/v1/process-instances/{iid}/migrate", {"version": -(2**34)}, "version")])
def test_a_migration_naming_a_version_no_column_can_hold_is_422(people, url, body, field):
    iid = start_project(people["sales"])["id"]
    error = assert_error(people["admin"].post(url.format(iid=iid), json=body), 422)
    assert list(error["details"]) == [field], error
    assert people["auditor"].get(f"/api/v1/process-instances/{iid}").get_json()["version"] == 1


def test_a_version_number_no_column_can_hold_is_404(people):
    response = people["owner"].get("/api/v1/process-models/account-project/versions/4503599627370497/bpmn")
    assert_error(response, 404)


@pytest.mark.parametrize("url", ["/api/v1/audit", "/api/v1/sla/breaches"])
@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_a_moment_past_the_calendar_is_invalid(people, url, moment):
    response = people["admin"].get(url, query_string={"from": moment})
    error = assert_error(response, 422)
    assert "from" in error["details"], error


def test_the_last_representable_moment_is_answered(people):
    response = people["admin"].get("/api/v1/audit", query_string={"from": "9999-12-31T23:59:59+00:00"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["items"] == []


# --------------------------------------------------------------------------- limits as data


@pytest.fixture
def small_limits(config):
    """The same deployment with small limits, to reach each one cheaply."""
    return config.but(max_body_bytes=20_000, max_json_depth=5, max_string_chars=1000,
                      max_process_data_bytes=5000, max_page_size=10, max_page_number=50)


@pytest.fixture
def limited(small_limits, clock, people):
    """The people's tokens on an app that applies the small limits (same database)."""
    from bpm_server.app import create_app

    app = create_app(small_limits, clock=clock)
    client = app.test_client()
    yield {name: Caller(client, caller.username, caller.token) for name, caller in people.items()}
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_body_over_max_body_bytes_is_413_naming_the_limit(limited, people):
    response = raw_json(limited["sales"], START, json.dumps(start_body(note="x" * 30_000)))
    error = assert_error(response, 413, "body_too_large")
    assert error["details"] == {"limit": "max_body_bytes", "max": 20_000}, error
    assert instance_count(people["auditor"]) == 0


def test_a_chunked_body_over_max_body_bytes_is_413_naming_the_limit(limited, people):
    from werkzeug.test import EnvironBuilder

    body = json.dumps(start_body(note="x" * 30_000)).encode()
    environ = EnvironBuilder(path=START, method="POST", data=body, content_type="application/json",
                             headers=[("Authorization", f"Bearer {limited['sales'].token}")]).get_environ()
    # As a chunked upload arrives: no Content-Length, the server reads to the end.
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    error = assert_error(limited["sales"].client.open(environ), 413, "body_too_large")
    assert "max_body_bytes" in error["message"], error
    assert instance_count(people["auditor"]) == 0


def test_depth_over_max_json_depth_is_422_naming_the_limit(limited, people):
    response = limited["sales"].post(START, json=start_body(x=[[[[["deep"]]]]]))
    error = assert_error(response, 422, "too_deep")
    assert error["details"] == {"limit": "max_json_depth", "max": 5}, error
    ok = limited["sales"].post(START, json=start_body(x=[["shallow"]]))
    assert ok.status_code == 201, ok.get_json()


def test_a_string_over_max_string_chars_is_422_naming_field_and_limit(limited, people):
    error = assert_error(limited["sales"].post(START, json=start_body(note="x" * 1001)), 422, "too_long")
    assert "data.note" in error["details"] and "max_string_chars" in error["message"], error
    error = assert_error(limited["sales"].get("/api/v1/tasks?account_id=" + "A" * 1001), 422, "too_long")
    assert "account_id" in error["details"], error
    assert instance_count(people["auditor"]) == 0


def test_process_data_over_max_process_data_bytes_is_413_and_nothing_is_stored(limited, people):
    many = {f"note_{i}": "x" * 900 for i in range(6)}  # each string within its limit, together over 5000 bytes
    error = assert_error(limited["sales"].post(START, json=start_body(**many)), 413, "process_data_too_large")
    assert error["details"]["limit"] == "max_process_data_bytes", error
    assert instance_count(people["auditor"]) == 0


def test_a_completion_that_grows_process_data_over_the_limit_is_413_and_moves_nothing(limited, people):
    # The start data within the limit (4,400 bytes of 5,000); the stage's fields take it over.
    started = limited["sales"].post(START, json=start_body(**{f"note_{i}": "x" * 900 for i in range(4)}))
    assert started.status_code == 201, started.get_json()
    iid = started.get_json()["id"]
    task_id = open_task(people["sales"], iid, "kickoff")["id"]
    assert people["sales"].post(f"/api/v1/tasks/{task_id}/claim").status_code == 200
    data = {**STAGE_DATA["kickoff"], "kickoff_minutes": "m" * 900, "attendees": "a" * 900}
    error = assert_error(limited["sales"].post(f"/api/v1/tasks/{task_id}/complete", json={"data": data}), 413,
                         "process_data_too_large")
    assert error["details"]["limit"] == "max_process_data_bytes", error
    assert_still_open(people, iid, task_id, "kickoff", history=[])


def test_an_admin_data_edit_over_the_limit_is_413_and_changes_nothing(limited, people):
    iid, _ = claimed_kickoff(people)
    many = {f"note_{i}": "x" * 900 for i in range(6)}
    error = assert_error(limited["admin"].client.patch(f"/api/v1/process-instances/{iid}/data", json={"data": many},
                                                       headers={"Authorization": f"Bearer {limited['admin'].token}"}),
                         413, "process_data_too_large")
    assert error["details"]["limit"] == "max_process_data_bytes", error
    assert "note_0" not in people["admin"].get(f"/api/v1/process-instances/{iid}").get_json()["data"]


def test_page_limits_come_from_the_configuration(limited):
    error = assert_error(limited["sales"].get("/api/v1/tasks?per_page=11"), 422)
    assert "max_page_size" in str(error["details"]["per_page"]), error
    error = assert_error(limited["sales"].get("/api/v1/tasks?page=51"), 422)
    assert "max_page_number" in str(error["details"]["page"]), error
    assert limited["sales"].get("/api/v1/tasks?page=50&per_page=10").status_code == 200


def test_a_9_mb_field_in_start_data_is_refused_with_the_defaults(people):
    response = people["sales"].post(START, json=start_body(extra="x" * (9 * 1024 * 1024)))
    error = assert_error(response, 422, "too_long")
    assert "data.extra" in error["details"], error
    assert instance_count(people["auditor"]) == 0


# --------------------------------------------------------------------------- a diagram in UTF-16

UTF16_XML = GOOD_XML.replace('encoding="UTF-8"', 'encoding="UTF-16"').replace('name="Invoicing"',
                                                                            'name="Invoicing 16"')


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"], ids=["with_bom", "without_bom"])
def test_a_utf16_diagram_is_refused_alike_by_validate_and_publish(people, encoding):
    owner = people["owner"]
    raw = UTF16_XML.encode(encoding)
    checked = owner.post(f"{MODEL_URL}/versions/validate", data=raw, content_type="application/xml")
    assert checked.status_code == 200, checked.get_data(as_text=True)
    assert checked.get_json()["valid"] is False
    assert "UTF-8" in checked.get_json()["problems"][0]["message"]
    error = assert_error(owner.post(f"{MODEL_URL}/versions", data=raw, content_type="application/xml"), 422,
                         "invalid_bpmn")
    assert "UTF-8" in error["details"]["problems"][0]["message"], error
    assert version_numbers(owner) == [1]
