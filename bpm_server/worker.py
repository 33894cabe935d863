"""What an rq worker process runs: every job through ``perform``, on one app per process.

An entry point beside ``wsgi``: it builds the app from the environment the
first time a job arrives (or uses the one ``bpm-server worker`` hands it).
"""
from __future__ import annotations

from typing import Any

from flask import Flask

from bpm_server.app import create_app
from bpm_server.jobs.runner import perform_in_app

_worker_app: Flask | None = None


def use_app(app: Flask) -> None:
    """Run rq jobs in this process on ``app`` (set by ``bpm-server worker``)."""
    global _worker_app
    _worker_app = app


def perform(job: str, *args: Any) -> Any:
    """The function rq calls; the worker process builds its app once from the environment."""
    global _worker_app
    if _worker_app is None:
        _worker_app = create_app()
    return perform_in_app(_worker_app, job, *args)
