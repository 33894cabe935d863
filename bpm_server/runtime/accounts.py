"""Account commands: evaluate the rules and start what they asked for.

The accounts package decides (``rules.evaluate`` records firings and the health row);
starting the processes those firings name is a runtime command, so it lives here, with
the once-a-day evaluation over every account and its durable timer (``sla.daily``).
Entry points (the signal route, the evaluate route, the CLI, the demo) call these.
"""
from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy.orm import Session

from bpm_server.accounts import rules
from bpm_server.accounts.models import Account, AccountSetting, RuleFiring
from bpm_server.accounts.service import list_accounts
from bpm_server.errors import AppError
from bpm_server.extensions import Deployment
from bpm_server.runtime.starting import start_instance
from bpm_server.sla import daily as daily_timer
from bpm_server.sla.models import Timer

log = logging.getLogger(__name__)
DAILY_KEY = "daily_evaluation"


def local_day(rt: Deployment, now: datetime) -> date:
    """The business calendar's day at ``now`` (the day health rows and evaluations count by)."""
    return now.astimezone(rt.calendar.time_zone).date()


def start_firings(session: Session, rt: Deployment, fired: list[RuleFiring], now: datetime) -> None:
    """Start each firing's process; a start that fails is recorded on the firing, the others go on."""
    for firing in fired:
        data = rules.start_data(session, firing, local_day(rt, now))
        try:
            with session.begin_nested():  # a failed start leaves no half-written instance
                instance = start_instance(session, rt, process_model_id=firing.process_model_id,
                                          account_id=firing.account_id, data=data, now=now,
                                          started_by=f"rule:{firing.rule_id}")
            rules.mark_started(firing, instance.id)
        except AppError as exc:
            log.warning("rule %s for account %s could not start %s: %s", firing.rule_id, firing.account_id,
                        firing.process_model_id, exc)
            rules.mark_failed(firing, f"{exc.code}: {exc}")
    session.flush()


def evaluate_account(session: Session, rt: Deployment, account: Account, trigger: str, now: datetime,
                     *, run_rules: bool = True) -> list[RuleFiring]:
    """Keep the account's health row for today and (``run_rules``) start what its rules fire."""
    fired = rules.evaluate(session, account, evaluator=rt.evaluator, day=local_day(rt, now), trigger=trigger,
                           now=now, run_rules=run_rules)
    start_firings(session, rt, fired, now)
    return fired


def evaluate_daily(session: Session, rt: Deployment, now: datetime, *, force: bool = False) -> str:
    """Once a day: every account's health row; on working days also the rules. A second run
    on the same day does nothing unless ``force``."""
    day = local_day(rt, now)
    marker = session.get(AccountSetting, DAILY_KEY)
    if marker is not None and marker.value.get("day") == day.isoformat() and not force:
        return f"already evaluated on {day}"
    working = rt.calendar.is_working_day(day)
    fired = 0
    for account in list_accounts(session):
        fired += len(evaluate_account(session, rt, account, "daily", now, run_rules=working))
    if marker is None:
        marker = AccountSetting(key=DAILY_KEY, value={}, updated_by="system", updated_at=now)
        session.add(marker)
    marker.value, marker.updated_at = {"day": day.isoformat()}, now
    session.flush()
    return f"{day}: health kept" + (f", rules evaluated, {fired} fired" if working else " (not a working day)")


def fire_daily(session: Session, rt: Deployment, timer: Timer, now: datetime) -> str:
    """The daily timer fired (already claimed): arm the next day's, then evaluate (once a day,
    whoever else ran it today). Switched off since it was armed: nothing runs, nothing is armed."""
    at = rt.config.accounts_daily_at
    if at is None:
        return "the daily evaluation is switched off (BPM_ACCOUNTS_DAILY_AT=off)"
    daily_timer.arm(session, at, rt.calendar.time_zone, now)
    return evaluate_daily(session, rt, now)
