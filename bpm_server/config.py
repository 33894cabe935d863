"""Configuration. This is the only module that reads the environment.

Everything the server needs to know about its deployment comes in through
``Config.from_env()``; tests build a ``Config`` directly (or override fields)
and hand it to ``create_app``.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _positive(values: Mapping[str, str], name: str, kind: type, default: Any) -> Any:
    """A budget from the environment: unset or empty gives the default; anything but a positive number is refused."""
    raw = (values.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive {'integer' if kind is int else 'number'}, not {raw!r}") from None
    if not value > 0:
        raise ValueError(f"{name} must be positive, not {raw!r}")
    return value


def _log_level(raw: str | None) -> str:
    value = (raw or "").strip().upper() or "INFO"
    if value not in LOG_LEVELS:
        raise ValueError(f"BPM_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {raw!r}")
    return value


def _daily_at(raw: str | None, default: time | None) -> time | None:
    """BPM_ACCOUNTS_DAILY_AT: a local time of day "HH:MM" (the business calendar's time zone), or "off"."""
    value = (raw or "").strip().lower()
    if not value:
        return default
    if value == "off":
        return None
    hours, _, minutes = value.partition(":")
    if (len(hours), len(minutes)) == (2, 2) and hours.isdigit() and minutes.isdigit() \
            and int(hours) < 24 and int(minutes) < 60:
        return time(int(hours), int(minutes))
    raise ValueError(f'BPM_ACCOUNTS_DAILY_AT must be a time of day "HH:MM" (e.g. "06:00") or "off", not {raw!r}')


def _json_mapping(values: Mapping[str, str], name: str) -> dict[str, Any]:
    raw = (values.get(name) or "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object, e.g. {{\"group\": ...}}")
    return value


@dataclass(frozen=True)
class SsoMapping:
    """How a signed-in person's groups (OIDC groups claim; WeCom department ids) become
    roles and a department. Groups that map to nothing are ignored; no role: ``default_roles``."""

    group_roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    group_departments: Mapping[str, str] = field(default_factory=dict)
    default_roles: tuple[str, ...] = ("staff",)


@dataclass(frozen=True)
class OidcSettings:
    issuer: str  # discovery at <issuer>/.well-known/openid-configuration
    client_id: str
    client_secret: str
    scopes: str = "openid profile email"
    groups_claim: str = "groups"
    username_claim: str = "preferred_username"  # falls back to email, then sub
    label: str | None = None  # the button's words; None: 使用单点登录 / "Use single sign-on"


@dataclass(frozen=True)
class WorkplaceAppSettings:
    """DingTalk, WeCom or Feishu login: the app's id and secret from the platform's
    developer console; ``agent_id`` for WeCom only. ``base_urls`` overrides the
    platform's hosts (a private deployment, Lark instead of Feishu, a test's fake)."""

    kind: str  # dingtalk, wecom or feishu
    client_id: str
    client_secret: str
    agent_id: str | None = None
    base_urls: Mapping[str, str] = field(default_factory=dict)


def _sso(values: Mapping[str, str]) -> tuple[OidcSettings | None, tuple[WorkplaceAppSettings, ...], SsoMapping]:
    oidc = None
    if values.get("BPM_OIDC_ISSUER"):
        missing = [n for n in ("BPM_OIDC_CLIENT_ID", "BPM_OIDC_CLIENT_SECRET") if not values.get(n)]
        if missing:
            raise ValueError(f"BPM_OIDC_ISSUER is set but {', '.join(missing)} is not")
        oidc = OidcSettings(issuer=values["BPM_OIDC_ISSUER"].rstrip("/"), client_id=values["BPM_OIDC_CLIENT_ID"],
                            client_secret=values["BPM_OIDC_CLIENT_SECRET"],
                            scopes=values.get("BPM_OIDC_SCOPES") or "openid profile email",
                            groups_claim=values.get("BPM_OIDC_GROUPS_CLAIM") or "groups",
                            username_claim=values.get("BPM_OIDC_USERNAME_CLAIM") or "preferred_username",
                            label=values.get("BPM_OIDC_LABEL") or None)
    apps = []
    for kind, id_name, secret_name in (("dingtalk", "BPM_DINGTALK_CLIENT_ID", "BPM_DINGTALK_CLIENT_SECRET"),
                                       ("wecom", "BPM_WECOM_CORP_ID", "BPM_WECOM_SECRET"),
                                       ("feishu", "BPM_FEISHU_APP_ID", "BPM_FEISHU_APP_SECRET")):
        if values.get(id_name):
            if not values.get(secret_name):
                raise ValueError(f"{id_name} is set but {secret_name} is not")
            base = values.get(f"BPM_{kind.upper()}_BASE_URL")
            apps.append(WorkplaceAppSettings(kind=kind, client_id=values[id_name], client_secret=values[secret_name],
                                             agent_id=values.get("BPM_WECOM_AGENT_ID") if kind == "wecom" else None,
                                             base_urls={"all": base} if base else {}))
    if any(a.kind == "wecom" and not a.agent_id for a in apps):
        raise ValueError("BPM_WECOM_CORP_ID is set but BPM_WECOM_AGENT_ID is not")
    roles = {str(group): tuple([names] if isinstance(names, str) else names)
             for group, names in _json_mapping(values, "BPM_SSO_GROUP_ROLES").items()}
    departments = {str(group): str(code) for group, code in _json_mapping(values, "BPM_SSO_GROUP_DEPARTMENTS").items()}
    default_roles = tuple(r.strip() for r in (values.get("BPM_SSO_DEFAULT_ROLES") or "staff").split(",") if r.strip())
    return oidc, tuple(apps), SsoMapping(group_roles=roles, group_departments=departments,
                                         default_roles=default_roles)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# The limits, each also settable as BPM_<NAME> (e.g. BPM_MAX_BODY_BYTES).
LIMITS = ("max_body_bytes", "max_json_depth", "max_string_chars", "max_process_data_bytes", "max_page_size",
          "max_page_number", "retry_after_seconds")


@dataclass(frozen=True)
class Config:
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'bpm.sqlite3'}"
    redis_url: str | None = None
    test_clock: bool = False
    # How long one POST /api/v1/test/clock fires timers before handing the rest of
    # the advance to a job (gunicorn kills a request at 30 s).
    test_clock_request_seconds: float = 10.0
    erp_webhook_secret: str | None = None
    secret_key: str = "dev-only-secret-change-me"
    # Signs breach-log checkpoints kept outside the database; derived from the
    # secret key when unset (set it so rotating the secret keeps old checkpoints valid).
    checkpoint_key: str | None = None
    # Who an escalation rung goes to when its own target is nobody (a department
    # without a lead, an account without a sponsor): user:<username> or role:<role>.
    # Unset: such a rung acts on nobody (it is still logged and flagged in /api/v1/health).
    escalation_fallback: str | None = None
    models_dir: Path = PROJECT_ROOT / "process_models"
    forms_dir: Path = PROJECT_ROOT / "forms"
    calendar_file: Path | None = None
    # Redis key prefix and rq queue name; tests use their own so they never
    # touch a real deployment's queue on the same Redis.
    queue_name: str = "bpm"
    # ERP integration: unset base URL = no ERP in this deployment (service tasks
    # for the ERP complete as "skipped" and the process goes on without it).
    erp_base_url: str | None = None
    erp_outbound_secret: str | None = None  # signs our calls to the ERP like the ERP signs its webhook
    erp_timeout_seconds: float = 10.0
    # Outbound calls and notification deliveries: attempts and the first back-off (doubled each time).
    outbound_max_attempts: int = 5
    outbound_backoff_seconds: int = 30
    channels_file: Path | None = None  # notification channels and who gets which (JSON)
    # Systems service tasks call through the HTTP connector (JSON); unset: models_dir/connectors.json
    # if there is one. The file names its secrets by environment variable (BPM_CONNECTOR_*), read here.
    connectors_file: Path | None = None
    connector_secrets: Mapping[str, str] = field(default_factory=dict)
    # Behind HTTPS: the session cookie is then only ever sent over TLS.
    secure_cookies: bool = False
    # Budgets of diagram code, so one process owner's diagram cannot hold the
    # server for everyone: per evaluation of a script, condition or expression
    # (CPU seconds, MB of memory growth, elements of a str/list/tuple, bits of
    # an int) and per engine command (engine steps, nested call activities).
    script_cpu_seconds: float = 1.0
    script_memory_mb: int = 256
    script_max_value_length: int = 1_000_000
    script_max_int_bits: int = 100_000
    engine_max_steps: int = 10_000
    engine_max_call_depth: int = 20
    # Limits on what one request may bring (checked by bpm_server.request_guard
    # and the paging arguments); each is refused with 413 or 422 naming it.
    max_body_bytes: int = 10 * 1024 * 1024
    max_json_depth: int = 32
    # Per string (a JSON value or key, a query or form value, a path parameter).
    # A BPMN diagram sent as JSON is one string, hence not smaller.
    max_string_chars: int = 2_000_000
    # The whole process data of one instance, as JSON (start data, submissions, messages).
    max_process_data_bytes: int = 1024 * 1024
    max_page_size: int = 200
    max_page_number: int = 100_000
    # Seconds a client is told to wait (Retry-After) when the database is unreachable.
    retry_after_seconds: int = 5
    # API tokens issued without an explicit lifetime expire after this many
    # days; None (BPM_TOKEN_EXPIRY_DAYS unset or 0) means they never expire.
    token_expiry_days: int | None = None
    # Public third-party BPMN files for the compatibility table and its tests
    # (kept outside the repository); None: not on this machine.
    bpmn_corpus: Path | None = None
    # Task attachments (tasks.comments): bytes per file (413 above), and the
    # content types accepted (415 otherwise): office documents, PDF, images, text.
    attachment_max_bytes: int = 5 * 1024 * 1024
    attachment_types: tuple[str, ...] = (
        "application/pdf", "image/png", "image/jpeg", "text/plain", "text/csv", "application/zip",
        "application/msword", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation")
    # 催办: one person urges one task at most ``urge_limit`` times per ``urge_window_seconds`` (429 beyond).
    urge_limit: int = 1
    urge_window_seconds: int = 3600
    # The server's log level (BPM_LOG_LEVEL: DEBUG, INFO, WARNING or ERROR). At INFO it
    # writes one line per request and per job; the engine's own chatter appears only at DEBUG.
    log_level: str = "INFO"
    # Behind a reverse proxy: how many proxies in front of the server set X-Forwarded-*
    # (Werkzeug's ProxyFix trusts that many hops). 0: the headers are ignored, since a
    # client could otherwise claim any address and slip past the per-address sign-in limit.
    trusted_proxies: int = 0
    # Failed sign-ins: per username (anyone can lock a known name out for the window,
    # hence also) per client address, within sign_in_window_seconds.
    sign_in_attempts: int = 5
    sign_in_address_attempts: int = 20
    sign_in_window_seconds: int = 900
    # Single sign-on (docs/identity.md): OpenID Connect, DingTalk, WeCom, Feishu.
    oidc: OidcSettings | None = None
    workplace_apps: tuple[WorkplaceAppSettings, ...] = ()
    sso_mapping: SsoMapping = field(default_factory=SsoMapping)
    # When the accounts' daily evaluation (health history, rules) runs, in the business
    # calendar's time zone: a durable timer armed each day by the timer pump (and the test
    # clock). None (BPM_ACCOUNTS_DAILY_AT=off): nothing runs it but ``bpm-server accounts daily``.
    accounts_daily_at: time | None = time(6, 0)
    testing: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Config:
        """Read ``BPM_*`` variables; a ``.env`` file adds values the environment lacks."""
        values: dict[str, str] = {}
        if env_file and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        defaults = cls()
        # Typed Any: mypy would check these ints against every remaining field of Config.
        limits: dict[str, Any] = {name: int(values[f"BPM_{name.upper()}"]) for name in LIMITS
                                  if values.get(f"BPM_{name.upper()}")}
        oidc, workplace_apps, sso_mapping = _sso(values)
        trusted = (values.get("BPM_TRUSTED_PROXIES") or "0").strip()
        if not trusted.isdigit():
            raise ValueError(f"BPM_TRUSTED_PROXIES must be a whole number of proxies, not {trusted!r}")
        return cls(
            trusted_proxies=int(trusted), oidc=oidc, workplace_apps=workplace_apps, sso_mapping=sso_mapping,
            sign_in_attempts=_positive(values, "BPM_SIGN_IN_ATTEMPTS", int, defaults.sign_in_attempts),
            sign_in_address_attempts=_positive(values, "BPM_SIGN_IN_ADDRESS_ATTEMPTS", int,
                                               defaults.sign_in_address_attempts),
            sign_in_window_seconds=_positive(values, "BPM_SIGN_IN_WINDOW_SECONDS", int,
                                             defaults.sign_in_window_seconds),
            database_url=values.get("BPM_DATABASE_URL") or defaults.database_url,
            redis_url=values.get("BPM_REDIS_URL") or None,
            test_clock=_flag(values.get("BPM_TEST_CLOCK")),
            test_clock_request_seconds=float(values.get("BPM_TEST_CLOCK_REQUEST_SECONDS")
                                             or defaults.test_clock_request_seconds),
            erp_webhook_secret=values.get("BPM_ERP_WEBHOOK_SECRET") or None,
            secret_key=values.get("BPM_SECRET_KEY") or defaults.secret_key,
            checkpoint_key=values.get("BPM_CHECKPOINT_KEY") or None,
            escalation_fallback=values.get("BPM_ESCALATION_FALLBACK") or None,
            models_dir=Path(values.get("BPM_MODELS_DIR") or defaults.models_dir),
            forms_dir=Path(values.get("BPM_FORMS_DIR") or defaults.forms_dir),
            calendar_file=Path(values["BPM_CALENDAR_FILE"]) if values.get("BPM_CALENDAR_FILE") else None,
            queue_name=values.get("BPM_QUEUE_NAME") or defaults.queue_name,
            erp_base_url=values.get("BPM_ERP_BASE_URL") or None,
            erp_outbound_secret=values.get("BPM_ERP_OUTBOUND_SECRET") or None,
            erp_timeout_seconds=float(values.get("BPM_ERP_TIMEOUT_SECONDS") or defaults.erp_timeout_seconds),
            outbound_max_attempts=int(values.get("BPM_OUTBOUND_MAX_ATTEMPTS") or defaults.outbound_max_attempts),
            outbound_backoff_seconds=int(values.get("BPM_OUTBOUND_BACKOFF_SECONDS")
                                         or defaults.outbound_backoff_seconds),
            channels_file=Path(values["BPM_CHANNELS_FILE"]) if values.get("BPM_CHANNELS_FILE") else None,
            connectors_file=Path(values["BPM_CONNECTORS_FILE"]) if values.get("BPM_CONNECTORS_FILE") else None,
            connector_secrets={k: v for k, v in values.items() if k.startswith("BPM_CONNECTOR_") and v},
            secure_cookies=_flag(values.get("BPM_SECURE_COOKIES")),
            script_cpu_seconds=_positive(values, "BPM_SCRIPT_CPU_SECONDS", float, defaults.script_cpu_seconds),
            script_memory_mb=_positive(values, "BPM_SCRIPT_MEMORY_MB", int, defaults.script_memory_mb),
            script_max_value_length=_positive(values, "BPM_SCRIPT_MAX_VALUE_LENGTH", int,
                                              defaults.script_max_value_length),
            script_max_int_bits=_positive(values, "BPM_SCRIPT_MAX_INT_BITS", int, defaults.script_max_int_bits),
            engine_max_steps=_positive(values, "BPM_ENGINE_MAX_STEPS", int, defaults.engine_max_steps),
            engine_max_call_depth=_positive(values, "BPM_ENGINE_MAX_CALL_DEPTH", int, defaults.engine_max_call_depth),
            **limits,
            token_expiry_days=int(values.get("BPM_TOKEN_EXPIRY_DAYS") or 0) or None,
            bpmn_corpus=Path(values["BPM_BPMN_CORPUS"]) if values.get("BPM_BPMN_CORPUS") else None,
            attachment_max_bytes=_positive(values, "BPM_ATTACHMENT_MAX_BYTES", int, defaults.attachment_max_bytes),
            attachment_types=tuple(t.strip() for t in values["BPM_ATTACHMENT_TYPES"].split(",") if t.strip())
            if values.get("BPM_ATTACHMENT_TYPES") else defaults.attachment_types,
            urge_limit=_positive(values, "BPM_URGE_LIMIT", int, defaults.urge_limit),
            urge_window_seconds=_positive(values, "BPM_URGE_WINDOW_SECONDS", int, defaults.urge_window_seconds),
            log_level=_log_level(values.get("BPM_LOG_LEVEL")),
            accounts_daily_at=_daily_at(values.get("BPM_ACCOUNTS_DAILY_AT"), defaults.accounts_daily_at),
        )

    def but(self, **changes: Any) -> Config:
        return replace(self, **changes)
