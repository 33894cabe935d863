"""Pieces every API blueprint shares: the Api and its error schema, paging arguments, list envelopes,
moments in query strings."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from flask_smorest import Api
from marshmallow import Schema, ValidationError, fields, validate

from bpm_server.errors import ErrorBodySchema
from bpm_server.extensions import deployment
from bpm_server.request_guard import MAX_PATH_INTEGER

API_PREFIX = "/api/v1"
# A version number (or other stored number) a body names: past the INTEGER column, no row has it,
# and the database would refuse the comparison itself.
STORED_NUMBER = validate.Range(min=1, max=MAX_PATH_INTEGER)


def _within(limit_name: str) -> Any:
    """A validator: at least 1 and at most the deployment's ``Config.<limit_name>``."""
    def validate(value: int) -> None:
        limit = getattr(deployment().config, limit_name)
        if value < 1:
            raise ValidationError("must be at least 1")
        if value > limit:
            raise ValidationError(f"must be at most {limit} (the limit {limit_name})")

    return validate


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=_within("max_page_number"),
                          metadata={"minimum": 1, "description": "at most the limit max_page_number"})
    per_page = fields.Integer(load_default=20, validate=_within("max_page_size"),
                              metadata={"minimum": 1, "maximum": 200,
                                        "description": "at most the limit max_page_size (200 unless configured)"})


class Moment(fields.AwareDateTime):
    """An ISO 8601 moment with its offset that is also a moment in UTC: an
    offset can push 9999-12-31 past the last representable day."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("is outside the range of moments this server can store") from None


def page_of(items: list[Any], total: int, page: int, per_page: int) -> dict[str, Any]:
    return {"items": items, "total": total, "page": page, "per_page": per_page}


class _ErrorBodies(MarshmallowPlugin):
    """An error response a view documents with a description only (``@blp.alt_response(409, ...)``)
    gets the body every error has, so the document says what a client receives and checkers can hold
    the server to it."""

    def operation_helper(self, path: str | None = None, operations: dict | None = None, **kwargs: Any) -> None:
        for operation in (operations or {}).values():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                if (isinstance(response, dict) and "content" not in response
                        and (status == "default" or int(status) >= 400)):
                    response["content"] = {"application/json": {"schema": ErrorBodySchema}}
        super().operation_helper(path=path, operations=operations, **kwargs)


class BpmApi(Api):
    """flask-smorest's Api, writing each blueprint's part of the OpenAPI document when the
    document is first read rather than when the blueprint is registered: describing some 170
    routes was over half of the cost of creating an app, which every gunicorn worker and
    every test pays, while the document is read by few (``/api/v1/openapi.json``)."""

    # What bpm_server.errors writes for every error (flask-smorest's own shape is never sent).
    ERROR_SCHEMA = ErrorBodySchema

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._undocumented: list[tuple[Any, str, Any]] = []
        self._spec: Any = None
        super().__init__(*args, **kwargs)

    @property
    def spec(self) -> Any:
        pending, self._undocumented = self._undocumented, []
        for blp, name, parameters in pending:  # in registration order, as flask-smorest would have
            blp.register_views_in_doc(self, self._app, self._spec, name=name, parameters=parameters)
            self._spec.tag({"name": name, "description": blp.description})
        return self._spec

    @spec.setter
    def spec(self, value: Any) -> None:
        self._spec = value

    def register_blueprint(self, blp: Any, *, parameters: Any = None, **options: Any) -> None:
        # Api.register_blueprint without the documentation step, which ``spec`` does later.
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._undocumented.append((blp, name, parameters))


def make_api(app: Flask) -> Api:
    return BpmApi(app, spec_kwargs={"marshmallow_plugin": _ErrorBodies()})
