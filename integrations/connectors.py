"""Systems that service tasks call through the generic HTTP connector, declared in a
connectors file (``BPM_CONNECTORS_FILE``, else ``process_models/connectors.json``)::

    {"systems": {
        "crm": {"base_url": "https://crm.corp.example/api",
                "auth": {"type": "bearer", "token_env": "BPM_CONNECTOR_CRM_TOKEN"},
                "timeout_seconds": 5,
                "headers": {"X-Tenant": "bpm"},
                "operations": {"create_ticket": {"method": "POST", "path": "/tickets"},
                               "get_account": {"method": "GET", "path": "/accounts"}}}}}

``auth`` is ``{"type": "none"}`` (the default), ``{"type": "basic", "username":
..., "password_env": ...}``, ``{"type": "bearer", "token_env": ...}`` or
``{"type": "header", "name": ..., "value_env": ...}``. Secrets are never in the
file: it names environment variables (``BPM_CONNECTOR_*``), which the
deployment's configuration reads.

A service task calls ``<system>.<operation>`` (the operation's method and path;
its parameters are the JSON body, or the query of a GET), or, as spiff-arena
diagrams do, ``http/GetRequest`` (``PostRequest``, ``PutRequest``,
``PatchRequest``, ``DeleteRequest``) with parameters ``url``, ``headers``,
``params`` (the query) and ``body`` (or ``data``/``json``); the URL must lie
under a declared system's base URL, whose authentication it then gets. Every
request carries an ``Idempotency-Key`` that stays the same across retries. The
task's result variable gets ``{"http_status": <int>, "body": <JSON or text>}``.
"""
from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from integrations.base import CallResult
from integrations.http import MAX_ERROR_BODY, redact_url

HTTP_OPERATIONS = {"http/GetRequest": "GET", "http/PostRequest": "POST", "http/PutRequest": "PUT",
                   "http/PatchRequest": "PATCH", "http/DeleteRequest": "DELETE", "http/HeadRequest": "HEAD"}
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}
RESERVED = {"erp", "http", "external"}  # built in, or the prefixes of the generic operations


class ConnectorConfigError(ValueError):
    """The connectors file is unreadable, or declares something incomplete."""


@dataclass(frozen=True)
class Operation:
    method: str
    path: str


@dataclass
class HttpConnector:
    """One declared system (a ``ServiceAdapter``)."""

    system: str
    base_url: str
    auth_headers: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    operations: dict[str, Operation] = field(default_factory=dict)

    def owns(self, url: str) -> bool:
        return url == self.base_url or url.startswith((self.base_url + "/", self.base_url + "?"))

    def call(self, operation: str, params: Mapping[str, Any], *, idempotency_key: str,
             now: datetime) -> CallResult:
        if operation in HTTP_OPERATIONS:
            method, url = HTTP_OPERATIONS[operation], str(params.get("url") or "")
            query = params.get("params") or {}
            body = next((params[k] for k in ("body", "json", "data") if params.get(k) is not None), None)
            extra = {str(k): str(v) for k, v in (params.get("headers") or {}).items()}
            if not self.owns(url):
                return _refused(operation, params, f"{url!r} is not under {self.system}'s base URL {self.base_url}")
        elif operation in self.operations:
            declared = self.operations[operation]
            method, url, extra = declared.method, self.base_url + declared.path, {}
            query = dict(params) if method in ("GET", "HEAD", "DELETE") else {}
            body = None if query else dict(params)
        else:
            return _refused(f"{self.system}.{operation}", params,
                            f"{self.system} declares no operation {operation!r} "
                            f"(declared: {', '.join(sorted(self.operations)) or 'none'})")
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query, doseq=True)
        headers = {**self.headers, **extra, **self.auth_headers, "Idempotency-Key": idempotency_key}
        return send(method, url, body, headers, self.timeout, request=dict(params))


def _refused(endpoint: str, params: Mapping[str, Any], error: str) -> CallResult:
    return CallResult(ok=False, endpoint=endpoint, status="refused", duration_ms=0.0, request=dict(params),
                      error=error)


