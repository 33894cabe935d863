"""Account rules: DMN decision tables, versioned and audited like models, that
decide from an account's facts which process to start.

A rule's table outputs ``process_model_id`` (the model to start) and
``priority``. Evaluating records a ``RuleFiring`` (with the facts) for every
rule that matches, at most one open per account and rule; the runtime
(``bpm_server.runtime.accounts``) then starts the processes.
"""
from __future__ import annotations

import ast
import logging
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bpm_server.accounts import health as health_service
from bpm_server.accounts import signals, tiers
from bpm_server.accounts.defaults import DEFAULT_RULES, table_xml
from bpm_server.accounts.models import Account, AccountRuleVersion, RuleFiring
from bpm_server.accounts.service import TIER_REVIEW_MODEL
from bpm_server.audit import service as audit
from bpm_server.engine.compiler import BpmnInvalid
from bpm_server.engine.decisions import DecisionFailed, Table, check_table, decide, input_values
from bpm_server.errors import Invalid, NotFound
from bpm_server.instances.models import ProcessInstance
from bpm_server.modeling.models import ProcessModel

log = logging.getLogger(__name__)
OPEN_STATES = ("running", "error")  # an intervention still under way (or stuck, waiting for a person)
RULE_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


def _invalid_table(message: str, problems: list[dict[str, Any]]) -> Invalid:
    return Invalid(message, code="invalid_rule", details={"problems": problems})


def check_rule(session: Session, rule_id: str, xml: bytes, *, need_models: bool = True) -> Table:
    """The checked table, or 422 listing each problem by DMN element."""
    try:
        table = check_table(f"{rule_id}.dmn", xml)
    except BpmnInvalid as exc:
        raise _invalid_table("the rule's decision table has problems",
                             [p.as_dict() for p in exc.problems]) from None
    if "process_model_id" not in table.outputs:
        raise _invalid_table("the rule's table names no process model: it needs an output named "
                             "'process_model_id'", [{"element_id": None, "message": "no output 'process_model_id'"}])
    column = table.outputs.index("process_model_id")
    problems = []
    for row, entries in enumerate(table.output_entries, start=1):
        named = _literal(entries[column])
        if not isinstance(named, str) or not named:
            problems.append({"element_id": f"row {row}", "message": f"row {row}: process_model_id must be a "
                                                                     f"quoted model id, not {entries[column]!r}"})
        elif need_models and session.get(ProcessModel, named) is None:
            problems.append({"element_id": f"row {row}", "message": f"row {row}: no process model {named!r}"})
    if problems:
        raise _invalid_table("the rule's table names no process model in some rows", problems)
    return table


def _literal(text: str | None) -> Any:
    try:
        return ast.literal_eval(text) if text else None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def add_version(session: Session, rule_id: str, xml: bytes, *, name: str | None, actor: str, now: datetime,
                need_models: bool = True) -> AccountRuleVersion:
    """A new current version of a rule (a new rule at version 1)."""
    if not rule_id or len(rule_id) > 100 or not set(rule_id) <= RULE_ID_CHARS:
        raise Invalid("a rule id is lower-case letters, digits, '-' and '_'", code="invalid_rule_id",
                      details={"rule_id": ["lower-case letters, digits, '-' and '_' only"]})
    table = check_rule(session, rule_id, xml, need_models=need_models)
    latest = session.scalar(select(func.max(AccountRuleVersion.version)).where(AccountRuleVersion.rule_id == rule_id))
    version = AccountRuleVersion(rule_id=rule_id, version=(latest or 0) + 1, name=name or table.name or rule_id,
                                 dmn=xml, active=True, created_by=actor, created_at=now)
    session.add(version)
    session.flush()
    audit.record(session, actor=actor, action="account.rule_version", object_type="account_rule", object_id=rule_id,
                 now=now, version=version.version, name=version.name)
    return version


def set_active(session: Session, rule_id: str, active: bool, *, actor: str, now: datetime) -> AccountRuleVersion:
    version = current_version(session, rule_id)
    version.active = active
    audit.record(session, actor=actor, action="account.rule_active", object_type="account_rule", object_id=rule_id,
                 now=now, version=version.version, active=active)
    session.flush()
    return version


def ensure_defaults(session: Session, now: datetime) -> None:
    """Install the shipped rules that were never installed (their process models may come later)."""
    known = set(session.scalars(select(AccountRuleVersion.rule_id).distinct()))
    for rule in DEFAULT_RULES:
        if rule.id not in known:
            add_version(session, rule.id, table_xml(rule), name=rule.name, actor="system", now=now,
                        need_models=False)


