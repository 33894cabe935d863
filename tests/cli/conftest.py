"""Fixtures of the command-line tests: a migrated SQLite file, copied per test."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli.test_cli import Cli


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file after ``bpm-server db upgrade``; tests work on copies of it."""
    path = tmp_path_factory.mktemp("cli-template") / "bpm.sqlite3"
    Cli(f"sqlite:///{path}", path.parent).ok("db", "upgrade")
    return path


@pytest.fixture
def cli(migrated_sqlite: Path, tmp_path: Path) -> Cli:
    target = tmp_path / "bpm.sqlite3"
    shutil.copyfile(migrated_sqlite, target)
    return Cli(f"sqlite:///{target}", tmp_path)
