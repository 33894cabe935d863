"""BPMN events over the HTTP API, on SQLite and PostgreSQL: event-based gateways (a message
against a timer, both orders), timer start events (durable rows, armed at publication,
re-armed per cycle, disarmed by a newer version), message start events (idempotent on
message_id) and signals (throw in one instance, catch in others and in the same one)."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from bpm_server.database import db
from bpm_server.runtime import fire_timer
from bpm_server.sla.models import Timer
from tests.conftest import START
from tests.support import move_clock, new_model

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def publish(people, app: Flask, model_id: str, fixture: str, *, create: bool = True) -> dict:
    if create:
        new_model(app, model_id)
    response = people["owner"].post(f"/api/v1/process-models/{model_id}/versions",
                                    data=(FIXTURES / fixture).read_bytes(), content_type="application/xml")
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def start(people, model_id: str, **data) -> dict:
    response = people["sales"].post("/api/v1/process-instances",
                                    json={"process_model_id": model_id, "account_id": "GAMMA", "data": data})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def instance(people, iid: str) -> dict:
    return people["admin"].get(f"/api/v1/process-instances/{iid}").get_json()


def open_tasks(people, iid: str) -> list[str]:
    return [t["name"] for t in instance(people, iid)["tasks"]]


def instances_of(people, model_id: str) -> list[dict]:
    body = people["admin"].get(f"/api/v1/process-instances?process_model_id={model_id}&per_page=100").get_json()
    return body["items"]


def complete(people, caller: str, iid: str, name: str) -> None:
    [task] = [t for t in instance(people, iid)["tasks"] if t["name"] == name]
    assert people[caller].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    response = people[caller].post(f"/api/v1/tasks/{task['id']}/complete", json={"data": {}})
    assert response.status_code == 200, response.get_json()


def message(people, name: str, message_id: str, correlation: dict | None = None, **payload):
    return people["erp"].post("/api/v1/messages", json={"name": name, "correlation": correlation or {},
                                                        "payload": payload, "message_id": message_id})


def start_timer_rows(app: Flask) -> list[Timer]:
    with app.app_context():
        rows = list(db.session.scalars(select(Timer).where(Timer.kind == "start_timer").order_by(Timer.due_at)))
        db.session.expunge_all()
        db.session.remove()
        return rows


# --------------------------------------------------------------------------- event-based gateway


def test_event_gateway_the_message_first_wins_and_the_timer_is_cancelled(people, synced_app: Flask) -> None:
    publish(people, synced_app, "race", "event_gateway_race.bpmn")
    iid = start(people, "race", quote_no="Q-1")["id"]
    waiting = instance(people, iid)["waiting_for"]
    assert {w["kind"] for w in waiting} >= {"message"}, waiting

    response = message(people, "purchase_order", "PO-1", {"quote_no": "Q-1"}, amount=12)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["process_instance_id"] == iid
    assert open_tasks(people, iid) == ["fulfil_order"]

    # The timer lost the race: three days later nothing else opens.
    move_clock(people["admin"], START + timedelta(days=4))
    assert open_tasks(people, iid) == ["fulfil_order"]
    complete(people, "delivery", iid, "fulfil_order")
    assert instance(people, iid)["state"] == "completed"


def test_event_gateway_the_timer_first_wins_and_the_message_is_refused(people, synced_app: Flask) -> None:
    publish(people, synced_app, "race", "event_gateway_race.bpmn")
    iid = start(people, "race", quote_no="Q-2")["id"]

    move_clock(people["admin"], START + timedelta(days=2, hours=23))
    assert open_tasks(people, iid) == []
    fired = move_clock(people["admin"], START + timedelta(days=3, minutes=1))
    assert fired["fired"] == 1
    assert open_tasks(people, iid) == ["chase_customer"]

    late = message(people, "purchase_order", "PO-2", {"quote_no": "Q-2"})
    assert late.status_code == 404 and late.get_json()["error"]["code"] == "no_waiting_instance"
    assert open_tasks(people, iid) == ["chase_customer"]
    complete(people, "sales", iid, "chase_customer")
    assert instance(people, iid)["state"] == "completed"


def test_event_gateway_a_timer_due_but_not_yet_fired_still_wins(people, synced_app: Flask) -> None:
    """The pump is a moment behind: a message arriving after the timer's moment, before it
    fired, loses the race, as it would have had the pump been on time."""
    publish(people, synced_app, "race", "event_gateway_race.bpmn")
    iid = start(people, "race", quote_no="Q-3")["id"]
    synced_app.extensions["bpm"].clock.set(START + timedelta(days=3, seconds=5))  # time passes, no firing

    late = message(people, "purchase_order", "PO-3", {"quote_no": "Q-3"})
    assert late.status_code == 404 and late.get_json()["error"]["code"] == "no_waiting_instance"
    move_clock(people["admin"], START + timedelta(days=3, seconds=6))
    assert open_tasks(people, iid) == ["chase_customer"]


# --------------------------------------------------------------------------- timer start events


def test_a_cycle_timer_start_event_starts_one_instance_per_firing(people, synced_app: Flask) -> None:
    publish(people, synced_app, "every-ten", "timer_start_cycle.bpmn")
    [armed] = start_timer_rows(synced_app)
    assert armed.due_at == START + timedelta(minutes=10) and armed.process_instance_id is None

    move_clock(people["admin"], START + timedelta(minutes=9))
    assert instances_of(people, "every-ten") == []
    move_clock(people["admin"], START + timedelta(minutes=10, seconds=1))
    [first] = instances_of(people, "every-ten")
    assert open_tasks(people, first["id"]) == ["review"] and first["account_id"] == "internal"

    # R3: two more firings, ten minutes apart, then none.
    move_clock(people["admin"], START + timedelta(hours=2))
    started = instances_of(people, "every-ten")
    assert len(started) == 3
    assert all(open_tasks(people, i["id"]) == ["review"] for i in started)
    rows = start_timer_rows(synced_app)
    assert [r.due_at - START for r in rows] == [timedelta(minutes=m) for m in (10, 20, 30)]
    assert all(r.fired_at is not None for r in rows)


@pytest.mark.parametrize(("timer", "firings"), [
    ('<bpmn:timeDate>"2026-03-03T09:00:00+08:00"</bpmn:timeDate>', [timedelta(days=1)]),
    ('<bpmn:timeDuration>"PT4H"</bpmn:timeDuration>', [timedelta(hours=4)]),
    ('<bpmn:timeCycle>"R/P1D"</bpmn:timeCycle>', [timedelta(days=d) for d in (1, 2, 3, 4)]),
])
def test_date_duration_and_endless_cycle_start_events(people, synced_app: Flask, timer, firings) -> None:
    new_model(synced_app, "scheduled")
    xml = (FIXTURES / "timer_start_cycle.bpmn").read_text().replace('<bpmn:timeCycle>"R3/PT10M"</bpmn:timeCycle>',
                                                                     timer)
    response = people["owner"].post("/api/v1/process-models/scheduled/versions", data=xml.encode(),
                                    content_type="application/xml")
    assert response.status_code == 201, response.get_json()
    move_clock(people["admin"], START + timedelta(days=4, minutes=1))
    assert len(instances_of(people, "scheduled")) == len(firings)
    fired = [r.due_at - START for r in start_timer_rows(synced_app) if r.fired_at is not None]
    assert fired == firings
    # Moving on past the last firing of a one-off timer starts nothing more.
    if len(firings) == 1:
        move_clock(people["admin"], START + timedelta(days=30))
        assert len(instances_of(people, "scheduled")) == 1


def test_a_timer_start_firing_handed_out_twice_starts_one_instance(people, synced_app: Flask) -> None:
    publish(people, synced_app, "every-ten", "timer_start_cycle.bpmn")
    [armed] = start_timer_rows(synced_app)
    rt = synced_app.extensions["bpm"]
    rt.clock.set(armed.due_at)
    outcomes = []
    for _ in range(2):
        with synced_app.app_context():
            outcomes.append(fire_timer(db.session, rt, armed.id, rt.clock.now()))
            db.session.commit()
            db.session.remove()
    assert outcomes[0].startswith("started every-ten") and outcomes[1] == "already fired or cancelled"
    assert len(instances_of(people, "every-ten")) == 1


def test_a_newer_version_disarms_the_old_timer_start(people, synced_app: Flask) -> None:
    publish(people, synced_app, "every-ten", "timer_start_cycle.bpmn")
    move_clock(people["admin"], START + timedelta(minutes=10, seconds=1))
    assert len(instances_of(people, "every-ten")) == 1
    # Version 2 starts by hand only: the pending firing of version 1 is cancelled.
    xml = (FIXTURES / "timer_start_cycle.bpmn").read_text()
    plain = xml[:xml.index("<bpmn:timerEventDefinition")] + xml[xml.index("</bpmn:timerEventDefinition>") + 29:]
    response = people["owner"].post("/api/v1/process-models/every-ten/versions", data=plain.encode(),
                                    content_type="application/xml")
    assert response.status_code == 201, response.get_json()
    pending = [r for r in start_timer_rows(synced_app) if r.fired_at is None]
    assert pending and all(r.cancelled_at is not None for r in pending)
    move_clock(people["admin"], START + timedelta(hours=1))
    assert len(instances_of(people, "every-ten")) == 1


def test_a_timer_start_event_that_cannot_be_armed_is_refused_at_upload(people, synced_app: Flask) -> None:
    new_model(synced_app, "bad-cycle")
    xml = (FIXTURES / "timer_start_cycle.bpmn").read_text().replace('"R3/PT10M"', '"every ten minutes"')
    response = people["owner"].post("/api/v1/process-models/bad-cycle/versions", data=xml.encode(),
                                    content_type="application/xml")
    assert response.status_code == 422
    [problem] = response.get_json()["error"]["details"]["problems"]
    assert problem["element_id"] == "every_ten_minutes" and "every ten minutes" in problem["message"]
    assert start_timer_rows(synced_app) == []


# --------------------------------------------------------------------------- message start events


def test_a_message_start_event_starts_an_instance_once_per_message_id(people, synced_app: Flask) -> None:
    publish(people, synced_app, "requests", "message_start.bpmn")
    first = message(people, "service_request", "REQ-1", {"account_id": "ACME"}, topic="VPN down")
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["duplicate"] is False and body["element_id"] == "request_received"
    detail = instance(people, body["process_instance_id"])
    assert detail["account_id"] == "ACME" and [t["name"] for t in detail["tasks"]] == ["answer_request"]

    again = message(people, "service_request", "REQ-1", {"account_id": "ACME"}, topic="VPN down")
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert again.get_json()["process_instance_id"] == body["process_instance_id"]
    assert len(instances_of(people, "requests")) == 1

    other = message(people, "service_request", "REQ-2", {"account_id": "ACME"}, topic="printer")
    assert other.status_code == 200 and other.get_json()["process_instance_id"] != body["process_instance_id"]
    assert len(instances_of(people, "requests")) == 2


def test_a_message_nobody_starts_on_is_still_404(people, synced_app: Flask) -> None:
    publish(people, synced_app, "requests", "message_start.bpmn")
    response = message(people, "no_such_message", "X-1")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "no_waiting_instance"
    unknown = message(people, "service_request", "X-2", {"account_id": "NOPE"})
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "unknown_account"
    assert instances_of(people, "requests") == []


# --------------------------------------------------------------------------- signals


def test_a_signal_reaches_other_instances_and_the_thrower_itself(people, synced_app: Flask) -> None:
    publish(people, synced_app, "freeze", "signal_throw.bpmn")
    publish(people, synced_app, "delivery", "signal_catch.bpmn")
    catchers = [start(people, "delivery")["id"] for _ in range(2)]
    thrower = start(people, "freeze")["id"]
    assert open_tasks(people, thrower) == ["decide_freeze"]
    assert all(open_tasks(people, c) == ["deliver"] for c in catchers)
    assert [(w["kind"], w["element_id"], w["name"]) for w in instance(people, catchers[0])["waiting_for"]] == [
        ("signal", "frozen", "account_frozen")]
    # Signals are thrown by instances, not posted as messages.
    posed = message(people, "signal:account_frozen", "S-1")
    assert posed.status_code == 422 and posed.get_json()["error"]["code"] == "reserved_message_name"

    complete(people, "finance", thrower, "decide_freeze")

    assert open_tasks(people, thrower) == ["tell_customer"]  # its own catch event
    for catcher in catchers:  # the boundary event interrupted the delivery
        assert open_tasks(people, catcher) == ["pause_delivery"]
        assert instance(people, catcher)["waiting_for"] == []
    complete(people, "sales", thrower, "tell_customer")
    assert instance(people, thrower)["state"] == "completed"
