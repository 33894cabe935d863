"""Diagrams from other modeling tools (Bizagi, Signavio, Camunda, bpmn.io, ...)
either compile or are refused with problems a process owner can act on;
none crashes the server.

The corpus (188 public BPMN files) lives outside the repository, in the
workplace's shared folder; set BPM_BPMN_CORPUS to point elsewhere. Without
it these tests fail rather than skip, unless BPM_SKIP_CORPUS=1 says on
purpose that this machine has no corpus.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from bpm_server.database import db
from bpm_server.engine.adapter import BpmnInvalid, CompiledModel, compile_bpmn
from bpm_server.modeling.models import ProcessModel

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = [os.environ.get("BPM_BPMN_CORPUS"), PROJECT_ROOT.parent / "shared" / "corpus", "/work/shared/corpus"]


def _corpus() -> Path | None:
    for candidate in CANDIDATES:
        if candidate and Path(candidate, "INDEX.md").is_file():
            return Path(candidate)
    return None


CORPUS = _corpus()
FILES = sorted(CORPUS.rglob("*.bpmn")) if CORPUS else []
pytestmark = pytest.mark.skipif(CORPUS is None and os.environ.get("BPM_SKIP_CORPUS") == "1",
                                reason="BPM_SKIP_CORPUS=1: no BPMN corpus on this machine")


def test_the_corpus_is_there() -> None:
    assert CORPUS is not None, f"BPMN corpus not found in {CANDIDATES}; set BPM_BPMN_CORPUS or BPM_SKIP_CORPUS=1"
    assert len(FILES) >= 180


def _outcome(path: Path) -> tuple[str, CompiledModel | BpmnInvalid]:
    try:
        return "compiled", compile_bpmn(path.read_bytes())
    except BpmnInvalid as exc:
        return "refused", exc


def test_every_corpus_file_compiles_or_is_refused_with_named_problems() -> None:
    outcomes: Counter[str] = Counter()
    for path in FILES:
        kind, result = _outcome(path)  # any other exception fails the test, naming the file below
        outcomes[kind] += 1
        if isinstance(result, BpmnInvalid):
            assert result.problems, path
            for problem in result.problems:
                assert problem.message.strip(), f"{path}: a problem without a message"
                assert "Traceback" not in problem.message, f"{path}: {problem.message}"
        else:
            assert result.process_id, path
    # Most files have no executable process; the executable ones that SpiffWorkflow can build do compile.
    assert outcomes["compiled"] >= 10, outcomes
    assert outcomes["refused"] >= 100, outcomes


def test_a_file_with_no_executable_process_says_so() -> None:
    refusals = [r for p in FILES for k, r in [_outcome(p)] if k == "refused"]
    assert any(isinstance(r, BpmnInvalid) and "no executable process" in r.problems[0].message for r in refusals)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_uploading_corpus_files_answers_201_or_422_and_never_500(synced_app, people) -> None:
    """Through the real upload endpoint, for a spread of files from every tool folder."""
    with synced_app.app_context():
        db.session.add(ProcessModel(id="imported", name="imported", description="",
                                    created_at=synced_app.extensions["bpm"].clock.now()))
        db.session.commit()
    by_folder: dict[Path, Path] = {}
    for path in FILES:
        by_folder.setdefault(path.parent, path)
    compiling = [p for p in FILES if _outcome(p)[0] == "compiled"][:6]
    statuses: Counter[int] = Counter()
    for path in [*by_folder.values(), *compiling]:
        response = people["owner"].post("/api/v1/process-models/imported/versions", data=path.read_bytes(),
                                        headers={"Content-Type": "application/xml"})
        statuses[response.status_code] += 1
        assert response.status_code in (201, 200, 422), (path, response.get_json())
        if response.status_code == 422:
            problems = response.get_json()["error"]["details"]["problems"]
            assert problems, path
            if path in compiling:
                # The engine could run it, the product could not route it: say which element and why
                # (user tasks need a department, from a lane or a property).
                assert all(p["element_id"] for p in problems), (path, problems)
        elif path in compiling:
            assert response.get_json()["version"]["version"] >= 1
    assert statuses[422] >= len(by_folder) - 2 and statuses[201] >= 1, statuses