def send(method: str, url: str, body: Any, headers: Mapping[str, str], timeout: float, *,
         request: Any) -> CallResult:
    """One HTTP request; a 2xx answer is ok with ``{"http_status", "body"}``, anything else a failure."""
    data = None if body is None else json.dumps(body, separators=(",", ":"), default=str).encode()
    all_headers = dict(headers)
    if data is not None:
        all_headers.setdefault("Content-Type", "application/json")
    endpoint, started = f"{method} {redact_url(url)}", time.perf_counter()

    def result(ok: bool, status: str, response: Any = None, error: str | None = None) -> CallResult:
        return CallResult(ok=ok, endpoint=endpoint, status=status, duration_ms=(time.perf_counter() - started) * 1000,
                          request=request, response=response, error=error)

    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=all_headers),
                                    timeout=timeout) as answer:
            status, raw = answer.status, answer.read(1024 * 1024)
    except urllib.error.HTTPError as exc:
        snippet = exc.read(MAX_ERROR_BODY).decode("utf-8", "replace") if exc.fp else ""
        return result(False, str(exc.code), error=f"HTTP {exc.code}: {snippet}".strip())
    except TimeoutError:
        return result(False, "timeout", error=f"no answer within {timeout:g} s")
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            return result(False, "timeout", error=f"no answer within {timeout:g} s")
        return result(False, "unreachable", error=f"cannot connect: {exc.reason}")
    except (OSError, ValueError) as exc:
        return result(False, "error", error=f"{exc.__class__.__name__}: {exc}")
    text = raw.decode("utf-8", "replace")
    try:
        parsed: Any = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        parsed = text
    return result(True, str(status), response={"http_status": status, "body": parsed})


def load_connectors(path: Path, secrets: Mapping[str, str]) -> dict[str, HttpConnector]:
    try:
        document = json.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConnectorConfigError(f"{path}: cannot read the connectors file ({exc})") from None
    systems = document.get("systems") if isinstance(document, dict) else None
    if not isinstance(systems, dict):
        raise ConnectorConfigError(f"{path}: expected an object with a 'systems' object")
    return {name: _connector(path, name, spec, secrets) for name, spec in systems.items()}


def _connector(path: Path, name: str, spec: Any, secrets: Mapping[str, str]) -> HttpConnector:
    where = f"{path}: system {name!r}"
    if name in RESERVED or not name.isidentifier() or not name.islower():
        raise ConnectorConfigError(f"{where}: the name must be lower-case letters, digits and '_', "
                                   f"and not one of {', '.join(sorted(RESERVED))}")
    if not isinstance(spec, dict) or not isinstance(spec.get("base_url"), str) \
            or not spec["base_url"].startswith(("http://", "https://")):
        raise ConnectorConfigError(f"{where}: needs a 'base_url' starting with http:// or https://")
    operations = {}
    for op_name, op in (spec.get("operations") or {}).items():
        if not isinstance(op, dict) or str(op.get("method", "POST")).upper() not in METHODS \
                or not str(op.get("path", "")).startswith("/"):
            raise ConnectorConfigError(f"{where}: operation {op_name!r} needs a 'method' "
                                       f"({', '.join(sorted(METHODS))}) and a 'path' starting with '/'")
        operations[op_name] = Operation(str(op.get("method", "POST")).upper(), op["path"])
    try:
        timeout = float(spec.get("timeout_seconds", 10))
    except (TypeError, ValueError):
        raise ConnectorConfigError(f"{where}: 'timeout_seconds' must be a number") from None
    return HttpConnector(system=name, base_url=spec["base_url"].rstrip("/"),
                         auth_headers=_auth(where, spec.get("auth") or {"type": "none"}, secrets),
                         headers={str(k): str(v) for k, v in (spec.get("headers") or {}).items()},
                         timeout=timeout, operations=operations)


def _auth(where: str, auth: Any, secrets: Mapping[str, str]) -> dict[str, str]:
    kind = auth.get("type", "none") if isinstance(auth, dict) else None

    def secret(key: str) -> str:
        env = auth.get(key)
        if not isinstance(env, str) or env not in secrets:
            raise ConnectorConfigError(f"{where}: auth {kind} needs '{key}' naming a set environment variable "
                                       f"(BPM_CONNECTOR_...); {env!r} is not set")
        return secrets[env]

    if kind == "none":
        return {}
    if kind == "basic":
        token = base64.b64encode(f"{auth.get('username', '')}:{secret('password_env')}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    if kind == "bearer":
        return {"Authorization": f"Bearer {secret('token_env')}"}
    if kind == "header" and isinstance(auth.get("name"), str):
        return {auth["name"]: secret("value_env")}
    raise ConnectorConfigError(f"{where}: auth type must be none, basic, bearer or header (with a 'name')")
