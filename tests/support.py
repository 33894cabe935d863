"""Helpers shared by test modules (plain functions; fixtures live in conftest.py).

The signer here is the test suite's own, written from the ERP contract
(HMAC-SHA256 over ``<timestamp>.<raw body>``, hex, prefixed ``sha256=``) with
nothing but :mod:`hmac`: signing test deliveries with the product's own
``integrations.signing`` would make a wrong scheme agree with itself.
"""
from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import datetime
from typing import Any


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-BPM-Signature`` value the ERP sends for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_by(secret: str, headers, body: bytes) -> bool:
    """Whether a request we received carries a valid signature of its timestamp and body."""
    return hmac.compare_digest(sign(secret, headers["X-BPM-Timestamp"], body), headers["X-BPM-Signature"])


def at(iso: str) -> datetime:
    """A moment written as ISO 8601 with its offset, e.g. ``at("2026-03-02T09:00:00+08:00")``."""
    return datetime.fromisoformat(iso)


def move_clock(caller: Any, when: datetime | str) -> dict:
    """Move the deployment's test clock (``POST /api/v1/test/clock``), firing what falls due on the way."""
    iso = when if isinstance(when, str) else when.isoformat()
    response = caller.post("/api/v1/test/clock", json={"now": iso})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def page_client(app: Any, username: str) -> Any:
    """A browser session for ``username``, signed in as the login page does (a server-side session)."""
    from sqlalchemy import select

    from bpm_server.database import db
    from bpm_server.identity.models import User
    from bpm_server.identity.service import start_web_session

    with app.app_context():
        user = db.session.scalars(select(User).where(User.username == username)).one()
        user_id = user.id
        session_id = start_web_session(db.session, user, now=app.extensions["bpm"].clock.now())
        db.session.commit()
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["user_id"], cookie["sid"] = user_id, session_id
    return client


def new_model(app: Any, model_id: str, name: str | None = None) -> None:
    """An empty process model, ready for ``POST /process-models/{id}/versions``."""
    from bpm_server.database import db
    from bpm_server.modeling.models import ProcessModel

    with app.app_context():
        db.session.add(ProcessModel(id=model_id, name=name or model_id, description="",
                                    created_at=app.extensions["bpm"].clock.now()))
        db.session.commit()


def at_once(*calls: Any) -> list[Any]:
    """Run each call in a thread of its own, all released together (a barrier), as two
    workers racing for the same rows; returns their results in the order they finished.
    Fails if one hangs or raises."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(call: Any) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(call())
        except BaseException as exc:  # reported below, with the other threads' outcomes
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert not errors, errors
    return results
