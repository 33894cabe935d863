"""Signed checkpoints of the breach log's head, kept outside the database.

The hash chain shows an edited or removed entry in the middle, and the head row
shows entries cut from the end. Someone who can write to the database can also
rewind the head row, though: then the shortened chain is consistent with
itself. A checkpoint (entry count, that entry's hash, when) signed with a
deployment key and kept by the admin outside the database closes that gap: a
later check finds the log shorter than a checkpoint saw it, or a different
entry at the checkpoint's position, and a forged checkpoint fails its
signature.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bpm_server.errors import Conflict, Invalid
from bpm_server.sla import breaches
from bpm_server.sla.models import BreachEntry

FORMAT = "bpm-breach-checkpoint/1"


def signing_key(checkpoint_key: str | None, secret_key: str) -> bytes:
    """The deployment's checkpoint key; derived from the secret key when none is set,
    so a checkpoint of one deployment never verifies against another's log."""
    if checkpoint_key:
        return checkpoint_key.encode()
    return hmac.new(secret_key.encode(), b"breach-log-checkpoint", hashlib.sha256).digest()


def _signature(key: bytes, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def make(session: Session, key: bytes, now: datetime) -> dict[str, Any]:
    """A signed checkpoint of the log as it is now; refused while the chain is broken,
    because signing a broken chain would make the breakage look endorsed."""
    status = breaches.verify(session)
    if not status.intact:
        raise Conflict(f"the breach log is broken at entry {status.first_broken_seq}: {status.reason}; "
                       "no checkpoint signed", code="breach_log_broken")
    body = {"format": FORMAT, "entries": status.entries, "hash": status.last_hash, "at": now.isoformat()}
    return {**body, "signature": _signature(key, body)}


@dataclass(frozen=True)
class CheckpointResult:
    ok: bool
    checked: int  # checkpoints compared with the log
    reason: str | None = None


def parse_lines(text: str) -> list[dict[str, Any]]:
    """A checkpoint file: one JSON checkpoint per line, as ``audit checkpoint --out`` appends them."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise Invalid(f"line {number}: not JSON ({exc})") from exc
        if not isinstance(value, dict) or value.get("format") != FORMAT:
            raise Invalid(f"line {number}: not a breach-log checkpoint ({FORMAT})")
        found.append(value)
    if not found:
        raise Invalid("the file holds no checkpoint")
    return found


def check(session: Session, key: bytes, checkpoints: list[dict[str, Any]]) -> CheckpointResult:
    """Compare every checkpoint with the log: its signature, then the entry at its position."""
    count = session.scalar(select(func.count()).select_from(BreachEntry)) or 0
    for number, point in enumerate(checkpoints, start=1):
        body = {name: point.get(name) for name in ("format", "entries", "hash", "at")}
        signature = point.get("signature")
        if not isinstance(signature, str) or not hmac.compare_digest(signature, _signature(key, body)):
            return CheckpointResult(False, number - 1, f"checkpoint {number} (of {body['at']}) has a wrong "
                                    "signature: it was not made with this deployment's key, or was altered")
        entries = body["entries"]
        if not isinstance(entries, int) or entries < 0:
            return CheckpointResult(False, number - 1, f"checkpoint {number} has no entry count")
        if entries == 0:
            continue
        entry = session.scalar(select(BreachEntry).where(BreachEntry.seq == entries))
        if entry is None:
            return CheckpointResult(False, number - 1,
                                    f"checkpoint {number} of {body['at']} saw {entries} entries, the log now "
                                    f"holds {count}: entries were removed from the end")
        if entry.hash != body["hash"]:
            return CheckpointResult(False, number - 1,
                                    f"entry {entries} differs from what checkpoint {number} of {body['at']} "
                                    "saw: the log was rewritten")
    return CheckpointResult(True, len(checkpoints))
