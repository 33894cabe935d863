"""The application factory."""
from __future__ import annotations

from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from bpm_server import __version__, logs
from bpm_server.accounts.views import blp as accounts
from bpm_server.accounts.views import rules_blp as account_rules
from bpm_server.api_common import make_api
from bpm_server.audit.views import blp as audit
from bpm_server.clock import Clock, DatabaseClock, SystemClock
from bpm_server.config import Config
from bpm_server.database import db
from bpm_server.engine import adapter
from bpm_server.engine.sandbox import Budgets, RestrictedEvaluator
from bpm_server.erp.views import blp as erp
from bpm_server.errors import register_error_handlers
from bpm_server.extensions import Deployment, migrate
from bpm_server.external_tasks.views import blp as external_tasks
from bpm_server.health.views import blp as health
from bpm_server.identity.providers import configured_providers
from bpm_server.identity.views import blp as identity
from bpm_server.instances.views import blp as instances
from bpm_server.integration_log.views import blp as integration_log
from bpm_server.jobs.queue import InProcessJobQueue, JobQueue, RqJobQueue
from bpm_server.jobs.runner import perform_in_app
from bpm_server.messages.views import blp as messages
from bpm_server.modeling.views import blp as modeling
from bpm_server.notifications.service import InAppNotifier, Notifier
from bpm_server.notifications.views import blp as notifications
from bpm_server.request_guard import init_guard
from bpm_server.sla.calendar import BusinessCalendar
from bpm_server.sla.notices import refresh_if_changed
from bpm_server.sla.views import blp as sla
from bpm_server.sla.views import test_clock_blp
from bpm_server.tasks.delegation_api.views import blp as delegations
from bpm_server.tasks.inbox_view_api.views import blp as inbox_views
from bpm_server.tasks.verb_api.views import blp as task_verbs
from bpm_server.tasks.views import blp as tasks
from bpm_server.web import register_pages

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def create_app(config: Config | None = None, *, clock: Clock | None = None,
               jobs: JobQueue | None = None, notifier: Notifier | None = None) -> Flask:
    config = config or Config.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=config.secret_key,
        SQLALCHEMY_DATABASE_URI=config.database_url,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        TESTING=config.testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.secure_cookies,
        API_TITLE="BPM server for key-account service processes",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        },
    )
    if config.database_url.startswith("sqlite:///"):
        Path(config.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    logs.configure(config.log_level)

    db.init_app(app)
    # Batch mode lets later migrations ALTER tables on SQLite too.
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    # One Api per app: flask-smorest keeps the OpenAPI spec on the Api object,
    # and a module-level one would accumulate blueprints across test apps.
    api = make_api(app)
    for blueprint in _blueprints():
        api.register_blueprint(blueprint)
    if config.test_clock:  # absent otherwise: the route 404s like any unknown path
        api.register_blueprint(test_clock_blp)
    register_error_handlers(app)
    logs.init_request_log(app)
    init_guard(app)  # before the pages' hooks: nothing reads a request the guard has not checked

    register_pages(app)  # the web UI: pages, sign-in, CSRF, languages
    app.extensions["bpm_sso"] = configured_providers(config)  # the login page's single sign-on buttons
    if config.trusted_proxies:
        # The client's address, scheme and host as the trusted proxies saw them (X-Forwarded-*):
        # the per-address sign-in limit, the audit trail and the SSO callback URL depend on them.
        n = config.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)  # type: ignore[method-assign]

    if clock is None:
        # The test clock lives in the database, so every web and worker process shares it.
        clock = DatabaseClock(app) if config.test_clock else SystemClock()
    adapter.use_clock(clock.now)
    if jobs is None:
        jobs = (RqJobQueue(config.redis_url, config.queue_name) if config.redis_url
                else InProcessJobQueue(app, perform_in_app))
    calendar = BusinessCalendar.from_file(config.calendar_file) if config.calendar_file else BusinessCalendar.default()
    app.extensions["bpm"] = Deployment(config=config, clock=clock, jobs=jobs,
                                       evaluator=RestrictedEvaluator(helpers={"now": clock.now},
                                                                     budgets=script_budgets(config)),
                                       loaded_calendar=calendar, notifier=notifier or InAppNotifier(),
                                       calendar_probe=_probe_calendar_notices)
    # The official holiday notices stored in the database join the calendar now,
    # and again in any request or job that reads the calendar after another process imported one.
    with app.app_context():
        refresh_if_changed(app.extensions["bpm"], db.session)
    return app


def _probe_calendar_notices(rt: Deployment) -> None:
    refresh_if_changed(rt, db.session)


def script_budgets(config: Config) -> Budgets:
    """The deployment's budgets for diagram code (config.py), as the engine enforces them."""
    return Budgets(cpu_seconds=config.script_cpu_seconds, memory_bytes=config.script_memory_mb * 1024 * 1024,
                   max_value_length=config.script_max_value_length, max_int_bits=config.script_max_int_bits,
                   max_engine_steps=config.engine_max_steps, max_call_depth=config.engine_max_call_depth)


def _blueprints() -> list:
    return [health, identity, accounts, account_rules, modeling, instances, tasks, task_verbs, delegations, inbox_views,
            sla, notifications, audit, erp, messages, integration_log, external_tasks]
