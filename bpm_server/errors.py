"""Errors users see, and how they become JSON.

Services raise ``AppError`` subclasses; the app factory turns them (and any
HTTP error from Flask or webargs) into ``{"error": {"code", "message", "details"}}``
with the status API.md prescribes. Nothing here ever shows a traceback.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from marshmallow import Schema, fields
from sqlalchemy.exc import DisconnectionError, IntegrityError, InterfaceError, OperationalError, PendingRollbackError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from bpm_server.database import db

log = logging.getLogger(__name__)


class AppError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class Unauthenticated(AppError):
    status, code = 401, "unauthenticated"


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    status, code = 409, "conflict"


class Invalid(AppError):
    status, code = 422, "invalid"


class TooLarge(AppError):
    status, code = 413, "too_large"


class TooManyAttempts(AppError):
    status, code = 429, "too_many_attempts"

    def __init__(self, message: str, *, retry_after_seconds: int, code: str | None = None) -> None:
        super().__init__(message, code=code, details={"retry_after_seconds": retry_after_seconds})
        self.retry_after_seconds = retry_after_seconds


class ErrorSchema(Schema):
    """What ``error_body`` writes, for the OpenAPI document (every error response names it)."""

    code = fields.String(required=True, metadata={"description": "stable, for programs (API.md lists them)"})
    message = fields.String(required=True, metadata={"description": "for people, in the caller's language"})
    details = fields.Raw(metadata={"description": "per field messages, or the limit and its value"})


class ErrorBodySchema(Schema):
    error = fields.Nested(ErrorSchema, required=True)


def error_body(status: int, code: str, message: str, details: Any = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


# What the database driver raises when it cannot be reached or the connection
# was lost mid-request (a restart, a failover, an exhausted pool): the request
# did nothing lasting, and trying again shortly is the right thing to do.
UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


def unavailable_response(retry_after_seconds: int) -> Response:
    """503 with Retry-After: JSON under /api, a page of its own (that reads nothing from the database) elsewhere."""
    if request.path.startswith("/api/"):
        response = jsonify(error_body(503, "database_unavailable",
                                      f"The database is unreachable; try again in {retry_after_seconds} s.",
                                      {"retry_after_seconds": retry_after_seconds}))
    else:
        response = Response(render_template("errors/unavailable.html", retry_after_seconds=retry_after_seconds),
                            mimetype="text/html")
    response.status_code = 503
    response.headers["Retry-After"] = str(retry_after_seconds)
    return response


def _retry_after(app: Flask) -> int:
    runtime = app.extensions.get("bpm")
    return runtime.config.retry_after_seconds if runtime else 5


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def _app_error(exc: AppError) -> tuple[Response, int]:
        return jsonify(error_body(exc.status, exc.code, exc.message, exc.details)), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        details = None
        message = exc.description or exc.name
        data = getattr(exc, "data", None) or {}
        # webargs/flask-smorest put marshmallow's per-field messages here.
        if "messages" in data:
            details = data["messages"]
            # {"json": {...}} -> {...}: the location is noise for a client.
            if isinstance(details, dict) and len(details) == 1:
                details = next(iter(details.values()))
            message = "The request is invalid: " + "; ".join(_flatten(details))
        code = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                409: "conflict", 413: "too_large", 415: "unsupported_media_type",
                422: "invalid"}.get(exc.code or 500, "bad_request")
        status = exc.code or 500
        if status == 400:  # malformed requests are invalid input in this API
            status, code = 422, "invalid"
        if status == 413:  # a body without Content-Length that outgrew the limit while read
            runtime = app.extensions.get("bpm")
            limit = runtime.config.max_body_bytes if runtime else app.config.get("MAX_CONTENT_LENGTH")
            code, details = "body_too_large", {"limit": "max_body_bytes", "max": limit}
            message = f"the request body is larger than the limit max_body_bytes ({limit} bytes)"
        return jsonify(error_body(status, code, message, details)), status

    @app.after_request
    def _finish_transaction(response: Response) -> Response:
        # The request owns the transaction: services flush, this commits.
        try:
            if response.status_code >= 400:
                # Nothing to keep. The rollback may meet the lost connection that made this a
                # 503 (PostgreSQL stopping): that must not turn the answer into a 500.
                _forget_transaction(db)
                return response
            db.session.commit()
        except (StaleDataError, IntegrityError) as exc:
            db.session.rollback()
            log.info("commit conflict: %s", exc)
            # An after_request hook must hand back a Response: a (body, status) tuple is not converted here.
            conflict = jsonify(error_body(409, "concurrent_change", "Someone else changed this at the same moment; "
                                                                    "reload and try again."))
            conflict.status_code = 409
            return conflict
        except (*UNAVAILABLE, PendingRollbackError) as exc:
            # The commit (or the rollback) lost the database: nothing was saved. PendingRollbackError:
            # the connection was lost earlier in the request, under code that carried on (PostgreSQL
            # stopping mid-request), and the commit is the first to hear of it.
            log.warning("database unavailable at commit: %s", exc)
            _forget_transaction(db)
            return unavailable_response(_retry_after(app))
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(DisconnectionError)
    @app.errorhandler(PoolTimeout)
    def _unavailable(exc: Exception) -> Response:
        log.warning("database unavailable: %s", exc)
        _forget_transaction(db)
        return unavailable_response(_retry_after(app))

    @app.errorhandler(PendingRollbackError)
    def _invalidated(exc: PendingRollbackError) -> Response | tuple[Response, int]:
        # "Can't reconnect until invalid transaction is rolled back": the connection was lost
        # earlier in this request under code that carried on (a probe that tolerates a failed
        # read), and this query is the next to use it. The database is away, not the code wrong.
        if "reconnect" in str(exc):
            return _unavailable(exc)
        return _unexpected(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.error("unhandled error", exc_info=exc)
        return jsonify(error_body(500, "internal_error", "An internal error occurred; it has been logged.")), 500


def _forget_transaction(db: Any) -> None:
    # The connection may be gone already; the pool replaces it on the next checkout.
    with contextlib.suppress(*UNAVAILABLE):
        db.session.rollback()


def _flatten(details: Any, prefix: str = "") -> list[str]:
    if isinstance(details, dict):
        out: list[str] = []
        for key, value in details.items():
            out.extend(_flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(details, list):
        leaves = [f"{prefix.rstrip('.')}: {m}" if prefix else str(m) for m in details
                  if not isinstance(m, (dict, list))]
        return leaves + [line for m in details if isinstance(m, (dict, list)) for line in _flatten(m, prefix)]
    return [f"{prefix.rstrip('.')}: {details}"]
