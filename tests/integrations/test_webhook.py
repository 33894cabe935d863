"""The ERP's contract-signed webhook: signature, replay window, validation, idempotency, races."""
from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from bpm_server.database import db
from bpm_server.erp.models import ContractSignedEvent
from tests.api.flows import contract_signed, post_contract_signed
from tests.conftest import START
from tests.integrations.conftest import WEBHOOK_SECRET
from tests.support import sign

NOW = int(START.timestamp())


def deliver(people, body, **kw):
    kw.setdefault("secret", WEBHOOK_SECRET)
    kw.setdefault("timestamp", NOW)
    return post_contract_signed(people["erp"].client, body, **kw)


def instances(people) -> list[dict]:
    return people["admin"].get("/api/v1/process-instances?per_page=200").get_json()["items"]


def log(people, **filters) -> list[dict]:
    response = people["auditor"].get("/api/v1/integration-log", query_string=filters)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def test_first_delivery_starts_the_project_and_a_retry_starts_nothing(people):
    body = contract_signed(event_id="EV-100", contract_no="HT-100", account_id="DELTA", tier="strategic")
    first = deliver(people, body)
    assert first.status_code == 201, first.get_json()
    iid = first.get_json()["process_instance_id"]

    instance = people["admin"].get(f"/api/v1/process-instances/{iid}").get_json()
    assert instance["account_id"] == "DELTA" and instance["state"] == "running"
    assert [t["name"] for t in instance["tasks"]] == ["kickoff"]
    assert instance["data"]["contract_no"] == "HT-100" and instance["data"]["erp_event_id"] == "EV-100"
    # The account came from the payload; the kickoff SLA counts from signed_at (strategic: 1 working day).
    account = people["admin"].get("/api/v1/accounts/DELTA").get_json()
    assert (account["name"], account["tier"], account["owner"]) == ("DELTA Ltd", "strategic", "sales")
    assert datetime.fromisoformat(instance["tasks"][0]["due_at"]) == datetime.fromisoformat("2026-03-02T18:00:00+08:00")

    # The ERP retries (a minute later, re-signed): same instance, 200, nothing new.
    again = deliver(people, body, timestamp=NOW + 60)
    assert again.status_code == 200 and again.get_json() == {"process_instance_id": iid}
    assert [i["id"] for i in instances(people)] == [iid]

    entries = log(people, direction="inbound", system="erp")
    assert [(e["status"], e["outcome"], e["reference"]) for e in entries] == [
        ("200", "duplicate", "EV-100"), ("201", "ok", "EV-100")]
    assert entries[1]["process_instance_id"] == iid and entries[1]["duration_ms"] >= 0
    assert entries[1]["payload"]["headers"]["X-BPM-Signature"] == "***"
    assert entries[1]["payload"]["body"]["contract_no"] == "HT-100"


def test_the_project_data_is_the_contract_as_sent_without_its_account_and_event_id(people):
    """The account lives in its own record; fields the ERP adds travel into the data untouched, empty ones not."""
    body = contract_signed(event_id="EV-DATA", contract_no="HT-DATA", owner=None, sales_region="华东")
    response = deliver(people, body)
    assert response.status_code == 201, response.get_json()
    data = people["admin"].get(f"/api/v1/process-instances/{response.get_json()['process_instance_id']}"
                               ).get_json()["data"]
    assert data == {"contract_no": "HT-DATA", "signed_at": "2026-03-02T09:00:00+08:00", "amount": 120000.5,
                    "currency": "CNY", "sales_region": "华东", "erp_event_id": "EV-DATA",
                    # What starting an account's process adds from the account record, and the rework counters.
                    "account_id": "DELTA", "account_name": "DELTA Ltd", "account_tier": "key",
                    "rejections": [], "rework_rounds": 0}


