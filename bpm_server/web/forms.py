"""Stage forms in HTML: a stage's JSON Schema becomes a list of fields to
render, and a posted HTML form becomes the JSON object the server validates.

Only what the process forms use is supported: strings (text, long text, date,
URI, pattern, length limits), enums, booleans and integers. The server-side
JSON Schema check stays the judge; the HTML attributes and app.js only give
quicker feedback.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _

# Strings allowed to be this long or longer get a text area instead of a line.
LONG_TEXT = 5000


@dataclass
class FormField:
    name: str
    label: str
    description: str | None
    widget: str  # text, textarea, date, url, select, checkbox, number
    required: bool
    options: list[str] = field(default_factory=list)
    option_labels: dict[str, str] = field(default_factory=dict)  # value -> what the reader sees (enumNames)
    attrs: dict[str, Any] = field(default_factory=dict)  # HTML validation attributes
    value: Any = None
    errors: list[str] = field(default_factory=list)


def _widget(spec: Mapping[str, Any]) -> str:
    kind = spec.get("type")
    if "enum" in spec:
        return "select"
    if kind == "boolean":
        return "checkbox"
    if kind == "integer" or kind == "number":
        return "number"
    if spec.get("format") == "date":
        return "date"
    if spec.get("format") == "uri":
        return "url"
    if int(spec.get("maxLength") or LONG_TEXT) >= LONG_TEXT:
        return "textarea"
    return "text"


def _attrs(spec: Mapping[str, Any], widget: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if widget in ("text", "textarea", "url"):
        if spec.get("minLength"):
            attrs["minlength"] = spec["minLength"]
        if spec.get("maxLength"):
            attrs["maxlength"] = spec["maxLength"]
        if spec.get("pattern") and widget != "textarea":
            attrs["data-pattern"] = spec["pattern"]  # checked by stage-form.js (u flag), not the v-flag HTML attribute
    if widget == "number":
        attrs["step"] = "1" if spec.get("type") == "integer" else "any"
        for key, attr in (("minimum", "min"), ("maximum", "max")):
            if key in spec:
                attrs[attr] = spec[key]
    return attrs


def fields_of(schema: Mapping[str, Any], values: Mapping[str, Any] | None = None,
              errors: Mapping[str, list[str]] | None = None) -> list[FormField]:
    """The schema's properties in their written order, with values and server messages attached."""
    values, errors = values or {}, errors or {}
    required = set(schema.get("required") or [])
    fields = []
    for name, spec in (schema.get("properties") or {}).items():
        widget = _widget(spec)
        fields.append(FormField(
            name=name, label=str(spec.get("title") or name), description=spec.get("description"),
            widget=widget, required=name in required or spec.get("const") is True,
            options=[str(o) for o in spec.get("enum", [])], option_labels=_option_labels(spec),
            attrs=_attrs(spec, widget),
            value=values.get(name), errors=[translate_error(m, spec) for m in errors.get(name, [])]))
    return fields


def _option_labels(spec: Mapping[str, Any]) -> dict[str, str]:
    """``enumNames`` (the labels of an enum's values, in the order of ``enum``) by value."""
    names = spec.get("enumNames")
    if not isinstance(names, list):
        return {}
    return {str(value): str(name) for value, name in zip(spec.get("enum") or [], names, strict=False)}


def data_from_form(schema: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """The JSON object for a posted HTML form. Empty inputs are left out (so
    "required" speaks); unparsable numbers pass through as text for the
    server to reject with a message."""
    data: dict[str, Any] = {}
    for name, spec in (schema.get("properties") or {}).items():
        raw = form.get(f"field:{name}")
        kind = spec.get("type")
        if kind == "boolean":
            if raw is not None:
                data[name] = True
            continue
        if raw is None or raw.strip() == "":
            continue
        if kind in ("integer", "number") and "enum" not in spec:
            try:
                data[name] = int(raw) if kind == "integer" else float(raw)
            except ValueError:
                data[name] = raw
            continue
        data[name] = raw.strip() if spec.get("format") in ("date", "uri") else raw
    return data


def labels_of(schema: Mapping[str, Any] | None) -> dict[str, str]:
    return {name: str(spec.get("title") or name) for name, spec in ((schema or {}).get("properties") or {}).items()}


_KNOWN = {
    "this field is required": lambda: _("This field is required."),
    "this field is not part of the form": lambda: _("This field is not part of the form."),
    "must be a valid date": lambda: _("Enter a valid date (YYYY-MM-DD)."),
    "must be a valid uri": lambda: _("Enter a valid link, e.g. https://…"),
    "must be True": lambda: _("This must be ticked."),
}


def translate_error(message: str, spec: Mapping[str, Any] | None = None) -> str:
    """The server's per-field message in the page's language when it is a known one."""
    known = _KNOWN.get(message)
    if known:
        return known()
    if message.startswith("must be one of: "):
        return _("Choose one of: %(options)s", options=message.removeprefix("must be one of: "))
    spec = spec or {}
    if "is too short" in message and spec.get("minLength"):
        return _("At least %(n)d characters.", n=spec["minLength"])
    if "is too long" in message and spec.get("maxLength"):
        return _("At most %(n)d characters.", n=spec["maxLength"])
    if "does not match" in message:
        return _("Not in the expected format.") + (f" {spec['description']}" if spec.get("description") else "")
    return message
