"""Escalation ladders as data.

A policy is a list of rules; each rule fires on an SLA event of a task and
lists actions. The policies file (``process_models/escalation-policies.json``,
loaded by ``models sync``) or ``PUT /api/v1/sla/policies/{name}`` defines them:

    {"policies": {"standard": [
        {"on": "warning", "actions": [{"notify": "assignee"}]},
        {"on": "breach", "actions": [{"notify": "assignee"}, {"notify": "department_lead"}]},
        {"on": "breach", "after": "1 working day",
         "actions": [{"reassign": "department_lead"}, {"raise_priority": 1}]}]},
     "default": "standard", "tiers": {"strategic": "strategic"}}

Rules with ``after`` fire that much working time after the breach, and only if
the task is still open then (multi-level escalation). A ladder is written once
and attached to many stages (``slaPolicy``), to a tier, or as the default.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bpm_server.accounts.models import TIERS
from bpm_server.sla.calendar import WorkingDuration, parse_working_duration

EVENTS = ("warning", "breach")
PERSON_TARGETS = ("assignee", "department_lead", "account_owner", "executive_sponsor")


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    level: int  # 1-based position in the ladder, shown in the breach log
    on: str
    after: WorkingDuration | None
    actions: tuple[dict[str, Any], ...]


def parse_rules(name: str, rules: Any, *, departments: set[str], usernames: set[str],
                process_models: set[str]) -> list[Rule]:
    """Validate one policy; ``PolicyError`` names the policy, the rule and the bad value."""
    if not isinstance(rules, list) or not rules:
        raise PolicyError(f"policy {name!r}: must be a non-empty list of rules")
    parsed = []
    for index, rule in enumerate(rules, start=1):
        where = f"policy {name!r} rule {index}"
        if not isinstance(rule, dict):
            raise PolicyError(f"{where}: must be an object with 'on' and 'actions'")
        unknown = set(rule) - {"on", "after", "actions"}
        if unknown:
            raise PolicyError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if rule.get("on") not in EVENTS:
            raise PolicyError(f"{where}: 'on' must be one of {', '.join(EVENTS)}, got {rule.get('on')!r}")
        after = None
        if "after" in rule:
            if rule["on"] != "breach":
                raise PolicyError(f"{where}: 'after' is only allowed on breach rules")
            try:
                after = parse_working_duration(str(rule["after"]))
            except ValueError as exc:
                raise PolicyError(f"{where}: {exc}") from None
        actions = rule.get("actions")
        if not isinstance(actions, list) or not actions:
            raise PolicyError(f"{where}: 'actions' must be a non-empty list")
        for action in actions:
            _check_action(where, action, departments, usernames, process_models)
        parsed.append(Rule(index, rule["on"], after, tuple(actions)))
    return parsed


def _check_action(where: str, action: Any, departments: set[str], usernames: set[str],
                  process_models: set[str]) -> None:
    if not isinstance(action, dict) or len(action) != 1:
        raise PolicyError(f"{where}: each action is an object with exactly one of "
                          f"notify, reassign, raise_priority, start_process; got {action!r}")
    verb, target = next(iter(action.items()))
    if verb in ("notify", "reassign"):
        allowed = PERSON_TARGETS if verb == "notify" else ("department_lead",)
        _check_target(where, verb, target, allowed, departments, usernames)
    elif verb == "raise_priority":
        if not isinstance(target, int) or isinstance(target, bool) or not 1 <= target <= 10:
            raise PolicyError(f"{where}: raise_priority takes a number from 1 to 10, got {target!r}")
    elif verb == "start_process":
        if target not in process_models:
            raise PolicyError(f"{where}: start_process names unknown process model {target!r}")
    else:
        raise PolicyError(f"{where}: unknown action {verb!r}; actions are notify, reassign, raise_priority, "
                          f"start_process")


def _check_target(where: str, verb: str, target: Any, allowed: Iterable[str], departments: set[str],
                  usernames: set[str]) -> None:
    if not isinstance(target, str):
        raise PolicyError(f"{where}: {verb} target must be a string, got {target!r}")
    if target in allowed:
        return
    kind, _, ref = target.partition(":")
    if kind == "department" and ref:
        if ref not in departments:
            raise PolicyError(f"{where}: {verb} names unknown department {ref!r}")
        return
    if kind == "user" and ref:
        if ref not in usernames:
            raise PolicyError(f"{where}: {verb} names unknown user {ref!r}")
        return
    raise PolicyError(f"{where}: {verb} target {target!r} is not one of {', '.join(allowed)}, "
                      f"department:<code> or user:<username>")


def parse_settings(document: dict[str, Any], policy_names: set[str]) -> dict[str, str]:
    """The ``default`` and ``tiers`` part of a policies file, as setting rows {key: policy}."""
    settings = {}
    default = document.get("default")
    if default is not None:
        if default not in policy_names:
            raise PolicyError(f"'default' names unknown policy {default!r}")
        settings["default"] = default
    tiers = document.get("tiers") or {}
    if not isinstance(tiers, dict):
        raise PolicyError("'tiers' must map a tier to a policy name")
    for tier, policy in tiers.items():
        if tier not in TIERS:
            raise PolicyError(f"'tiers' names unknown tier {tier!r}; tiers are {', '.join(TIERS)}")
        if policy not in policy_names:
            raise PolicyError(f"'tiers' maps {tier!r} to unknown policy {policy!r}")
        settings[f"tier:{tier}"] = policy
    return settings