def test_account_is_updated_by_a_later_contract(people):
    assert deliver(people, contract_signed(event_id="EV-1", account_id="DELTA", tier="standard")).status_code == 201
    assert deliver(people, contract_signed(event_id="EV-2", contract_no="HT-2", account_id="DELTA",
                                           tier="key", account={"id": "DELTA", "name": "Delta Group",
                                                                "tier": "key"})).status_code == 201
    account = people["admin"].get("/api/v1/accounts/DELTA").get_json()
    assert (account["name"], account["tier"]) == ("Delta Group", "key")
    assert len(instances(people)) == 2


STALE = "the timestamp is more than 300 s from the server's clock"


@pytest.mark.parametrize("case, send, code, message", [
    ("no signature", dict(signature=""), "missing_signature", "the X-BPM-Signature header is missing"),
    ("wrong signature", dict(signature="sha256=" + "0" * 64), "bad_signature", "the signature does not match the body"),
    ("signed with another secret", dict(secret="not-the-secret"), "bad_signature",
     "the signature does not match the body"),
    ("stale timestamp", dict(timestamp=NOW - 301), "stale_timestamp", STALE),
    ("timestamp from the future", dict(timestamp=NOW + 301), "stale_timestamp", STALE),
    ("no timestamp", dict(headers={"X-BPM-Timestamp": ""}), "missing_timestamp",
     "the X-BPM-Timestamp header is missing"),
    ("timestamp not in unix seconds", dict(headers={"X-BPM-Timestamp": "2026-03-02T09:00:00+08:00"}),
     "bad_timestamp", "X-BPM-Timestamp must be unix seconds"),
])
def test_unauthenticated_deliveries_are_refused_and_change_nothing(people, case, send, code, message):
    response = deliver(people, contract_signed(), **send)
    assert response.status_code == 401, (case, response.get_json())
    # What the ERP's operator reads in their delivery log: the code for their program, the message for them.
    assert response.get_json()["error"] == {"code": code, "message": message}
    assert instances(people) == []
    assert people["admin"].get("/api/v1/accounts/DELTA").status_code == 404
    # The refusal itself is on record for auditors.
    rejected = log(people, outcome="rejected")
    assert [(e["status"], e["error"]) for e in rejected] == [("401", f"{code}: {message}")]


def test_timestamp_inside_the_window_is_accepted(people):
    assert deliver(people, contract_signed(), timestamp=NOW - 299).status_code == 201


@pytest.mark.parametrize("offset", [-300, 300], ids=["300 s old", "300 s ahead"])
def test_timestamp_exactly_at_the_edge_of_the_window_is_accepted(people, offset):
    """The window is 300 s either way, inclusive: 300 s is in, 301 s is out (above)."""
    response = deliver(people, contract_signed(), timestamp=NOW + offset)
    assert response.status_code == 201, response.get_json()
    assert len(instances(people)) == 1


def test_signature_covers_the_raw_body(people):
    signed_for = b'{"event_id": "EV-1"}'
    response = deliver(people, contract_signed(), signature=sign(WEBHOOK_SECRET, NOW, signed_for))
    assert response.status_code == 401 and instances(people) == []


# Known answers, computed outside Python (``printf '%s' '<timestamp>.<body>' | openssl dgst -sha256
# -hmac <secret>``), so neither the product's signer nor the tests' own can drift unnoticed.
KAT_BODY = '{"name":"客户"}'.encode()
KAT_VECTORS = [
    ("test-webhook-secret", "1700000000", KAT_BODY,
     "sha256=5c8c85b160019163697e53021bd28b2adfecdb21b4a776363a4d9a728209afa2"),
    ("test-webhook-secret", "1700000300", KAT_BODY,
     "sha256=24f39fc0cd3071c4eb8781e7427ee18278ae100bfd88e6d05356df2002926276"),
    ("kat-secret", "1772413200", b'{"event_id":"EV-KAT"}',
     "sha256=d26ae85a4648343d83b839fa349309576d8139b3a150f8996e4c0ecaeec28613"),
    ("kat-secret", "1772413200", b"",
     "sha256=b92684cd1186b07e80499c0271901965dda7e64b96f536716c4593695498b512"),
]


