"""Liveness plus the reachability of what the server depends on."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import text

from bpm_server.extensions import db_session, deployment
from bpm_server.sla import gaps

blp = Blueprint("health", __name__, url_prefix="/api/v1", description="Liveness and dependencies")


class HealthSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ok", "degraded"]))
    checks = fields.Dict(keys=fields.String(), values=fields.Dict(), required=True,
                         metadata={"description": "database, queue, calendar, erp, escalation: each with ok"})


@blp.route("/health")
@blp.doc(security=[])
@blp.alt_response(200, schema=HealthSchema, description="every dependency is reachable")
@blp.alt_response(503, schema=HealthSchema, description="a dependency is down (Retry-After says when to look again)")
def health():
    """Liveness, database and queue reachability (no authentication). 503 when a dependency is down."""
    checks: dict[str, dict] = {}
    try:
        db_session().execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:  # report, never raise: this is what monitors poll
        checks["database"] = {"ok": False, "error": exc.__class__.__name__}
    rt = deployment()
    checks["queue"] = {"ok": rt.jobs.ping(), "mode": "rq" if rt.config.redis_url else "embedded"}
    checks["calendar"] = _calendar_check(rt)
    checks["erp"] = _erp_check(rt)
    checks["escalation"] = _escalation_check(rt)
    ok = all(c.get("ok", True) for c in checks.values())
    if ok:
        return {"status": "ok", "checks": checks}, 200
    # Load balancers and clients alike learn when to look again.
    return {"status": "degraded", "checks": checks}, 503, {"Retry-After": str(rt.config.retry_after_seconds)}


def _calendar_check(rt) -> dict:
    """Holiday data covers only announced years; say which years are provisional (statutory days only)."""
    year = rt.clock.now().year
    provisional = rt.calendar.provisional_years([year, year + 1])
    check = {"ok": True, "time_zone": str(rt.calendar.time_zone), "uncovered_years": provisional,
             "provisional_years": provisional, "notices": sorted(rt.calendar.notices)}
    if provisional:
        check["warning"] = (f"no official holiday notice for {', '.join(map(str, provisional))}: due dates there "
                            f"use the statutory holidays only and are marked provisional; import the notice "
                            f"with 'bpm-server calendar import FILE' once it is published")
    return check


def _escalation_check(rt) -> dict:
    """Ladders whose targets resolve to nobody: they still act, on the fallback."""
    try:
        found = gaps.all_gaps(db_session())
    except Exception as exc:  # the database check above already reports an outage
        return {"ok": True, "error": exc.__class__.__name__}
    check: dict = {"ok": True, "gaps": found, "fallback": rt.config.escalation_fallback,
                   "fallback_people": [u.username for u in gaps.fallback_people(db_session(),
                                                                                 rt.config.escalation_fallback)]}
    if found:
        instead = (f"those rungs go to {rt.config.escalation_fallback} instead" if rt.config.escalation_fallback
                   else "set BPM_ESCALATION_FALLBACK (user:<name> or role:<role>) so those rungs reach someone")
        check["warning"] = (f"{len(found)} escalation target(s) resolve to nobody; {instead}: " +
                            "; ".join(f"policy {g['policy']} rule {g['rule']} {g['target']}: {g['problem']}"
                                      for g in found[:5]))
    if rt.config.escalation_fallback and not check["fallback_people"]:
        check["warning"] = ((check.get("warning", "") + "; ") if found else "") + \
            f"the escalation fallback {rt.config.escalation_fallback} is nobody either"
    return check


def _erp_check(rt) -> dict:
    """Running without an ERP is allowed (demo, trials), but a production deployment
    that forgot a setting would lose ERP traffic with only a log line to show for it."""
    check: dict = {"ok": True, "configured": bool(rt.config.erp_base_url),
                   "webhook_secret_set": bool(rt.config.erp_webhook_secret)}
    warnings = []
    if not check["configured"]:
        warnings.append("BPM_ERP_BASE_URL is not set: invoice requests to the ERP are skipped "
                        "(finance invoices by hand)")
    if not check["webhook_secret_set"]:
        warnings.append("BPM_ERP_WEBHOOK_SECRET is not set: the contract-signed webhook refuses every delivery")
    if warnings:
        check["warning"] = "; ".join(warnings)
    return check
