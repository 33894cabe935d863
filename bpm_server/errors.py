"""Errors users see, and how they become JSON.

Services raise ``AppError`` subclasses; the app factory turns them (and any
HTTP error from Flask or webargs) into ``{"error": {"code", "message", "details"}}``
with the status API.md prescribes. Nothing here ever shows a traceback.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

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


class TooManyAttempts(AppError):
    status, code = 429, "too_many_attempts"

    def __init__(self, message: str, *, retry_after_seconds: int, code: str | None = None) -> None:
        super().__init__(message, code=code, details={"retry_after_seconds": retry_after_seconds})
        self.retry_after_seconds = retry_after_seconds


def error_body(status: int, code: str, message: str, details: Any = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def _app_error(exc: AppError) -> ResponseReturnValue:
        return jsonify(error_body(exc.status, exc.code, exc.message, exc.details)), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> ResponseReturnValue:
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
        return jsonify(error_body(status, code, message, details)), status

    @app.after_request
    def _finish_transaction(response: Response) -> ResponseReturnValue:
        # The request owns the transaction: services flush, this commits.
        from sqlalchemy.exc import IntegrityError
        from sqlalchemy.orm.exc import StaleDataError

        from bpm_server.database import db

        if response.status_code >= 400:
            db.session.rollback()
            return response
        try:
            db.session.commit()
        except (StaleDataError, IntegrityError) as exc:
            db.session.rollback()
            log.info("commit conflict: %s", exc)
            return jsonify(error_body(409, "concurrent_change", "Someone else changed this at the same moment; "
                                                                "reload and try again.")), 409
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        log.error("unhandled error", exc_info=exc)
        return jsonify(error_body(500, "internal_error", "An internal error occurred; it has been logged.")), 500


def _flatten(details: Any, prefix: str = "") -> list[str]:
    if isinstance(details, dict):
        out: list[str] = []
        for key, value in details.items():
            out.extend(_flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(details, list):
        return [f"{prefix.rstrip('.')}: {m}" if prefix else str(m)
                for m in details if not isinstance(m, (dict, list))] + \
            [line for m in details if isinstance(m, (dict, list)) for line in _flatten(m, prefix)]
    return [f"{prefix.rstrip('.')}: {details}"]
