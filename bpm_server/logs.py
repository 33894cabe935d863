"""The server's own log lines: one per request and one per job; the engine's chatter only at DEBUG.

SpiffWorkflow logs every task state change at INFO (dozens of lines per task
completion), which buried the lines an operator reads.  So its loggers are
held at WARNING unless the deployment asks for DEBUG (``BPM_LOG_LEVEL``), as is
rq's worker (``bpm-server worker``), and
the server writes, per request, ``method path status duration user`` and, per
job, ``name arguments outcome duration``.

A foundation module: it reads the caller from ``flask.g`` (where
``identity.auth`` and the web session put it) without importing either.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from flask import Flask, Response, g, request, request_finished, request_started
from sqlalchemy import inspect

REQUESTS = logging.getLogger("bpm_server.request")
JOBS = logging.getLogger("bpm_server.job")
#: The engine's loggers ("spiff.task", "spiff.workflow", ...): state changes, variables read and set.
ENGINE_LOGGERS = ("spiff",)
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What a log line must not carry verbatim: control characters (a NUL, a forged
# newline that would start a fake line) and lone surrogates (not encodable).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_MAX_CHARS = 200  # of a job's arguments or outcome in its line (jobs take ids, but a batch can be long)


def configure(level_name: str) -> None:
    """Levels for the server's and the engine's loggers, and a stderr handler if nothing else logs."""
    level = logging.getLevelNamesMapping()[level_name]
    logging.basicConfig(level=level, format=FORMAT)  # a no-op when the host (pytest, a WSGI server) configured one
    logging.getLogger("bpm_server").setLevel(level)
    for name in ENGINE_LOGGERS:
        logging.getLogger(name).setLevel(chatter_level(level_name))


def chatter_level(level_name: str) -> str:
    """The level for libraries that narrate each step (the engine; rq's two lines per job, which
    ``log_job`` replaces): DEBUG when the deployment asks for DEBUG, else only their warnings."""
    return "DEBUG" if level_name == "DEBUG" else "WARNING"


def init_request_log(app: Flask) -> None:
    # Signals rather than before/after_request hooks: request_finished carries
    # the final response (after the commit in after_request, which may turn it
    # into a 409) and is sent for error pages too.
    request_started.connect(_started, app)
    request_finished.connect(_finished, app)


def _started(_app: Flask, **_: Any) -> None:
    g._bpm_request_started = time.perf_counter()


def _finished(_app: Flask, response: Response, **_: Any) -> None:
    started = g.get("_bpm_request_started")
    took = (time.perf_counter() - started) * 1000 if started is not None else float("nan")
    user = _user_id(g.get("user"))
    REQUESTS.info("%s %s %s %.1f ms user=%s", request.method, printable(request.path), response.status_code, took,
                  user or "-")


def _user_id(user: Any) -> str | None:
    """The caller's id from the row's identity key: the request has committed by now, so its
    attributes are expired, and reading ``user.id`` would load the row again on a connection of its own."""
    state = inspect(user, raiseerr=False) if user is not None else None
    identity = state.identity if state is not None else None
    return str(identity[0]) if identity else None


def log_job(job: str, args: Sequence[Any], outcome: str, seconds: float) -> None:
    """The job's one line: ``name (arguments) outcome duration``."""
    JOBS.info("%s(%s) %s %.1f ms", job, _clipped(", ".join(repr(a) for a in args)), _clipped(outcome),
              seconds * 1000)


def printable(text: str) -> str:
    return _UNPRINTABLE.sub("\ufffd", text)


def _clipped(text: str) -> str:
    text = printable(text)
    return text if len(text) <= _MAX_CHARS else text[:_MAX_CHARS] + "..."
