"""Search and sort of the inbox, shared by the API (``service.inbox``) and the
browser's tabs (``inbox.tab_page``): one meaning of "search" and of each sort
column wherever a person looks at a list of tasks."""
from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_

from bpm_server.accounts.models import Account
from bpm_server.tasks.models import HumanTask

# The column names a caller sorts by (API ``sort``, the page's column headers).
SORTS = ("due", "priority", "stage", "account", "created", "department")
ORDERS = ("asc", "desc")
MAX_SEARCH_CHARS = 100


def _sort_column(sort: str) -> Any:
    return {
        "due": HumanTask.due_at,
        "priority": HumanTask.priority,
        "stage": HumanTask.title,
        # An account the accounts table does not know yet sorts by its id.
        "account": func.coalesce(Account.name, HumanTask.account_id),
        "created": HumanTask.created_at,
        "department": HumanTask.department_id,
    }[sort]


def ordering(sort: str, order: str) -> tuple[Any, ...]:
    """ORDER BY for a sort column and direction; ties go soonest due, then oldest,
    then by id, so a page boundary never shuffles rows between requests."""
    column = _sort_column(sort)
    first = (column.desc() if order == "desc" else column.asc()).nulls_last()
    if sort == "due":
        return first, HumanTask.created_at, HumanTask.id
    return first, HumanTask.due_at.asc().nulls_last(), HumanTask.created_at, HumanTask.id


def needs_account(sort: str, q: str | None) -> bool:
    """Whether the query must join the accounts table (sorting or searching by the account's name)."""
    return sort == "account" or bool(q)


def join_account(query: Select[Any]) -> Select[Any]:
    return query.outerjoin(Account, Account.id == HumanTask.account_id)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_clause(q: str) -> ColumnElement[bool]:
    """Partial, case-insensitive match on the stage title (Chinese or not), the
    account's name and id, and the contract number the process was started with.
    ILIKE over the rows the inbox halves already narrowed down (a department's or
    a person's open work), so no text index is needed at inbox sizes."""
    pattern = _like_pattern(q.strip())
    return or_(
        HumanTask.title.ilike(pattern, escape="\\"),
        Account.name.ilike(pattern, escape="\\"),
        HumanTask.account_id.ilike(pattern, escape="\\"),
        HumanTask.data["contract_no"].as_string().ilike(pattern, escape="\\"),
    )
