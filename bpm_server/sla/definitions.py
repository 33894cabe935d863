"""SLA definitions as process owners write them in the BPMN, and their checks.

A user task declares its SLA with extension properties (spiffworkflow:properties):

    sla            "2 working days" | "4 working hours" | "30 working minutes"
    sla.<tier>     a tighter length for an account tier (strategic, key, standard)
    slaAnchor      task:created (default) | stage:<user task id> | data:<field>
    slaWarnAt      "80%" (default) : when the warning fires, as a share of the length
    slaPolicy      the escalation ladder for this stage (else the deployment default)
    slaPausable    "true" : the assignee may pause the clock while waiting on the customer

Everything is checked at upload, and every problem names the element.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bpm_server.accounts.models import TIERS
from bpm_server.sla.calendar import WorkingDuration, parse_working_duration

ANCHOR_RE = re.compile(r"^(task:created|stage:[A-Za-z_][\w.-]*|data:[A-Za-z_]\w*)$")
WARN_RE = re.compile(r"^\s*(\d{1,3})\s*%\s*$")
SLA_KEYS = {"sla", "slaAnchor", "slaWarnAt", "slaPolicy", "slaPausable"}


class SlaDefinitionError(ValueError):
    pass


@dataclass(frozen=True)
class SlaDefinition:
    length: WorkingDuration
    tier_lengths: Mapping[str, WorkingDuration] = field(default_factory=dict)
    anchor: str = "task:created"
    warn_fraction: float = 0.8
    policy: str | None = None
    pausable: bool = False

    def length_for(self, tier: str | None) -> WorkingDuration:
        return self.tier_lengths.get(tier or "", self.length)

    @property
    def anchor_kind(self) -> str:
        return self.anchor.split(":", 1)[0]

    @property
    def anchor_ref(self) -> str:
        return self.anchor.split(":", 1)[1]


def parse(properties: Mapping[str, str]) -> SlaDefinition | None:
    """The task's SLA, None when it declares none; ``SlaDefinitionError`` names the bad property."""
    tier_keys = {k for k in properties if k.startswith("sla.")}
    if "sla" not in properties:
        stray = sorted((SLA_KEYS - {"sla"} | tier_keys) & set(properties))
        if stray:
            raise SlaDefinitionError(f"{', '.join(stray)} given without an 'sla' length")
        return None
    length = _duration("sla", properties["sla"])
    tiers = {}
    for key in sorted(tier_keys):
        tier = key.split(".", 1)[1]
        if tier not in TIERS:
            raise SlaDefinitionError(f"property {key!r}: unknown tier {tier!r}; tiers are {', '.join(TIERS)}")
        tiers[tier] = _duration(key, properties[key])
    anchor = properties.get("slaAnchor", "task:created").strip()
    if not ANCHOR_RE.match(anchor):
        raise SlaDefinitionError(f"slaAnchor {anchor!r} is not task:created, stage:<task id> or data:<field>")
    warn_text = properties.get("slaWarnAt", "80%")
    match = WARN_RE.match(warn_text)
    if not match or not 1 <= int(match.group(1)) <= 100:
        raise SlaDefinitionError(f"slaWarnAt {warn_text!r} must be a percentage from 1% to 100%, e.g. '80%'")
    pausable = properties.get("slaPausable", "false").strip().lower()
    if pausable not in ("true", "false"):
        raise SlaDefinitionError(f"slaPausable {pausable!r} must be 'true' or 'false'")
    return SlaDefinition(length=length, tier_lengths=tiers, anchor=anchor, warn_fraction=int(match.group(1)) / 100,
                         policy=(properties.get("slaPolicy") or "").strip() or None, pausable=pausable == "true")


def _duration(key: str, text: str) -> WorkingDuration:
    try:
        return parse_working_duration(text)
    except ValueError as exc:
        raise SlaDefinitionError(f"property {key!r}: {exc}") from None


def problems_for_model(human_tasks: Iterable[Any], data_fields: set[str]) -> list[tuple[str, str]]:
    """(element id, message) for every SLA problem in a model's user tasks.

    ``data_fields`` are the fields the process data can hold (its forms' fields),
    so a data anchor that names none of them is caught at upload."""
    tasks = list(human_tasks)
    names = {t.name for t in tasks}
    problems = []
    for task in tasks:
        try:
            definition = parse(task.properties)
        except SlaDefinitionError as exc:
            problems.append((task.name, f"SLA: {exc}"))
            continue
        if definition is None:
            continue
        if definition.anchor_kind == "stage" and definition.anchor_ref not in names:
            problems.append((task.name, f"SLA: slaAnchor names stage {definition.anchor_ref!r}, "
                                        f"which is not a user task of this process"))
        if definition.anchor_kind == "stage" and definition.anchor_ref == task.name:
            problems.append((task.name, "SLA: a stage cannot be anchored on its own completion"))
        if definition.anchor_kind == "data" and definition.anchor_ref not in data_fields:
            problems.append((task.name, f"SLA: slaAnchor names data field {definition.anchor_ref!r}, which no "
                                        f"form of this process (start form included) declares"))
    return problems
