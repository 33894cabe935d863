"""Logging inbound integration requests (webhooks, messages) from a blueprint's request hooks.

Accepted requests are logged in their own transaction, so the entry and the
work commit together. Rejected ones (4xx) are logged after their transaction
is rolled back, in a transaction of their own: a refused delivery (a bad
signature, a stale timestamp) is exactly what auditors need to see.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from flask import Response, g, request
from flask_smorest import Blueprint

from bpm_server.database import db
from bpm_server.errors import UNAVAILABLE
from bpm_server.extensions import deployment
from bpm_server.integration_log import service
from bpm_server.request_guard import json_depth, scrubbed

log = logging.getLogger(__name__)
LOGGED_HEADERS = ("X-BPM-Timestamp", "X-BPM-Signature", "Content-Type", "User-Agent")


def log_inbound(blp: Blueprint, *, system: str, endpoints: set[str]) -> None:
    @blp.before_request
    def _start() -> None:
        if request.endpoint in endpoints:
            g.inbound_started = time.perf_counter()

    @blp.after_request
    def _log(response: Response) -> Response:
        if request.endpoint not in endpoints:
            return response
        rejected = response.status_code >= 400
        error = None
        if rejected:
            answer = response.get_json(silent=True) or {}
            # Scrubbed as the payload is: a message may quote what was refused.
            error = scrubbed(f"{answer.get('error', {}).get('code', '')}: {answer.get('error', {}).get('message', '')}")
        fields = dict(direction="inbound", system=system, endpoint=request.path,
                      operation=request.endpoint.rsplit(".", 1)[-1], status=str(response.status_code),
                      outcome="rejected" if rejected else g.get("inbound_outcome", "ok"),
                      duration_ms=(time.perf_counter() - g.get("inbound_started", time.perf_counter())) * 1000,
                      payload=_payload(), error=error, reference=g.get("inbound_reference"),
                      instance_id=g.get("inbound_instance_id") or None, now=deployment().clock.now())
        if rejected:
            db.session.rollback()
            try:
                service.record_apart(db.engine, **fields)
            except UNAVAILABLE as exc:  # the refusal stays what it was (often the 503 of this very outage)
                log.warning("inbound %s not logged, the database is unreachable: %s", request.path, exc)
        else:
            service.record(db.session, **fields)
        return response


def _payload() -> Any:
    # The body may be what the request guard refused (too deep, NUL, lone
    # surrogates): parse it only within the depth limit, and store it scrubbed.
    raw = request.get_data(cache=True)
    limit = deployment().config.max_json_depth
    try:
        if json_depth(raw, limit) > limit:
            raise ValueError("too deep to log parsed")
        body: Any = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError):
        body = raw[:2000].decode("utf-8", "replace")
    body = scrubbed(body)
    headers = {name: request.headers[name] for name in LOGGED_HEADERS if name in request.headers}
    return {"headers": scrubbed(headers), "body": body}