def current_version(session: Session, rule_id: str) -> AccountRuleVersion:
    version = session.scalar(select(AccountRuleVersion).where(AccountRuleVersion.rule_id == rule_id)
                             .order_by(AccountRuleVersion.version.desc()).limit(1))
    if version is None:
        raise NotFound(f"rule {rule_id!r} does not exist", code="unknown_rule")
    return version


def current_versions(session: Session) -> list[AccountRuleVersion]:
    newest = (select(AccountRuleVersion.rule_id, func.max(AccountRuleVersion.version).label("version"))
              .group_by(AccountRuleVersion.rule_id).subquery())
    query = select(AccountRuleVersion).join(newest, (AccountRuleVersion.rule_id == newest.c.rule_id)
                                            & (AccountRuleVersion.version == newest.c.version))
    return list(session.scalars(query.order_by(AccountRuleVersion.rule_id)))


def versions(session: Session, rule_id: str) -> list[AccountRuleVersion]:
    return list(session.scalars(select(AccountRuleVersion).where(AccountRuleVersion.rule_id == rule_id)
                                .order_by(AccountRuleVersion.version.desc())))


# --------------------------------------------------------------------------- evaluation


def evaluate(session: Session, account: Account, *, evaluator: Any, day: date, trigger: str,
             now: datetime, run_rules: bool = True) -> list[RuleFiring]:
    """Recompute the account's health (today's row) and evaluate every active rule; the new
    firings, pending (the caller starts their processes)."""
    ensure_defaults(session, now)
    facts = signals.facts(session, account, now)
    score, components = health_service.health(facts, health_service.setting(session, "health_weights"))
    health_service.keep_snapshot(session, account, day, score, components, now)
    facts["health_score"] = 100.0 if score is None else score  # no data, no alarm
    fired: list[RuleFiring] = []
    for version in current_versions(session) if run_rules else []:
        if not version.active:
            continue
        try:
            table = check_table(f"{version.rule_id}.dmn", version.dmn)
            matches = decide(table, facts, evaluator)
            inputs = input_values(table, facts, evaluator) if matches else []
        except (DecisionFailed, BpmnInvalid) as exc:
            log.warning("account %s: rule %s v%s could not be evaluated: %s", account.id, version.rule_id,
                        version.version, exc)
            continue
        if not matches or _suppressed(session, account.id, version.rule_id, inputs):
            continue
        output = matches[0]
        firing = RuleFiring(account_id=account.id, rule_id=version.rule_id, rule_version=version.version,
                            process_model_id=str(output.get("process_model_id")),
                            priority=str(output.get("priority") or "normal"), facts=_plain(facts),
                            inputs=_plain(inputs), trigger=trigger, fired_at=now, outcome="pending")
        session.add(firing)
        fired.append(firing)
    session.flush()
    return fired


def start_data(session: Session, firing: RuleFiring, day: date) -> dict[str, Any]:
    """What a firing's process starts with: the account, the rule and its facts; a tier
    review also the value matrix's suggested tier (``tiers.suggestion``)."""
    data: dict[str, Any] = {"account_id": firing.account_id, "trigger": {"rule": firing.rule_id,
                                                                         "facts": firing.facts}}
    if firing.process_model_id == TIER_REVIEW_MODEL:
        account = session.get_one(Account, firing.account_id)
        data.update(tiers.suggestion(session, account, day, why=tiers.rule_reason(firing.rule_id, firing.facts)))
    return data


def _suppressed(session: Session, account_id: str, rule_id: str, inputs: list[Any]) -> bool:
    """One open intervention per account and rule; and the same inputs never fire twice."""
    last = session.scalar(select(RuleFiring).where(RuleFiring.account_id == account_id, RuleFiring.rule_id == rule_id)
                          .order_by(RuleFiring.id.desc()).limit(1))
    if last is None:
        return False
    if last.inputs == _plain(inputs):
        return True
    if last.outcome == "pending":
        return True
    if last.outcome == "started" and last.process_instance_id:
        instance = session.get(ProcessInstance, last.process_instance_id)
        return instance is not None and instance.state in OPEN_STATES
    return False


def _plain(value: Any) -> Any:
    """JSON-ready copy (the facts hold floats, strings and lists only)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def firings(session: Session, account_id: str | None = None, limit: int = 100) -> list[RuleFiring]:
    query = select(RuleFiring)
    if account_id:
        query = query.where(RuleFiring.account_id == account_id)
    return list(session.scalars(query.order_by(RuleFiring.id.desc()).limit(limit)))


def mark_started(firing: RuleFiring, instance_id: str) -> None:
    firing.outcome, firing.process_instance_id = "started", instance_id


def mark_failed(firing: RuleFiring, reason: str) -> None:
    firing.outcome, firing.error = "failed", reason[:2000]
