"""The small interface every adapter implements, and what a call comes back as."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class CallResult:
    """One attempt at the other side. ``ok`` False means worth retrying (or giving up)."""

    ok: bool
    endpoint: str  # where it went, secrets already removed (for the integration log)
    status: str  # HTTP status, "timeout", "refused", "error", "smtp 250", ...
    duration_ms: float
    request: Any = None  # what was sent (the log redacts it)
    response: Any = None  # the parsed answer, when there was one
    error: str | None = None


@dataclass(frozen=True)
class Notice:
    """What a notification channel delivers: one message for one person."""

    kind: str  # sla_warning, sla_breach, incident, ...
    title: str
    body: str
    username: str
    display_name: str
    department: str | None = None
    task_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class ServiceAdapter(Protocol):
    """An external system that BPMN service tasks call (operation ``<system>.<name>``)."""

    system: str

    def call(self, operation: str, params: Mapping[str, Any], *, idempotency_key: str,
             now: datetime) -> CallResult: ...


class Channel(Protocol):
    """A way to reach people: e-mail, a group robot, a webhook."""

    name: str
    kind: str

    def send(self, notice: Notice, *, now: datetime) -> CallResult: ...