@pytest.mark.parametrize("secret, timestamp, body, expected", KAT_VECTORS)
def test_signatures_match_the_known_answers(secret, timestamp, body, expected):
    from integrations.signing import signature, signed_headers

    assert sign(secret, timestamp, body) == expected  # the tests' own signer
    assert signature(secret, timestamp, body) == expected  # the product's, for our outbound calls
    assert signed_headers(secret, int(timestamp), body)["X-BPM-Signature"] == expected


def test_webhook_accepts_the_known_answer_signature_and_only_for_its_timestamp(people, clock):
    clock.set(datetime.fromtimestamp(1700000000, UTC))
    secret, timestamp, body, expected = KAT_VECTORS[0]
    assert secret == WEBHOOK_SECRET
    # Signed right, so the body is read (and refused for what it lacks, not for its signature).
    accepted = deliver(people, body, timestamp=int(timestamp), signature=expected)
    assert accepted.status_code == 422 and accepted.get_json()["error"]["code"] == "invalid_event"
    # The same signature under a timestamp inside the window but not the one it was made for.
    moved = deliver(people, body, timestamp=int(timestamp) + 60, signature=expected)
    assert moved.status_code == 401 and moved.get_json()["error"]["code"] == "bad_signature"


def test_a_captured_delivery_cannot_be_restamped_past_the_replay_window(people, clock):
    body = contract_signed(event_id="EV-CAPTURED", contract_no="HT-CAP")
    raw = json.dumps(body).encode()
    captured = sign(WEBHOOK_SECRET, NOW, raw)
    assert deliver(people, raw, signature=captured).status_code == 201

    clock.set(START + timedelta(seconds=400))  # the captured stamp is now stale
    replayed = deliver(people, raw, timestamp=NOW, signature=captured)
    assert replayed.status_code == 401 and replayed.get_json()["error"]["code"] == "stale_timestamp"
    # An attacker puts a fresh timestamp beside the captured signature: it no longer matches.
    restamped = deliver(people, raw, timestamp=NOW + 400, signature=captured)
    assert restamped.status_code == 401, restamped.get_json()
    assert restamped.get_json()["error"]["code"] == "bad_signature"
    assert len(instances(people)) == 1
    rejected = log(people, outcome="rejected")
    assert [e["error"].split(":")[0] for e in rejected] == ["bad_signature", "stale_timestamp"]


def test_body_that_is_not_json(people):
    response = deliver(people, b"contract=HT-1&signed=yes")
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "invalid_json"
    assert response.get_json()["error"]["message"].startswith("the body is not JSON: Expecting value")
    not_utf8 = deliver(people, '{"event_id": "EV-1", "account": "客户"}'.encode("gb18030"))
    assert not_utf8.status_code == 422 and not_utf8.get_json()["error"]["code"] == "invalid_json"
    assert "utf-8" in not_utf8.get_json()["error"]["message"]
    array = deliver(people, b"[1, 2]")
    assert array.status_code == 422
    assert array.get_json()["error"] == {"code": "invalid_json", "message": "the body must be a JSON object"}
    assert instances(people) == []


def test_missing_fields_are_named(people):
    body = contract_signed()
    del body["signed_at"], body["contract_no"]
    body["account"] = {"id": "DELTA"}
    response = deliver(people, body)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid_event"
    assert set(error["details"]) == {"signed_at", "contract_no", "account"}
    assert set(error["details"]["account"]) == {"name", "tier"}
    # Every field at fault by its path, nested ones dotted, in order.
    assert error["message"] == "missing or invalid fields: account.name, account.tier, contract_no, signed_at"
    assert instances(people) == []


@pytest.mark.parametrize("changes, field", [
    ({"account": {"id": "DELTA", "name": "Delta", "tier": "platinum"}}, "account"),
    ({"signed_at": "yesterday"}, "signed_at"),
    ({"signed_at": "2026-03-02T09:00:00"}, "signed_at"),  # no offset: ambiguous
    ({"amount": -5}, "amount"),
    ({"currency": "yuan"}, "currency"),
])
def test_invalid_values_are_named(people, changes, field):
    response = deliver(people, contract_signed(**changes))
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["details"]
    assert instances(people) == []


