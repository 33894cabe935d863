"""Posting JSON over HTTP with the standard library, turning every failure into a ``CallResult``."""
from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from integrations.base import CallResult

SECRET_QUERY_KEYS = {"key", "access_token", "token", "sign", "signature", "secret"}
MAX_ERROR_BODY = 300


def redact_url(url: str) -> str:
    """The URL without credentials: robot URLs carry their token in the query."""
    parts = urlsplit(url)
    query = [(k, "***" if k.lower() in SECRET_QUERY_KEYS else v) for k, v in parse_qsl(parts.query)]
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    path = parts.path
    # Feishu and generic hooks put the token in the last path segment.
    if "/hook/" in path:
        path = path.rsplit("/", 1)[0] + "/***"
    return urlunsplit((parts.scheme, netloc, path, urlencode(query), ""))


def post_json(url: str, payload: Any, *, headers: Mapping[str, str] | None = None, timeout: float = 10.0,
              body: bytes | None = None) -> CallResult:
    """POST ``payload`` as JSON; 2xx with a JSON body is ok, anything else is a failure with a reason."""
    data = body if body is not None else json.dumps(payload, separators=(",", ":")).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    endpoint = redact_url(url)
    started = time.perf_counter()

    def result(ok: bool, status: str, response: Any = None, error: str | None = None) -> CallResult:
        return CallResult(ok=ok, endpoint=endpoint, status=status, duration_ms=(time.perf_counter() - started) * 1000,
                          request=payload, response=response, error=error)

    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status, raw = answer.status, answer.read(1024 * 1024)
    except urllib.error.HTTPError as exc:
        snippet = exc.read(MAX_ERROR_BODY).decode("utf-8", "replace") if exc.fp else ""
        return result(False, str(exc.code), error=f"HTTP {exc.code}: {snippet}".strip())
    except TimeoutError:
        return result(False, "timeout", error=f"no answer within {timeout:g} s")
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return result(False, "timeout", error=f"no answer within {timeout:g} s")
        return result(False, "unreachable", error=f"cannot connect: {reason}")
    except (OSError, ValueError) as exc:  # reset connections, malformed URLs, bad status lines
        return result(False, "error", error=f"{exc.__class__.__name__}: {exc}")
    try:
        parsed = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return result(False, str(status), error=f"HTTP {status} but the body is not JSON: "
                                                f"{raw[:MAX_ERROR_BODY].decode('utf-8', 'replace')!r}")
    return result(True, str(status), response=parsed)
