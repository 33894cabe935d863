"""The SLA dashboard (process owners and department leads): on-time rates per
stage and department over a chosen period, median and 90th-percentile working
time per stage, open work per department and open breaches, as server-rendered
SVG bar charts, with every number downloadable as CSV from the stats API.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from flask import render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from bpm_server.database import db
from bpm_server.extensions import deployment
from bpm_server.modeling.catalogs import ModelTexts
from bpm_server.modeling.models import ProcessModel
from bpm_server.sla import stats as sla_stats
from bpm_server.sla import trends as sla_trends
from bpm_server.web.breaches import KIND_LABELS
from bpm_server.web.i18n import current_language
from bpm_server.web.labels import department_name
from bpm_server.web.session import LEAD, page_blueprint, page_requires

blp = page_blueprint("dashboard", __name__)
DEFAULT_DAYS = 30
COLORS = {"on_time": "#16a34a", "warning": "#d97706", "breached": "#dc2626", "no_sla": "#9ca3af",
          "late": "#fca5a5", "median": "#2563eb", "p90": "#93c5fd"}


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.0f}%"  # noqa: RUF001 - an en dash shows "no value"


def _hours(value: float | None) -> str:
    return "–" if value is None else _("%(h)s h", h=f"{value:.1f}")  # noqa: RUF001 - as above


def rate_rows(items: list[Any], label: Any) -> list[dict[str, Any]]:
    """Bars of an on-time rate: the on-time share green, the late share red, out of 100 %."""
    rows = []
    for item in items:
        if not item.with_sla:
            rows.append({"label": label(item), "segments": [], "text": _("no SLA")})
            continue
        late = item.with_sla - item.on_time
        rows.append({"label": label(item), "text": f"{_percent(item.on_time_rate)} ({item.on_time}/{item.with_sla})",
                     "segments": [{"value": item.on_time / item.with_sla, "color": COLORS["on_time"],
                                   "title": _("%(n)s on time", n=item.on_time)},
                                  {"value": late / item.with_sla, "color": COLORS["late"],
                                   "title": _("%(n)s late", n=late)}]})
    return rows


def time_rows(stages: list[sla_stats.StageStats], label: Any) -> tuple[list[dict[str, Any]], float]:
    """Median and 90th percentile of working hours per stage, as two bars on one scale."""
    scale = max([s.p90_hours or 0 for s in stages] + [1.0])
    rows = []
    for s in stages:
        for kind, value in (("median", s.median_hours), ("p90", s.p90_hours)):
            # The stage names its pair of bars once; the values say which bar is which.
            rows.append({"label": label(s) if kind == "median" else "",
                         "text": f"{_('median') if kind == 'median' else _('P90')} {_hours(value)}",
                         "segments": [{"value": (value or 0) / scale, "color": COLORS[kind], "title": _hours(value)}]})
    return rows, scale


def work_rows(open_work: list[sla_stats.OpenWork]) -> list[dict[str, Any]]:
    """Open stages per department, stacked by SLA state, on the largest department's scale."""
    scale = max([w.total for w in open_work] + [1])
    names = {"on_time": _("on time"), "warning": _("warning"), "breached": _("breached"), "no_sla": _("no SLA")}
    return [{"label": department_name(w.department), "text": str(w.total),
             "segments": [{"value": getattr(w, state) / scale, "color": COLORS[state],
                           "title": f"{names[state]}: {getattr(w, state)}"}
                          for state in ("breached", "warning", "on_time", "no_sla") if getattr(w, state)]}
            for w in open_work]


def parse_dates(start_text: str, end_text: str, today: date) -> tuple[date, date, dict[str, str]]:
    """The chosen days (``to`` inclusive), defaulting to the last 30 days; errors per field."""
    errors: dict[str, str] = {}
    chosen = {}
    for key, text, default in (("from", start_text, today - timedelta(days=DEFAULT_DAYS - 1)),
                               ("to", end_text, today)):
        try:
            chosen[key] = date.fromisoformat(text) if text else default
        except ValueError:
            errors[key] = _("Enter a date as YYYY-MM-DD.")
            chosen[key] = default
    if chosen["to"] < chosen["from"]:
        errors["to"] = _("“To” must not be before “from”.")
    return chosen["from"], chosen["to"], errors


@blp.route("/dashboard")
@page_requires("process_owner", LEAD)
def dashboard() -> str:
    session, rt = db.session, deployment()
    zone = rt.calendar.time_zone
    now = rt.clock.now()
    model_id = request.args.get("process_model_id", "").strip() or None
    today = now.astimezone(zone).date()  # the deployment's clock, not the browser's
    first, last, errors = parse_dates(request.args.get("from", "").strip(), request.args.get("to", "").strip(), today)
    models = list(session.scalars(select(ProcessModel.id).order_by(ProcessModel.id)))
    # Stage titles and model names in the reader's language (each model's messages file).
    model_texts = ModelTexts(session, current_language())
    stage_title = lambda s: model_texts.shown(s.process_model_id, s.title)  # noqa: E731
    context: dict[str, Any] = {"first": first, "last": last, "errors": errors, "model_id": model_id,
                               "models": models, "model_names": model_texts.model_names(), "colors": COLORS,
                               "today": today, "shown": model_texts.shown, "kinds": KIND_LABELS}
    if not errors:
        start, end = datetime.combine(first, time(0), zone), datetime.combine(last + timedelta(days=1), time(0), zone)
        result = sla_stats.sla_stats(session, rt.calendar, start=start, end=end, now=now, process_model_id=model_id)
        query: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat(),
                 **({"process_model_id": model_id} if model_id else {})}
        with_sla = sum(s.with_sla for s in result.stages)
        times, time_scale = time_rows(result.stages, stage_title)
        context.update(
            stats=result, csv_url=url_for("sla.sla_statistics", format="csv", **query),
            overall=_percent(sum(s.on_time for s in result.stages) / with_sla if with_sla else None),
            completed=sum(s.completed for s in result.stages),
            stage_rates=rate_rows(result.stages, stage_title),
            department_rates=rate_rows(result.departments, lambda d: department_name(d.department)),
            times=times, time_scale=time_scale, work=work_rows(result.open_work),
            open_total=sum(w.total for w in result.open_work),
            trends=sla_trends.weekly(session, rt.calendar, start=start, end=end, process_model_id=model_id)
            if sla_trends.period_weeks(start, end, rt.calendar) <= sla_trends.MAX_WEEKS else None)
    return render_template("dashboard/dashboard.html", **context)
