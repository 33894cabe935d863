"""Customer accounts over HTTP: records, signals, health, value matrix, rules and settings."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import ValidationError
from sqlalchemy.orm import Session

from bpm_server import runtime
from bpm_server.accounts import health, rules, service, signals, tiers
from bpm_server.accounts.models import Account
from bpm_server.accounts.schemas import (
    AccountCreate,
    AccountListArgs,
    AccountPatch,
    AccountPut,
    AccountSchema,
    CutIn,
    FiringSchema,
    RuleActive,
    RuleUpload,
    RuleVersionSchema,
    SignalAnswer,
    SignalIn,
    SignalSchema,
    TierReviewIn,
    WeightsIn,
)
from bpm_server.api_common import page_of
from bpm_server.errors import Forbidden, Invalid, NotFound
from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import READERS, current_user, requires

blp = Blueprint("accounts", __name__, url_prefix="/api/v1/accounts", description="Customer accounts")
rules_blp = Blueprint("account_rules", __name__, url_prefix="/api/v1/account-rules",
                      description="Account rules (DMN decision tables) that start processes")
WATCHERS = READERS
EDITORS = ("staff",)
REPORTERS = ("staff", "integration")  # who may send signals
OWNERS = ("process_owner",)


def _dump(account: Account, scores: dict | None = None) -> dict[str, Any]:
    latest = (scores if scores is not None else health.latest_scores(db_session())).get(account.id)
    score = latest.score if latest is not None else None
    return {**AccountSchema().dump(account), "health_score": score, "health_band": health.band(score)}


@blp.route("")
@requires(*WATCHERS)
@blp.arguments(AccountListArgs, location="query")
@blp.response(200)
def list_accounts(args: dict) -> dict:
    """Accounts; filters ``tier``, ``owner``, ``health_band`` (healthy, watch, at_risk, unknown), ``q``."""
    session = db_session()
    scores = health.latest_scores(session)
    found = service.list_accounts(session, tier=args.get("tier"), owner=args.get("owner"), q=args.get("q"))
    items = [_dump(a, scores) for a in found]
    if args.get("health_band"):
        items = [i for i in items if i["health_band"] == args["health_band"]]
    start = (args["page"] - 1) * args["per_page"]
    return page_of(items[start:start + args["per_page"]], len(items), args["page"], args["per_page"])


@blp.route("", methods=["POST"])
@requires(*EDITORS)
@blp.arguments(AccountCreate)
@blp.response(201)
@blp.alt_response(409, description="an account with this id exists")
def create_account(body: dict) -> dict:
    """Create an account with its tier, owner, sponsor, industry, contacts, contract value, start."""
    rt = deployment()
    account_id = body.pop("id")
    account = service.create_account(db_session(), account_id, body, actor=current_user().username,
                                     now=rt.clock.now())
    return _dump(account)


@blp.route("/matrix")
@requires(*WATCHERS)
@blp.response(200)
def value_matrix() -> dict:
    """Every account's place in the value matrix (seeds/001), the cuts and weights used."""
    session, rt = db_session(), deployment()
    accounts = service.list_accounts(session)
    placements, cuts = health.value_matrix(session, accounts, runtime.local_day(rt, rt.clock.now()))
    names = {a.id: a.name for a in accounts}
    return {"items": [{**p.__dict__, "name": names[p.account_id]} for p in placements], "total": len(placements),
            **cuts}


@blp.route("/settings")
@requires(*WATCHERS)
@blp.response(200)
def get_settings() -> dict:
    session = db_session()
    return {key: health.setting(session, key) for key in ("health_weights", "value_weights", "matrix_cut")}


@blp.route("/settings/<key>", methods=["PUT"])
@requires(*OWNERS)
@blp.arguments(WeightsIn)
@blp.response(200)
def put_weights(body: dict, key: str) -> dict:
    """Replace the health or value-matrix weights (``health_weights``, ``value_weights``): percentages
    per component, summing to 100."""
    if key not in health.SETTINGS:
        raise NotFound(f"no weight setting {key!r}; settings are {', '.join(health.SETTINGS)}", code="unknown_setting")
    rt = deployment()
    return health.set_weights(db_session(), key, body["weights"], actor=current_user().username,
                              now=rt.clock.now())


