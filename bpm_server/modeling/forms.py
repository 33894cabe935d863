"""JSON Schema forms: checking a schema, validating a submission, and turning
jsonschema's errors into per-field messages a person can act on."""
from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError

EMPTY_FORM: dict[str, Any] = {"type": "object"}

_validators: dict[tuple[str, str], Draft202012Validator] = {}
_lock = threading.Lock()


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` is not a usable form schema, or None."""
    if not isinstance(schema, dict):
        return "a form must be a JSON object (a JSON Schema)"
    try:
        text = json.dumps(schema, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return "a form must be a JSON object (a JSON Schema)"
    return _checked(text)


@lru_cache(maxsize=1024)
def _checked(text: str) -> str | None:
    # Checking a schema against the metaschema costs ~20 ms per form, and every models
    # sync (each replica's start, each test's setup) checks the same forms again: the
    # answer depends on the schema's text alone, so it is kept per text.
    try:
        Draft202012Validator.check_schema(json.loads(text))
    except SchemaError as exc:
        return f"not a valid JSON Schema: {exc.message}"
    return None


def validator_for(cache_key: tuple[str, str], schema: Mapping[str, Any]) -> Draft202012Validator:
    """Compile once per (model version, form): forms of a version never change."""
    with _lock:
        validator = _validators.get(cache_key)
        if validator is None:
            validator = _validators[cache_key] = Draft202012Validator(schema, format_checker=FormatChecker())
        return validator


def field_errors(validator: Draft202012Validator, data: Any) -> dict[str, list[str]]:
    """``{"field.path": ["message", ...]}``; empty when the data is valid."""
    errors: dict[str, list[str]] = {}
    for error in validator.iter_errors(data):
        for path, message in _describe(error, data):
            errors.setdefault(path or "data", []).append(message)
    return errors


def _describe(error: ValidationError, data: Any) -> list[tuple[str, str]]:
    path = ".".join(str(p) for p in error.absolute_path)
    # jsonschema types these as possibly unset; on an error from iter_errors they are set.
    value: Any = error.validator_value
    schema: Any = error.schema
    found: Any = error.instance
    if error.validator == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        missing = [name for name in value if name not in instance]
        return [(_join(path, name), "this field is required") for name in missing]
    if error.validator == "additionalProperties":
        allowed = set((schema.get("properties") or {}).keys())
        extra = [k for k in (found or {}) if k not in allowed]
        return [(_join(path, name), "this field is not part of the form") for name in extra]
    if error.validator == "const":
        return [(path, f"must be {error.validator_value!r}")]
    if error.validator == "enum":
        return [(path, "must be one of: " + ", ".join(map(str, value)))]
    if error.validator == "format":
        return [(path, f"must be a valid {error.validator_value}")]
    return [(path, error.message)]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
