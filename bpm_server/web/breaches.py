"""The auditors' breach log page: the API's filters, paging, CSV export and the
hash chain's verification status. Read-only: nothing on it changes anything.

Dates are calendar days in the business calendar's time zone; "to" includes
its whole day, so the API query is ``[from 00:00, day after to 00:00)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bpm_server.database import db
from bpm_server.extensions import deployment
from bpm_server.identity import departments
from bpm_server.identity.models import Department
from bpm_server.modeling.catalogs import ModelTexts
from bpm_server.modeling.models import ProcessModel
from bpm_server.sla import breaches
from bpm_server.sla.models import BreachEntry
from bpm_server.tasks import service as tasks
from bpm_server.tasks.models import HumanTask
from bpm_server.web.i18n import current_language
from bpm_server.web.session import page_blueprint, page_requires

blp = page_blueprint("breaches", __name__)
PER_PAGE = 20
CHAIN_RECHECK = timedelta(minutes=10)  # the longest a page relies on an earlier full walk of the chain
# account_id (exact) is still read from older links; the form sends account (part of an id or name).
TEXT_FILTERS = ("process_model_id", "task_name", "department", "account_id", "account")
#: What a person reads for each clock kind (the breach log and the SLA dashboard).
KIND_LABELS = {"response": _l("Response"), "resolution": _l("Resolution"), "ola": _l("Department (OLA)"),
               "end_to_end": _l("End to end")}


@dataclass
class Period:
    start: datetime | None = None
    end: datetime | None = None
    errors: dict[str, str] = field(default_factory=dict)


def parse_period(start_text: str, end_text: str, zone: Any) -> Period:
    """Two optional ISO dates (YYYY-MM-DD) as a half-open period in ``zone``; errors per field."""
    period = Period()
    days: dict[str, date] = {}
    for key, text in (("from", start_text), ("to", end_text)):
        if not text:
            continue
        try:
            days[key] = date.fromisoformat(text)
        except ValueError:
            period.errors[key] = _("Enter a date as YYYY-MM-DD.")
    if "from" in days:
        period.start = datetime.combine(days["from"], time(0), zone)
    if "to" in days:
        period.end = datetime.combine(days["to"] + timedelta(days=1), time(0), zone)
    if period.start and period.end and period.end <= period.start:
        period.errors["to"] = _("“To” must not be before “from”.")
    return period


def _whole(text: str | None, default: int, highest: int) -> int:
    """A page number or size from the query string, clamped; junk means the default."""
    try:
        return min(max(int(text or default), 1), highest)
    except ValueError:
        return default


@blp.route("/breaches")
@page_requires("auditor", "process_owner")
def breach_log() -> str:
    session, rt = db.session, deployment()
    args = {key: request.args.get(key, "").strip()[:200] for key in (*TEXT_FILTERS, "kind", "from", "to")}
    kind = args["kind"] if args["kind"] in KIND_LABELS else None  # anything else: every kind
    period = parse_period(args["from"], args["to"], rt.calendar.time_zone)
    page = _whole(request.args.get("page"), 1, 1_000_000)
    per_page = _whole(request.args.get("per_page"), PER_PAGE, 200)
    rows: list[dict] = []
    total = 0
    csv_url = None
    if not period.errors:
        filters = breaches.BreachFilter(**{k: args[k] or None for k in TEXT_FILTERS}, kind=kind, start=period.start,
                                        end=period.end, page=page, per_page=per_page)
        rows, total = breaches.search(session, filters)
        query: dict[str, Any] = {k: args[k] for k in TEXT_FILTERS if args[k]}
        if kind:
            query["kind"] = kind
        if period.start:
            query["from"] = period.start.isoformat()
        if period.end:
            query["to"] = period.end.isoformat()
        csv_url = url_for("sla.list_breaches", format="csv", **query)
    pages = max((total + per_page - 1) // per_page, 1)
    # The stage as its task's reader sees it (the instance's version's messages file), the model by its name.
    language = current_language()
    titles = tasks.titles_in(session, session.scalars(select(HumanTask).where(
        HumanTask.id.in_({row["task_id"] for row in rows}))), language) if rows else {}
    model_names = ModelTexts(session, language).model_names()
    chain, checked_at = _chain_status(session, rt.clock.now(), force=request.args.get("verify") == "1")
    choices = {
        "models": [(m, model_names.get(m, m))
                   for m in session.scalars(select(ProcessModel.id).order_by(ProcessModel.id))],
        "departments": [(d.id, departments.label(d, d.id, language))
                        for d in session.scalars(select(Department).order_by(Department.id))],
        "stages": _breached_stages(session, language, model_names),
    }
    return render_template("breaches/log.html", args=args, errors=period.errors, rows=rows, total=total, page=page,
                           pages=pages, csv_url=csv_url, chain=chain, chain_checked_at=checked_at, kinds=KIND_LABELS,
                           chain_recheck_minutes=int(CHAIN_RECHECK.total_seconds() // 60), choices=choices,
                           titles=titles, model_names=model_names,
                           page_url=lambda number: url_for("breaches.breach_log",
                                                           **{**_kept(args), "per_page": per_page, "page": number}))


def _breached_stages(session: Any, language: str, model_names: dict[str, str]) -> list[tuple[str, str]]:
    """The stages that have breaches, by their titles in the reader's language (the filter's
    values stay element ids, which is what the log stores)."""
    texts = ModelTexts(session, language)
    pairs = session.execute(select(BreachEntry.process_model_id, BreachEntry.task_name)
                            .where(BreachEntry.kind == "breach").distinct()).all()
    labels: dict[str, list[str]] = {}
    for model_id, name in sorted(pairs):
        title = session.scalar(select(HumanTask.title).where(HumanTask.process_model_id == model_id,
                                                             HumanTask.name == name).limit(1))
        shown = texts.shown(model_id, title) if title else name
        labels.setdefault(name, []).append(f"{shown} · {model_names.get(model_id, model_id)}")
    return sorted(((name, " / ".join(texts_of)) for name, texts_of in labels.items()), key=lambda c: c[1])


@dataclass(frozen=True)
class _ChainCheck:
    status: breaches.ChainStatus
    full_at: datetime  # when the whole chain was last walked


def _chain_status(session: Any, now: datetime, *, force: bool) -> tuple[breaches.ChainStatus, datetime]:
    """The chain's status for the page. Walking the whole log costs ~60 us per entry
    (3 s at 50,000), too much for every page view: between full walks, at most
    CHAIN_RECHECK apart (or on "verify now"), only entries added since are
    checked, chained on from the last full walk. The API's verify always walks it all."""
    cache = current_app.extensions.setdefault("bpm_breach_chain_check", {})
    last: _ChainCheck | None = cache.get("last")
    if force or last is None or not last.status.intact or now - last.full_at >= CHAIN_RECHECK or now < last.full_at:
        check = _ChainCheck(breaches.verify(session), now)
    else:
        check = _ChainCheck(breaches.verify(session, after=last.status), last.full_at)
    cache["last"] = check
    return check.status, check.full_at


def _kept(args: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in args.items() if v}