@blp.route("/settings/matrix_cut", methods=["PUT"])
@requires(*OWNERS)
@blp.arguments(CutIn)
@blp.response(200)
def put_cut(body: dict) -> dict:
    """The value-matrix cuts (0-100); null means the median of all accounts."""
    rt = deployment()
    return health.set_matrix_cut(db_session(), body, actor=current_user().username, now=rt.clock.now())


@blp.route("/<account_id>")
@requires(*WATCHERS)
@blp.response(200)
def get_account(account_id: str) -> dict:
    """One account with its health score and band."""
    return _dump(service.get_account(db_session(), account_id))


@blp.route("/<account_id>", methods=["PATCH"])
@requires(*EDITORS)
@blp.arguments(AccountPatch)
@blp.response(200)
@blp.alt_response(403, description="not the account's owner, sponsor, a lead or an admin; "
                                   "or a tier change without an approving review")
def patch_account(body: dict, account_id: str) -> dict:
    """Change some fields. A tier change needs ``tier_review`` (the approving tier-review instance): 403 otherwise."""
    rt, session, user = deployment(), db_session(), current_user()
    service.authorize_edit(session, user, service.get_account(session, account_id))
    account = service.update_account(session, account_id, body, actor=user.username, now=rt.clock.now())
    return _dump(account)


@blp.route("/<account_id>", methods=["PUT"])
@requires("staff")
@blp.arguments(AccountPut)
@blp.response(200, AccountSchema)
def put_account(body: dict, account_id: str) -> Account:
    """Create or refresh an account as the ERP sees it (the ERP webhook does this too). Staff
    cannot change an existing account's tier here (403): that is the tier review's (admins may)."""
    session, user = db_session(), current_user()
    existing = session.get(Account, account_id)
    if existing is not None:
        service.authorize_edit(session, user, existing)
    if existing is not None and existing.tier != body["tier"] and not user.has_role("admin"):
        raise Forbidden("a tier change goes through the tier review process (客户分级调整审批, model tier-review)",
                        code="tier_change_needs_review")
    return service.upsert_account(session, account_id, now=deployment().clock.now(), actor=user.username, **body)


@blp.route("/<account_id>/signals", methods=["POST"])
@requires(*REPORTERS)
@blp.arguments(SignalIn)
@blp.response(201)
@blp.alt_response(200, description="a repeat of a known signal_id: nothing recorded again")
def post_signal(body: dict, account_id: str) -> tuple[dict, int]:
    """Record a measured fact (idempotent on ``signal_id``: a repeat answers 200 and changes nothing);
    a new one recomputes health and evaluates the rules, starting what they ask for."""
    session, rt = db_session(), deployment()
    now = rt.clock.now()
    account = service.get_account(session, account_id)
    signal, created = signals.record_signal(session, account, now=now, actor=current_user().username, **body)
    fired = runtime.evaluate_account(session, rt, account, f"signal:{signal.signal_id}", now) if created else []
    return SignalAnswer().dump({"signal": signal, "created": created, "firings": fired}), 201 if created else 200


