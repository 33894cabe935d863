"""The append-only, hash-chained SLA breach log.

Writers first bump the one-row head (``UPDATE ... SET seq = seq + 1``), which
takes a row lock on PostgreSQL and the write lock on SQLite before anything
is read, so two writers cannot both extend the chain from the same entry.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session

from bpm_server.accounts.models import Account
from bpm_server.database import new_id
from bpm_server.sla.models import BreachEntry, BreachLogHead

GENESIS = "0" * 64
CSV_COLUMNS = ["id", "process_instance_id", "process_model_id", "account_id", "task_name", "department",
               "assignee", "due_at", "breached_at", "completed_at", "late_working_hours", "escalations",
               "kind", "clock", "department_name"]
#: What the log calls a breach of a stage's own SLA (``clock_kind`` NULL): ready to completed.
DEFAULT_KIND = "resolution"


def _digest(fields: dict[str, Any], prev_hash: str) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _hashed_fields(entry: BreachEntry) -> dict[str, Any]:
    return _fields({name: getattr(entry, name) for name in _COLUMNS})


#: The columns an entry is made of before it is chained (seq, prev_hash and hash come from the chain).
_COLUMNS = ("seq", "id", "kind", "breach_id", "process_instance_id", "process_model_id", "account_id", "task_id",
            "task_name", "department", "assignee", "due_at", "breached_at", "recorded_at", "details", "clock_kind")


def _fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the hash covers, from an entry's columns (a row about to be inserted or one read back)."""
    fields = {"seq": row["seq"], "id": row["id"], "kind": row["kind"], "breach_id": row["breach_id"],
              "process_instance_id": row["process_instance_id"], "process_model_id": row["process_model_id"],
              "account_id": row["account_id"], "task_id": row["task_id"], "task_name": row["task_name"],
              "department": row["department"], "assignee": row["assignee"], "due_at": row["due_at"].isoformat(),
              "breached_at": row["breached_at"].isoformat(), "recorded_at": row["recorded_at"].isoformat(),
              "details": row["details"]}
    if row["clock_kind"] is not None:  # only when set, so entries from before named clocks still verify
        fields["clock_kind"] = row["clock_kind"]
    return fields


@dataclass(frozen=True)
class NewEntry:
    """One entry to chain: what ``append`` needs besides the session."""
    kind: str
    breach_id: str | None
    task: Any
    assignee: str | None
    due_at: datetime
    breached_at: datetime
    now: datetime
    details: dict[str, Any]
    entry_id: str | None = None
    clock_kind: str | None = None  # a named clock's kind; None for the stage's own SLA


def append(session: Session, *, kind: str, breach_id: str | None, task: Any, assignee: str | None,
           due_at: datetime, breached_at: datetime, now: datetime, details: dict[str, Any],
           entry_id: str | None = None, clock_kind: str | None = None) -> BreachEntry:
    """Add one entry at the end of the chain (inside the caller's transaction)."""
    return append_all(session, [NewEntry(kind, breach_id, task, assignee, due_at, breached_at, now, details,
                                         entry_id, clock_kind)])[0]


def append_all(session: Session, new: list[NewEntry]) -> list[BreachEntry]:
    """Chain entries in order, moving the head once (see ``_chain``)."""
    if not new:
        return []
    entries = [BreachEntry(**row) for row in _chain(session, [snapshot(item) for item in new])]
    session.add_all(entries)
    session.flush()
    return entries


def snapshot(item: NewEntry) -> dict[str, Any]:
    """An entry's columns as the task is now, not yet chained: a batch of timers
    chains its entries at its end, after later timers may have changed the same task."""
    task = item.task
    # In UTC, as the columns give them back: the hash covers the text of each moment,
    # so a moment with another offset would not verify once read back.
    return {"id": item.entry_id or new_id(), "kind": item.kind, "breach_id": item.breach_id,
            "process_instance_id": task.process_instance_id, "process_model_id": task.process_model_id,
            "account_id": task.account_id, "task_id": task.id, "task_name": task.name,
            "department": task.department_id, "assignee": item.assignee, "due_at": item.due_at.astimezone(UTC),
            "breached_at": item.breached_at.astimezone(UTC), "recorded_at": item.now.astimezone(UTC),
            "details": item.details,
            "clock_kind": item.clock_kind}


