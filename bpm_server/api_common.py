"""Pieces every API blueprint shares: paging arguments, list envelopes, moments in query strings."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields

from bpm_server.extensions import deployment

API_PREFIX = "/api/v1"


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