def _history_view(path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``GET /accounts/{id}/<path>``: one account's history, for watchers (200)."""
    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        return blp.route(f"/<account_id>/{path}")(requires(*WATCHERS)(blp.response(200)(view)))
    return register


def _known(account_id: str) -> Session:
    """The request's session, once the account is known to exist (404 otherwise)."""
    session = db_session()
    service.get_account(session, account_id)
    return session


@_history_view("signals")
def list_signals(account_id: str) -> dict:
    """The account's signal history, newest first (filter ``kind``)."""
    session = _known(account_id)
    rows = signals.history(session, account_id, kind=request.args.get("kind"))
    return {"items": SignalSchema(many=True).dump(rows), "total": len(rows), "kinds": list(signals.KINDS)}


@_history_view("health")
def account_health(account_id: str) -> dict:
    """Today's health score with the components and facts behind it, and the daily history."""
    session = _known(account_id)
    rows = health.health_history(session, account_id)
    today = rows[-1] if rows else None
    return {"score": today.score if today else None, "band": health.band(today.score if today else None),
            "components": today.components if today else {},
            "history": [{"day": r.day.isoformat(), "score": r.score} for r in rows]}


@_history_view("firings")
def account_firings(account_id: str) -> dict:
    """Every rule firing of the account with the facts that made it fire, newest first."""
    session = _known(account_id)
    rows = rules.firings(session, account_id)
    return {"items": FiringSchema(many=True).dump(rows), "total": len(rows)}


@blp.route("/<account_id>/tier-review", methods=["POST"])
@requires("staff")
@blp.arguments(TierReviewIn)
@blp.response(201)
def start_tier_review(body: dict, account_id: str) -> dict:
    """Start the tier review (客户分级调整审批) for the account, with the value matrix's suggestion."""
    session, rt = db_session(), deployment()
    now = rt.clock.now()
    account = service.get_account(session, account_id)
    suggested = tiers.suggestion(session, account, runtime.local_day(rt, now), suggested=body.get("suggested_tier"),
                                 why=body.get("reason") or None)
    data = {"account_id": account_id, **suggested, "trigger": {"rule": "manual", "facts": suggested}}
    instance = runtime.start_instance(session, rt, process_model_id=service.TIER_REVIEW_MODEL, account_id=account_id,
                                      data=data, now=now, started_by=current_user().username)
    return {"process_instance_id": instance.id, "suggested_tier": suggested["suggested_tier"]}


# --------------------------------------------------------------------------- rules


@rules_blp.route("")
@requires(*WATCHERS)
@rules_blp.response(200)
def list_rules() -> dict:
    """The current version of every rule (the shipped defaults are installed on first use)."""
    session, rt = db_session(), deployment()
    rules.ensure_defaults(session, rt.clock.now())
    rows = rules.current_versions(session)
    return {"items": RuleVersionSchema(many=True).dump(rows), "total": len(rows)}


@rules_blp.route("/<rule_id>")
@requires(*WATCHERS)
@rules_blp.response(200)
def get_rule(rule_id: str) -> dict:
    session = db_session()
    return {"versions": RuleVersionSchema(many=True).dump(rules.versions(session, rule_id)),
            **RuleVersionSchema().dump(rules.current_version(session, rule_id))}


@rules_blp.route("/<rule_id>/versions", methods=["POST"])
@requires(*OWNERS)
@rules_blp.response(201)
def post_rule_version(rule_id: str) -> dict:
    """A new version of a rule: DMN XML (``application/xml``) or ``{"dmn", "name"}``. 422 lists the
    table's problems, and refuses a table whose outputs name no existing process model."""
    session, rt = db_session(), deployment()
    if request.mimetype in ("application/xml", "text/xml"):
        xml, name = request.get_data(), request.args.get("name")
    else:
        try:
            body = RuleUpload().load(request.get_json(silent=True) or {})
        except ValidationError as exc:
            raise Invalid("the rule upload is invalid", code="validation_error", details=exc.messages) from None
        xml, name = body["dmn"].encode(), body["name"]
    version = rules.add_version(session, rule_id, xml, name=name, actor=current_user().username,
                                now=rt.clock.now())
    return RuleVersionSchema().dump(version)


@rules_blp.route("/<rule_id>", methods=["PATCH"])
@requires(*OWNERS)
@rules_blp.arguments(RuleActive)
@rules_blp.response(200)
def patch_rule(body: dict, rule_id: str) -> dict:
    """Switch a rule on or off (``{"active": false}``)."""
    rt = deployment()
    return RuleVersionSchema().dump(rules.set_active(db_session(), rule_id, body["active"],
                                                     actor=current_user().username, now=rt.clock.now()))


@rules_blp.route("/evaluate", methods=["POST"])
@requires(*OWNERS)
@rules_blp.response(200)
def evaluate_now() -> dict:
    """Run today's evaluation now (what the daily job does), even if it already ran today."""
    session, rt = db_session(), deployment()
    return {"outcome": runtime.evaluate_daily(session, rt, rt.clock.now(), force=True)}
