"""The request-parsing guard: what every request brings in is checked once, here.

The path parameters, the query parameters, form fields and a JSON body are
checked before the view runs (API views: right after ``requires`` admitted
the caller, so 401/403 come first) against the limits in ``Config`` (body
size, JSON depth, string length) and for characters no part of the server can
store: NUL (PostgreSQL text and JSONB refuse it) and lone UTF-16 surrogates
(they cannot be encoded as UTF-8 at all). Left to the views, each of these surfaced as a
500 from wherever the value first reached the database or the JSON parser.

A body's depth is measured on the raw bytes before it is parsed, so a body
nested thousands of levels deep never reaches a recursive parser.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from flask import Flask, current_app, request

from bpm_server.config import Config
from bpm_server.errors import Invalid, NotFound, TooLarge
from bpm_server.extensions import deployment

# A JSON string (escapes included) or a bracket; strings are skipped whole, so a
# bracket inside one does not count. The unrolled form keeps the regex linear.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_OPENERS = (ord("["), ord("{"))
_CLOSERS = (ord("]"), ord("}"))
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# The largest value of the INTEGER columns path ids are looked up in.
MAX_PATH_INTEGER = 2**31 - 1


def init_guard(app: Flask) -> None:
    app.before_request(_before_view)


def _before_view() -> None:
    config = deployment().config
    if request.content_length is not None and request.content_length > config.max_body_bytes:
        raise body_too_large(config)  # before anything reads it
    function = current_app.view_functions.get(request.endpoint or "")
    if not getattr(function, "checks_after_auth", False):
        check_request()


def checks_after_auth(view: Any) -> Any:
    """Mark a view that calls ``check_request`` itself once it knows the caller
    may call it: a caller without the right gets 401/403 whatever they sent,
    never feedback on the input (``identity.auth.requires`` does this for every
    API view; the signed webhook after its signature)."""
    view.checks_after_auth = True
    return view


def check_request(*, body_is_json: bool = False) -> None:
    """Path parameters, query parameters, form fields and a JSON body, against the limits.

    ``body_is_json``: the view reads its body as JSON whatever its Content-Type."""
    config = deployment().config
    for name, value in (request.view_args or {}).items():
        if isinstance(value, int) and not 0 <= value <= MAX_PATH_INTEGER:
            # No row has such an id: the column cannot hold it.
            raise NotFound(f"there is no {name} {value}", code="not_found", details={name: ["no such id"]})
        if isinstance(value, str):
            check_string(value, name, config)
    for name, values in request.args.lists():
        check_string(name, name, config)
        for value in values:
            check_string(value, name, config)
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for name, values in request.form.lists():
            check_string(name, name, config)
            for value in values:
                check_string(value, name, config)
    if request.is_json or body_is_json:
        check_json_body(request.get_data(cache=True), config)


def body_too_large(config: Config) -> TooLarge:
    return TooLarge(f"the request body is larger than the limit max_body_bytes ({config.max_body_bytes} bytes)",
                    code="body_too_large", details={"limit": "max_body_bytes", "max": config.max_body_bytes})


def check_string(value: str, field: str, config: Config) -> None:
    """422 naming ``field`` when the string holds NUL or a lone surrogate, or is longer than the limit."""
    # A key is a field name too: named with its unstorable characters replaced, so the error itself can be
    # logged and stored (the integration log keeps each refusal).
    field = _UNSTORABLE.sub("\ufffd", field)
    found = _UNSTORABLE.search(value)
    if found:
        what = "a NUL character" if found.group() == "\x00" else "a lone UTF-16 surrogate"
        raise Invalid(f"{field}: contains {what}, which cannot be stored", code="invalid_characters",
                      details={field: [f"contains {what} (at position {found.start()})"]})
    if len(value) > config.max_string_chars:
        raise Invalid(f"{field}: longer than the limit max_string_chars ({config.max_string_chars} characters)",
                      code="too_long", details={field: [f"longer than {config.max_string_chars} characters"]})


def json_depth(raw: bytes, limit: int) -> int:
    """The nesting depth of a JSON text, counted up to ``limit + 1`` without parsing it."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return 0  # cannot be deeper than the limit: not worth a scan
    depth = deepest = 0
    for token in _TOKEN.finditer(raw):
        first = token.group()[0]
        if first in _OPENERS:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif first in _CLOSERS:
            depth -= 1
    return deepest


def check_json_body(raw: bytes, config: Config) -> None:
    """Check a JSON body's depth (before parsing) and every key and string in it.

    A body that is not JSON at all is left to the view, which answers its own
    "not JSON" error."""
    if len(raw) > config.max_body_bytes:
        raise body_too_large(config)
    if json_depth(raw, config.max_json_depth) > config.max_json_depth:
        raise Invalid(f"the JSON body is nested deeper than the limit max_json_depth ({config.max_json_depth})",
                      code="too_deep", details={"limit": "max_json_depth", "max": config.max_json_depth})
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return
    for path, text in _strings(document):
        check_string(text, path or "body", config)


def _strings(document: Any) -> Iterator[tuple[str, str]]:
    """(dotted path, string) for every key and string value; iterative, so depth costs no stack."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            yield path, value
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                yield child, key
                stack.append((child, item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{index}" if path else str(index), item) for index, item in enumerate(value))


def scrubbed(value: Any) -> Any:
    """A copy with NUL and lone surrogates replaced by U+FFFD: for logging what was refused."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {scrubbed(str(k)): scrubbed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrubbed(v) for v in value]
    return value
