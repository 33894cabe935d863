"""Configuration. This is the only module that reads the environment.

Everything the server needs to know about its deployment comes in through
``Config.from_env()``; tests build a ``Config`` directly (or override fields)
and hand it to ``create_app``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Config:
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'bpm.sqlite3'}"
    redis_url: str | None = None
    test_clock: bool = False
    erp_webhook_secret: str | None = None
    secret_key: str = "dev-only-secret-change-me"
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
    # Behind HTTPS: the session cookie is then only ever sent over TLS.
    secure_cookies: bool = False
    # API tokens issued without an explicit lifetime expire after this many
    # days; None (BPM_TOKEN_EXPIRY_DAYS unset or 0) means they never expire.
    token_expiry_days: int | None = None
    testing: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> "Config":
        """Read ``BPM_*`` variables; a ``.env`` file adds values the environment lacks."""
        values: dict[str, str] = {}
        if env_file and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        defaults = cls()
        return cls(
            database_url=values.get("BPM_DATABASE_URL") or defaults.database_url,
            redis_url=values.get("BPM_REDIS_URL") or None,
            test_clock=_flag(values.get("BPM_TEST_CLOCK")),
            erp_webhook_secret=values.get("BPM_ERP_WEBHOOK_SECRET") or None,
            secret_key=values.get("BPM_SECRET_KEY") or defaults.secret_key,
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
            secure_cookies=_flag(values.get("BPM_SECURE_COOKIES")),
            token_expiry_days=int(values.get("BPM_TOKEN_EXPIRY_DAYS") or 0) or None,
        )

    def but(self, **changes: Any) -> "Config":
        return replace(self, **changes)
