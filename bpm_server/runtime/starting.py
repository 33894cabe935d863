"""Starting an instance: of a model's current version for an account, or of a given version
(a message or timer start event, with what its start event is handed first).

Its own module so that the commands and the account evaluation (``runtime.accounts``),
which the commands' timer dispatch calls, both start instances without importing each other.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bpm_server.accounts.models import Account
from bpm_server.accounts.service import get_account
from bpm_server.audit.service import record as audit
from bpm_server.engine.adapter import EngineError, Run
from bpm_server.extensions import Deployment
from bpm_server.instances import service as instances
from bpm_server.instances.models import ProcessInstance
from bpm_server.modeling.management import check_startable
from bpm_server.modeling.models import ProcessModelVersion
from bpm_server.modeling.service import callee_resolver, compiled, current_version
from bpm_server.runtime.step import Before, run_step


def start_instance(session: Session, rt: Deployment, *, process_model_id: str, account_id: str,
                   data: Mapping[str, Any], now: datetime, started_by: str | None) -> ProcessInstance:
    """Start the current version of a model for an account and run it to its first wait."""
    check_startable(session, process_model_id)
    version = current_version(session, process_model_id)
    account = get_account(session, account_id)
    instances.check_start_data(version, compiled(version), data)
    return start_version(session, rt, version, account, data, now=now, started_by=started_by)


def start_version(session: Session, rt: Deployment, version: ProcessModelVersion, account: Account,
                  data: Mapping[str, Any], *, now: datetime, started_by: str | None,
                  fired_start: str | None = None, action: Callable[[Run], None] | None = None) -> ProcessInstance:
    """Create the instance and run it to its first wait (``action``: what the start event
    is handed first, e.g. the message that started it)."""
    model = compiled(version)
    instance = instances.new_instance(session, version, account, now=now, started_by=started_by)
    audit(session, actor=started_by or "system", action="instance.start", object_type="process_instance",
          object_id=instance.id, now=now, process_model_id=version.process_model_id, version=version.version,
          account_id=account.id, **({"start_event": fired_start} if fired_start else {}))
    try:
        run = Run.start(model, rt.evaluator, instances.start_data(account, data),  # type: ignore[arg-type]
                        fired_start=fired_start, resolver=callee_resolver(session))
    except EngineError as exc:
        # The diagram failed before its first wait: keep the instance, in error, so
        # the incident is visible instead of a lost start.
        instances.record_error(instance, exc, now, engine_state="{}")
        instance.data = instances.json_safe(instances.start_data(account, data))  # what a retry starts from
        session.flush()
        return instance
    run_step(session, rt, instance, model, run, Before(), action, now)
    return instance