def append_many(session: Session, rows: list[dict[str, Any]]) -> int:
    """Chain snapshots (``snapshot``) in order and insert them with one statement;
    returns how many. A storm's batch of timers moves the head once for all of them."""
    if not rows:
        return 0
    # render_nulls: a NULL breach_id (a breach's own entry) must not split the rows into
    # one statement per change of which columns are set.
    session.execute(insert(BreachEntry).execution_options(render_nulls=True), _chain(session, rows))
    return len(rows)


def _chain(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give the rows their seq, prev_hash and hash. The UPDATE takes the head row's lock
    (PostgreSQL) or the write lock (SQLite) before anything is read, and RETURNING hands
    back the reserved range and the hash to chain from; the lock is held until commit."""
    last_seq, prev_hash = session.execute(
        update(BreachLogHead).where(BreachLogHead.id == 1).values(seq=BreachLogHead.seq + len(rows))
        .returning(BreachLogHead.seq, BreachLogHead.hash)).one()
    for seq, row in enumerate(rows, start=last_seq - len(rows) + 1):
        row["seq"], row["prev_hash"] = seq, prev_hash
        row["hash"] = prev_hash = _digest(_fields(row), prev_hash)
    session.execute(update(BreachLogHead).where(BreachLogHead.id == 1).values(hash=prev_hash))
    return rows


@dataclass(frozen=True)
class ChainStatus:
    intact: bool
    entries: int
    first_broken_seq: int | None = None
    first_broken_id: str | None = None
    reason: str | None = None
    last_hash: str = GENESIS  # of the last entry checked: where a later check of newer entries starts


def verify(session: Session, batch: int = 1000, *, after: ChainStatus | None = None) -> ChainStatus:
    """Walk the chain from the start (or only the entries after an intact earlier
    check, ``after``); name the first entry that does not fit."""
    prev_hash, count = (after.last_hash, after.entries) if after is not None and after.intact else (GENESIS, 0)
    last_seq, expected_seq = count, count + 1
    while True:
        rows = session.scalars(select(BreachEntry).where(BreachEntry.seq > last_seq)
                               .order_by(BreachEntry.seq).limit(batch)).all()
        if not rows:
            break
        for entry in rows:
            if entry.seq != expected_seq:
                return ChainStatus(False, count, expected_seq, None, f"entry {expected_seq} is missing")
            if entry.prev_hash != prev_hash:
                return ChainStatus(False, count, entry.seq, entry.id, "its prev_hash does not match the entry before")
            if _digest(_hashed_fields(entry), entry.prev_hash) != entry.hash:
                return ChainStatus(False, count, entry.seq, entry.id, "its content does not match its hash")
            prev_hash, expected_seq, count, last_seq = entry.hash, expected_seq + 1, count + 1, entry.seq
    head = session.get(BreachLogHead, 1)
    if head is None:  # made by the migration and never deleted: without it, truncation would go unseen
        return ChainStatus(False, count, None, None, "the log's head row is missing")
    if head.seq != count or head.hash != prev_hash:
        return ChainStatus(False, count, count + 1, None,
                           f"the log ends at entry {count} but the head says {head.seq}: entries were removed")
    return ChainStatus(True, count, last_hash=prev_hash)


@dataclass(frozen=True)
class BreachFilter:
    process_model_id: str | None = None
    task_name: str | None = None
    department: str | None = None
    account_id: str | None = None
    account: str | None = None  # part of an account's id or name, in any letter case (what a person types)
    kind: str | None = None  # the clock's kind; "resolution" includes the stages' own SLAs
    start: datetime | None = None
    end: datetime | None = None
    page: int = 1
    per_page: int = 50


def search(session: Session, filters: BreachFilter, *, paged: bool = True) -> tuple[list[dict[str, Any]], int]:
    """Breaches matching the filters, each with its follow-ups folded in (escalations, completion)."""
    query = select(BreachEntry).where(BreachEntry.kind == "breach")
    for column, value in ((BreachEntry.process_model_id, filters.process_model_id),
                          (BreachEntry.task_name, filters.task_name), (BreachEntry.department, filters.department),
                          (BreachEntry.account_id, filters.account_id)):
        if value:
            query = query.where(column == value)
    if filters.account:
        typed = filters.account.lower()
        query = query.where(or_(func.lower(BreachEntry.account_id).contains(typed, autoescape=True),
                                BreachEntry.account_id.in_(select(Account.id).where(
                                    func.lower(Account.name).contains(typed, autoescape=True)))))
    if filters.kind == DEFAULT_KIND:
        query = query.where((BreachEntry.clock_kind == DEFAULT_KIND) | BreachEntry.clock_kind.is_(None))
    elif filters.kind:
        query = query.where(BreachEntry.clock_kind == filters.kind)
    if filters.start:
        query = query.where(BreachEntry.breached_at >= filters.start)
    if filters.end:
        query = query.where(BreachEntry.breached_at < filters.end)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    query = query.order_by(BreachEntry.breached_at.desc(), BreachEntry.seq.desc())
    if paged:
        query = query.limit(filters.per_page).offset((filters.page - 1) * filters.per_page)
    breaches = session.scalars(query).all()
    follow_ups = _follow_ups(session, [b.id for b in breaches])
    return [_view(b, follow_ups.get(b.id, [])) for b in breaches], total


def _follow_ups(session: Session, breach_ids: list[str]) -> dict[str, list[BreachEntry]]:
    grouped: dict[str, list[BreachEntry]] = {}
    for chunk in (breach_ids[i:i + 500] for i in range(0, len(breach_ids), 500)):
        for entry in session.scalars(select(BreachEntry).where(BreachEntry.breach_id.in_(chunk))
                                     .order_by(BreachEntry.seq)):
            # Every entry selected here names one of breach_ids.
            grouped.setdefault(cast(str, entry.breach_id), []).append(entry)
    return grouped


def _view(breach: BreachEntry, follow_ups: Iterable[BreachEntry]) -> dict[str, Any]:
    escalations, completion = [], None
    for entry in follow_ups:
        if entry.kind == "escalation":
            escalations.append({"at": entry.recorded_at, "level": entry.details.get("level"),
                                "event": entry.details.get("event"), "actions": entry.details.get("actions", [])})
        elif entry.kind == "completion":
            completion = entry
    return {"id": breach.id, "seq": breach.seq, "process_instance_id": breach.process_instance_id,
            "process_model_id": breach.process_model_id, "account_id": breach.account_id,
            "task_id": breach.task_id, "task_name": breach.task_name, "department": breach.department,
            "assignee": breach.assignee, "due_at": breach.due_at, "breached_at": breach.breached_at,
            "recorded_at": breach.recorded_at, "kind": breach.clock_kind or DEFAULT_KIND,
            "clock": breach.details.get("clock"),
            "completed_at": completion.details.get("completed_at") if completion else None,
            "completed_by": completion.details.get("completed_by") if completion else None,
            "late_working_hours": completion.details.get("late_working_hours") if completion else None,
            "escalations": escalations}


def to_csv(rows: list[dict[str, Any]], department_names: Mapping[str, str] | None = None) -> str:
    """The rows as CSV; ``department_names``: code -> name, for the ``department_name`` column
    beside the code (a department not in it is named by its code)."""
    names = department_names or {}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        escalations = "; ".join(f"L{e['level']} {e['event']}: " + ", ".join(e["actions"]) for e in row["escalations"])
        values = {**row, "escalations": escalations, "department_name": names.get(row["department"], row["department"])}
        writer.writerow([_cell(values.get(c)) for c in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    # Spreadsheet formula injection: a cell starting with = + - @ would run as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
