"""Pieces every API blueprint shares: paging arguments, list envelopes, the JSON body reader."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

API_PREFIX = "/api/v1"


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=200))


def page_of(items: list[Any], total: int, page: int, per_page: int) -> dict[str, Any]:
    return {"items": items, "total": total, "page": page, "per_page": per_page}
