"""Translations of a model's own texts (stage titles, instructions, form labels, help texts
and choices), one messages file per locale in the model folder, for every model alike.

``process_models/<id>/messages/<locale>.json`` (or an uploaded ``messages/<locale>.json``)
maps a text as written in the diagram or form to its translation in that locale:
``{"Project kickoff": "项目启动"}``. Like gettext, the written text is the key, so a
model may be written in either language: a Chinese-first model ships ``messages/en.json``,
an English-written one ``messages/zh_CN.json``. A text the catalogue does not know is shown
as written. The files are published with the version (stored among its forms under their
file name, so they take part in its content hash and never change afterwards) and applied
when a task or form is shown, in the reader's language.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: The languages of the server (as web/i18n.py names them).
LOCALES = ("zh_CN", "en")
MESSAGES_FILE = re.compile(r"^messages/(zh_CN|en)\.json$")
#: Schema keywords whose string values a person reads.
_TEXT_KEYS = ("title", "description")
#: Schema keywords holding subschemas (translated recursively).
_NESTED = ("items", "if", "then", "else", "not", "additionalProperties")
_NESTED_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")


def is_messages_file(name: str) -> bool:
    return MESSAGES_FILE.match(name) is not None


def messages_file(locale: str) -> str:
    return f"messages/{locale}.json"


def catalog_problem(name: str, content: Any) -> str | None:
    """Why a messages file cannot be used, or None: it must map texts to texts."""
    if not isinstance(content, dict):
        return f"{name}: a messages file must be a JSON object of text -> translation"
    bad = [key for key, value in content.items() if not isinstance(value, str) or not value.strip()]
    if bad:
        return f"{name}: the translation of {bad[0]!r} must be a non-empty string"
    return None


def catalog(forms: Mapping[str, Any], locale: str) -> dict[str, str]:
    """A version's translations into ``locale`` from its published forms (empty when it ships none)."""
    found = forms.get(messages_file(locale))
    return found if isinstance(found, dict) else {}


def text(value: str | None, messages: Mapping[str, str]) -> str | None:
    """One text in the catalogue's language, or as written."""
    if not value or not messages:
        return value
    return messages.get(value) or messages.get(value.strip()) or value


def schema(form: Mapping[str, Any], messages: Mapping[str, str]) -> dict[str, Any]:
    """A copy of a JSON Schema form with its titles, descriptions and choice labels
    (``enumNames``) translated; values, types and constraints are left as they are, so
    the translated form validates exactly like the published one."""
    if not messages:
        return dict(form)
    return _translate(form, messages)


def _translate(node: Any, messages: Mapping[str, str]) -> Any:
    if not isinstance(node, Mapping):
        return node
    out = dict(node)
    for key in _TEXT_KEYS:
        if isinstance(out.get(key), str):
            out[key] = text(out[key], messages)
    if isinstance(out.get("enumNames"), list):
        out["enumNames"] = [text(n, messages) if isinstance(n, str) else n for n in out["enumNames"]]
    if isinstance(out.get("properties"), Mapping):
        out["properties"] = {k: _translate(v, messages) for k, v in out["properties"].items()}
    for key in _NESTED:
        if isinstance(out.get(key), Mapping):
            out[key] = _translate(out[key], messages)
    for key in _NESTED_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_translate(part, messages) for part in out[key]]
    return out
