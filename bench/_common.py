"""Helpers shared by the benchmark scripts: database setup, statistics,
machine information and writing the JSON result file.

Benchmarks measure; they never decide pass or fail.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PG_ADMIN_URL = os.environ.get("BPM_BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@localhost:5432/postgres")

PACKAGES = ("SpiffWorkflow", "SQLAlchemy", "Flask", "Flask-SQLAlchemy", "Werkzeug", "psycopg", "flask-smorest",
            "marshmallow", "jsonschema")


# --------------------------------------------------------------------------- databases


def pg_url(database: str) -> str:
    """The URL of ``database`` on the server the admin URL points at."""
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


def recreate_pg_database(database: str) -> str:
    """Drop and create a dedicated PostgreSQL database; returns its URL."""
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{database}"'))
    finally:
        engine.dispose()
    return pg_url(database)


def migrate(url: str) -> None:
    """Bring the schema up to date with the project's own Alembic migrations."""
    from flask_migrate import upgrade

    from bpm_server.app import create_app
    from bpm_server.config import Config
    from bpm_server.database import db

    app = create_app(Config(database_url=url, testing=True))
    with app.app_context():
        upgrade()
        db.engine.dispose()


def server_version(engine: Any) -> str:
    from sqlalchemy import text

    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            return conn.execute(text("SHOW server_version")).scalar_one()
    import sqlite3

    return f"sqlite {sqlite3.sqlite_version}"


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(seconds: Iterable[float]) -> dict[str, Any]:
    """n, p50, p95, max and mean of durations given in seconds, reported in milliseconds."""
    ms = [s * 1000.0 for s in seconds]
    if not ms:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "max_ms": None, "mean_ms": None}
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 3), "p95_ms": round(percentile(ms, 95), 3),
            "max_ms": round(max(ms), 3), "mean_ms": round(sum(ms) / len(ms), 3)}


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False)))
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------- results


def machine_info() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name.lower()] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name.lower()] = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": versions,
        "git": _git_state(),
    }


def _git_state() -> dict[str, Any]:
    def run(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = run("status", "--porcelain")
    return {"commit": run("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>-<UTC timestamp>.json`` and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = utc_stamp()
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    counter = 1
    while path.exists():  # two runs within the same second
        path = RESULTS_DIR / f"{name}-{stamp}-{counter}.json"
        counter += 1
    document = {"benchmark": name, "created_at": datetime.now(UTC).isoformat(),
                "command": [Path(sys.executable).name, *sys.argv], "machine": machine_info(), **payload}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    return path


class StatementCounter:
    """Counts (and optionally records) SQL statements sent through an engine,
    via SQLAlchemy's ``before_cursor_execute`` event."""

    def __init__(self, engine: Any, keep: bool = False) -> None:
        from sqlalchemy import event

        self._event = event
        self.engine = engine
        self.keep = keep
        self.count = 0
        self.statements: list[tuple[str, Any]] = []  # (SQL text, parameters)
        event.listen(engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                    executemany: bool) -> None:
        self.count += 1
        if self.keep:
            self.statements.append((statement, parameters))

    def reset(self, keep: bool | None = None) -> None:
        self.count = 0
        self.statements = []
        if keep is not None:
            self.keep = keep

    def close(self) -> None:
        self._event.remove(self.engine, "before_cursor_execute", self._on_execute)
