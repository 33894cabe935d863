"""SLA definitions as process owners write them in the BPMN, and their checks.

A user task declares its SLA with extension properties (spiffworkflow:properties):

    sla            "2 working days" | "4 working hours" | "30 working minutes"
    sla.<tier>     a tighter length for an account tier (strategic, key, standard)
    slaAnchor      task:created (default) | stage:<user task id> | data:<field>
    slaWarnAt      "80%" (default) : when the warning fires, as a share of the length
    slaPolicy      the escalation ladder for this stage (else the deployment default)
    slaPausable    "true" : the assignee may pause the clock while waiting on the customer

Besides that SLA (the stage's resolution clock), a stage may declare named clocks,
each with its own warning, breach entry and escalation ladder:

    slaClock.<name>.kind          response | resolution | ola | end_to_end
    slaClock.<name>.length        "1 working day" (and .length.<tier> for a tier)
    slaClock.<name>.warnAt        "80%" (default)
    slaClock.<name>.policy        its escalation ladder (else the deployment default)
    slaClock.<name>.department    ola only: the department whose holding time counts
                                  (default: the declaring stage's department)
    slaClock.<name>.from / .to    end_to_end only: starts when stage ``from`` becomes
                                  ready, stops when stage ``to`` completes

A response clock runs from ready to the first action (claim, transfer, comment);
a resolution clock from ready to completed; an ola clock runs, across the whole
instance, whenever a stage of its department is open; an end_to_end clock once
per instance between its two stages.

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


CLOCK_KINDS = ("response", "resolution", "ola", "end_to_end")
#: Clocks that belong to one stage (one per task) rather than to the whole instance.
STAGE_CLOCK_KINDS = ("response", "resolution")
CLOCK_PREFIX = "slaClock."
CLOCK_NAME_RE = re.compile(r"^[A-Za-z_][\w-]{0,49}$")
CLOCK_FIELDS = {"kind", "length", "warnAt", "policy", "department", "from", "to"}


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


@dataclass(frozen=True)
class ClockDefinition:
    """A named clock as declared on a stage (``slaClock.<name>.*``)."""
    name: str
    kind: str
    length: WorkingDuration
    tier_lengths: Mapping[str, WorkingDuration] = field(default_factory=dict)
    warn_fraction: float = 0.8
    policy: str | None = None
    department: str | None = None  # ola
    start_stage: str | None = None  # end_to_end: ``from``
    end_stage: str | None = None  # end_to_end: ``to``

    def length_for(self, tier: str | None) -> WorkingDuration:
        return self.tier_lengths.get(tier or "", self.length)


def parse_clocks(properties: Mapping[str, str]) -> list[ClockDefinition]:
    """The named clocks a stage declares, by name; ``SlaDefinitionError`` names the bad property."""
    grouped: dict[str, dict[str, str]] = {}
    for key, value in properties.items():
        if not key.startswith(CLOCK_PREFIX):
            continue
        name, _, rest = key[len(CLOCK_PREFIX):].partition(".")
        if not CLOCK_NAME_RE.match(name) or not rest:
            raise SlaDefinitionError(f"property {key!r}: write slaClock.<name>.<field>, the name in letters, "
                                     f"digits, '_' or '-'")
        grouped.setdefault(name, {})[rest] = value.strip()
    return [_clock(name, fields) for name, fields in sorted(grouped.items())]


def _clock(name: str, fields: Mapping[str, str]) -> ClockDefinition:
    where = f"{CLOCK_PREFIX}{name}"
    tiers = {}
    for key in sorted(fields):
        base, _, tier = key.partition(".")
        if base == "length" and tier:
            if tier not in TIERS:
                raise SlaDefinitionError(f"property '{where}.{key}': unknown tier {tier!r}; tiers are "
                                         f"{', '.join(TIERS)}")
            tiers[tier] = _duration(f"{where}.{key}", fields[key])
        elif key not in CLOCK_FIELDS:
            raise SlaDefinitionError(f"property '{where}.{key}': unknown field {key!r}; fields are "
                                     f"{', '.join(sorted(CLOCK_FIELDS))}")
    kind = fields.get("kind", "")
    if kind not in CLOCK_KINDS:
        raise SlaDefinitionError(f"property '{where}.kind': unknown clock kind {kind!r}; kinds are "
                                 f"{', '.join(CLOCK_KINDS)}")
    if "length" not in fields:
        raise SlaDefinitionError(f"clock {name!r}: '{where}.length' is missing")
    warn_text = fields.get("warnAt", "80%")
    match = WARN_RE.match(warn_text)
    if not match or not 1 <= int(match.group(1)) <= 100:
        raise SlaDefinitionError(f"property '{where}.warnAt' {warn_text!r} must be a percentage from 1% to 100%")
    for key, allowed in (("department", "ola"), ("from", "end_to_end"), ("to", "end_to_end")):
        if key in fields and kind != allowed:
            raise SlaDefinitionError(f"property '{where}.{key}': only an {allowed} clock takes {key!r}")
    if kind == "end_to_end" and not (fields.get("from") and fields.get("to")):
        raise SlaDefinitionError(f"clock {name!r}: an end_to_end clock needs '{where}.from' and '{where}.to' "
                                 f"(stage ids)")
    return ClockDefinition(name=name, kind=kind, length=_duration(f"{where}.length", fields["length"]),
                           tier_lengths=tiers, warn_fraction=int(match.group(1)) / 100,
                           policy=fields.get("policy") or None, department=fields.get("department") or None,
                           start_stage=fields.get("from") or None, end_stage=fields.get("to") or None)


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
    problems.extend(_clock_problems(tasks, names))
    return problems


def _clock_problems(tasks: list[Any], names: set[str]) -> list[tuple[str, str]]:
    """Named clocks: each parses, names stages that exist, and an instance-wide clock
    (ola, end_to_end) declared on several stages says the same everywhere."""
    problems = []
    seen: dict[str, tuple[str, ClockDefinition]] = {}
    for task in tasks:
        try:
            clocks = parse_clocks(task.properties)
        except SlaDefinitionError as exc:
            problems.append((task.name, f"SLA clock: {exc}"))
            continue
        for clock in clocks:
            for key, stage in (("from", clock.start_stage), ("to", clock.end_stage)):
                if stage is not None and stage not in names:
                    problems.append((task.name, f"SLA clock: '{CLOCK_PREFIX}{clock.name}.{key}' names stage "
                                                f"{stage!r}, which is not a user task of this process"))
            if clock.kind in STAGE_CLOCK_KINDS:
                continue
            first = seen.setdefault(clock.name, (task.name, clock))
            if first[1] != clock:
                problems.append((task.name, f"SLA clock: {clock.name!r} is declared differently on "
                                            f"{first[0]!r}; an instance-wide clock must say the same everywhere"))
    return problems
