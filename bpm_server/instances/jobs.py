"""Background work on instances. Thin: take ids, call the runtime."""
from __future__ import annotations

from bpm_server import runtime
from bpm_server.extensions import db_session, deployment


def advance(instance_id: str) -> str:
    """Run what became runnable (due timers, scripts) for one instance."""
    rt = deployment()
    return runtime.advance(db_session(), rt, instance_id, rt.clock.now()).state