def test_unknown_tier_message_lists_the_tiers(people):
    response = deliver(people, contract_signed(account={"id": "DELTA", "name": "Delta", "tier": "gold"}))
    assert "strategic" in str(response.get_json()["error"]["details"]["account"]["tier"])


def test_the_event_is_remembered_by_the_hash_of_its_canonical_json(people, synced_app):
    """Spelled out by hand: an ERP retries for hours, across our upgrades, and a retry must still match."""
    assert deliver(people, contract_signed(event_id="EV-HASH")).status_code == 201
    canonical = ('{"account":{"id":"DELTA","name":"DELTA Ltd","tier":"key"},"amount":120000.5,"contract_no":"HT-1",'
                 '"currency":"CNY","event_id":"EV-HASH","owner":"sales","signed_at":"2026-03-02T09:00:00+08:00"}')
    with synced_app.app_context():
        stored = db.session.get(ContractSignedEvent, "EV-HASH")
        assert stored is not None and stored.body_hash == hashlib.sha256(canonical.encode()).hexdigest()
        db.session.remove()


def test_event_id_reused_with_a_different_body_is_a_conflict(people):
    assert deliver(people, contract_signed(event_id="EV-7", contract_no="HT-7")).status_code == 201
    response = deliver(people, contract_signed(event_id="EV-7", contract_no="HT-8"))
    assert response.status_code == 409
    assert response.get_json()["error"] == {
        "code": "event_id_reused", "message": "event_id 'EV-7' was already delivered with a different body",
        "details": {"event_id": ["reused with a different body"]}}
    assert [i["account_id"] for i in instances(people)] == ["DELTA"]


def test_a_redelivery_with_other_key_order_and_spacing_is_the_same_event(people):
    """ERPs re-serialize on retry: the event is the parsed body, not its bytes."""
    body = contract_signed(event_id="EV-ORDER", contract_no="HT-ORDER")
    first = deliver(people, json.dumps(body).encode())
    assert first.status_code == 201, first.get_json()
    reordered = {key: body[key] for key in reversed(list(body))}
    reordered["account"] = {key: body["account"][key] for key in reversed(list(body["account"]))}
    raw = json.dumps(reordered, indent=2, ensure_ascii=False).encode()
    assert raw != json.dumps(body).encode()
    again = deliver(people, raw, timestamp=NOW + 30)
    assert again.status_code == 200, again.get_json()
    assert again.get_json() == first.get_json()
    assert len(instances(people)) == 1


def test_webhook_without_a_configured_secret_refuses_everything(people, synced_app):
    rt = synced_app.extensions["bpm"]
    rt.config = rt.config.but(erp_webhook_secret=None)
    response = deliver(people, contract_signed())
    assert response.status_code == 503
    assert response.get_json()["error"] == {
        "code": "webhook_not_configured",
        "message": "the ERP webhook is not configured on this server (BPM_ERP_WEBHOOK_SECRET)"}
    assert instances(people) == []


def test_webhook_is_documented_as_signed_not_bearer(synced_app):
    spec = synced_app.test_client().get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/hooks/erp/contract-signed"]["post"]
    assert operation["security"] == []
    assert {p["name"] for p in operation["parameters"]} >= {"X-BPM-Timestamp", "X-BPM-Signature"}


def test_two_identical_deliveries_at_the_same_moment_create_one_instance(people, backend):
    for round_no in range(3):
        body = contract_signed(event_id=f"EV-RACE-{round_no}", contract_no=f"HT-R{round_no}")
        barrier = threading.Barrier(2)
        answers: list = [None, None]

        def send(i: int, barrier: threading.Barrier = barrier, answers: list = answers, body: dict = body) -> None:
            barrier.wait()
            answers[i] = deliver(people, body)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        statuses = Counter(a.status_code for a in answers)
        assert statuses == Counter({201: 1, 200: 1}), [(a.status_code, a.get_json()) for a in answers]
        assert answers[0].get_json() == answers[1].get_json()
    assert len(instances(people)) == 3
