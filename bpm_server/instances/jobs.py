"""Background work on instances. Thin: take ids, call the service."""
from __future__ import annotations

from bpm_server.extensions import db_session, runtime
from bpm_server.instances import service


def advance(instance_id: str) -> str:
    """Run what became runnable (due timers, scripts) for one instance."""
    session = db_session()
    instance = service.lock_instance(session, instance_id)
    service.advance_instance(session, runtime(), instance, runtime().clock.now())
    return instance.state
