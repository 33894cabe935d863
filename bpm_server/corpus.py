"""The BPMN compatibility table (``bpm-server corpus report``): every file of a corpus
of public diagrams, uploaded to a throwaway server and run the way a newcomer would.

For each file: upload it as a new model over the API; if accepted, start an
instance and drive it, completing user tasks with empty data and moving the
test clock to the next timer, until it completes, waits for something
(form data, a message...) or fails. The outcome lands in one of:

- ``completed``: accepted and ran to completion;
- ``waits``: accepted, waits for input (what it waits for is said);
- ``failed``: accepted, then failed when run (element and reason);
- ``refused``: refused at upload (element and reason);
- ``crashed``: the server answered 500 or the file took longer than the time limit.

Next to it, whether SpiffWorkflow 3.2 alone runs the file to completion
(``bpm_server.engine.reference``). The deployment the files meet has a
department for every lane name of the file, as a process owner would set up
before uploading. Each file runs in a forked child with a time limit, so one
diagram cannot hold the report.
"""
from __future__ import annotations

import multiprocessing
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask_migrate import upgrade
from lxml import etree
from sqlalchemy import func, select

from bpm_server.accounts.models import Account
from bpm_server.accounts.service import upsert_account
from bpm_server.app import create_app
from bpm_server.clock import SettableClock
from bpm_server.config import Config
from bpm_server.database import db
from bpm_server.engine.adapter import BPMN_NS
from bpm_server.engine.reference import spiff_completes
from bpm_server.identity.models import User
from bpm_server.identity.service import add_user, issue_token
from bpm_server.modeling.models import ProcessModel
from bpm_server.sla.models import Timer

OUTCOMES = ("completed", "waits", "failed", "refused", "crashed")
LABELS = {"completed": "accepted, ran to completion", "waits": "accepted, waits for input",
          "failed": "accepted, failed when run", "refused": "refused at upload",
          "crashed": "server error or time limit"}
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
MAX_ROUNDS = 100


@dataclass(frozen=True)
class Outcome:
    path: str
    outcome: str
    element: str | None = None
    reason: str = ""
    spiff: str | None = None  # the SpiffWorkflow parser that completes it alone, if any


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(corpus.rglob("*.bpmn"))


def run_report(corpus: Path, timeout: float = 20.0) -> list[Outcome]:
    """Every corpus file's outcome, in path order."""
    with tempfile.TemporaryDirectory(prefix="bpm-corpus-") as scratch:
        app = _throwaway_app(Path(scratch))
        context = multiprocessing.get_context("fork")
        results = []
        for number, path in enumerate(corpus_files(corpus)):
            relative = path.relative_to(corpus).as_posix()
            results.append(_in_child(context, app, number, path, relative, timeout))
        with app.app_context():
            db.engine.dispose()
    return results


def _throwaway_app(scratch: Path) -> Flask:
    config = Config(database_url=f"sqlite:///{scratch / 'corpus.sqlite3'}", test_clock=True, testing=True,
                    secret_key="corpus-report", models_dir=scratch / "models", forms_dir=scratch / "forms")
    app = create_app(config, clock=SettableClock(START))
    with app.app_context():
        upgrade()
        owner = add_user(db.session, "corpus-owner", department="pmo", roles=["process_owner", "admin"], now=START)
        app.config["CORPUS_TOKEN"] = issue_token(db.session, owner, now=START)
        db.session.commit()
        db.engine.dispose()
    return app


def _in_child(context: Any, app: Flask, number: int, path: Path, relative: str, timeout: float) -> Outcome:
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, app, number, path, relative))
    child.start()
    sender.close()
    outcome = None
    if receiver.poll(timeout):
        try:
            outcome = receiver.recv()
        except EOFError:
            outcome = None
    if child.is_alive():
        child.kill()
    child.join()
    receiver.close()
    if outcome is None:
        return Outcome(relative, "crashed", None, f"no answer within {timeout:g} s (or the run died)")
    return outcome


def _child(sender: Any, app: Flask, number: int, path: Path, relative: str) -> None:
    try:
        with app.app_context():
            db.engine.dispose(close=False)  # the parent's connections are not this process's
            outcome = _try_file(app, number, path.read_bytes(), relative)
        sender.send(outcome)
    except Exception as exc:  # the report names whatever went wrong, per file
        sender.send(Outcome(relative, "crashed", None, f"{type(exc).__name__}: {exc}"[:300]))
    finally:
        sender.close()


def _try_file(app: Flask, number: int, xml: bytes, relative: str) -> Outcome:
    spiff = spiff_completes(xml)
    model_id = f"corpus-{number}"
    clock = app.extensions["bpm"].clock
    db.session.add(ProcessModel(id=model_id, name=relative[:300], description="", created_at=clock.now()))
    for lane in _lane_names(xml):
        add_user(db.session, f"lane-{number}-{abs(hash(lane))}", department=lane, now=clock.now())
    db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {app.config['CORPUS_TOKEN']}"}
    upload = client.post(f"/api/v1/process-models/{model_id}/versions", data=xml,
                         headers={**headers, "Content-Type": "application/xml"})
    if upload.status_code >= 500:
        return Outcome(relative, "crashed", None, f"upload answered {upload.status_code}", spiff)
    if upload.status_code == 422:
        problems = (upload.get_json()["error"].get("details") or {}).get("problems") or []
        first = problems[0] if problems else {"element_id": None, "message": upload.get_json()["error"]["message"]}
        return Outcome(relative, "refused", first.get("element_id"), first.get("message", ""), spiff)
    if upload.status_code not in (200, 201):
        return Outcome(relative, "refused", None, upload.get_json()["error"]["message"], spiff)
    _ensure_account(app)
    started = client.post("/api/v1/process-instances", headers=headers,
                          json={"process_model_id": model_id, "account_id": "CORPUS", "data": {}})
    if started.status_code >= 500:
        return Outcome(relative, "crashed", None, f"start answered {started.status_code}", spiff)
    if started.status_code != 201:
        return Outcome(relative, "failed", None, started.get_json()["error"]["message"], spiff)
    return _drive(app, client, headers, started.get_json()["id"], relative, spiff)


def _ensure_account(app: Flask) -> None:
    if db.session.get(Account, "CORPUS") is None:
        upsert_account(db.session, "CORPUS", name="Corpus", tier="standard", owner="corpus-owner",
                       now=app.extensions["bpm"].clock.now())
        db.session.commit()


def _drive(app: Flask, client: Any, headers: dict[str, str], instance_id: str, relative: str,
           spiff: str | None) -> Outcome:
    for _round in range(MAX_ROUNDS):
        response = client.get(f"/api/v1/process-instances/{instance_id}", headers=headers)
        if response.status_code >= 500:
            return Outcome(relative, "crashed", None, f"reading the instance answered {response.status_code}", spiff)
        instance = response.get_json()
        if instance["state"] == "completed":
            return Outcome(relative, "completed", None, "", spiff)
        if instance["state"] == "error":
            error = instance.get("error") or {}
            return Outcome(relative, "failed", error.get("element_id"), error.get("message", ""), spiff)
        if instance["tasks"]:
            for task in instance["tasks"]:
                outcome = _complete(app, client, task, relative, spiff)
                if outcome is not None:
                    return outcome
            continue
        due = _next_timer(instance_id)
        if due is None:
            return Outcome(relative, "waits", None, "waits for a message, signal or external system", spiff)
        moved = client.post("/api/v1/test/clock", headers=headers,
                            json={"now": (due + timedelta(seconds=1)).isoformat()})
        if moved.status_code >= 500:
            return Outcome(relative, "crashed", None, f"moving the clock answered {moved.status_code}", spiff)
    return Outcome(relative, "waits", None, f"still running after {MAX_ROUNDS} rounds of tasks and timers", spiff)


def _complete(app: Flask, client: Any, task: dict, relative: str, spiff: str | None) -> Outcome | None:
    """Claim and complete one task with empty data as a member of its department."""
    department = task.get("department") or "pmo"
    clock = app.extensions["bpm"].clock
    username = f"staff-{abs(hash(department))}"
    user = db.session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        user = add_user(db.session, username, department=department, now=clock.now())
    token = issue_token(db.session, user, now=clock.now())
    db.session.commit()
    auth = {"Authorization": f"Bearer {token}"}
    claim = client.post(f"/api/v1/tasks/{task['id']}/claim", headers=auth)
    done = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=auth, json={"data": {}})
    for response in (claim, done):
        if response.status_code >= 500:
            return Outcome(relative, "crashed", task["name"], f"task answered {response.status_code}", spiff)
    if done.status_code != 200:
        return Outcome(relative, "waits", task["name"],
                       f"user task needs form data: {done.get_json()['error']['message']}", spiff)
    return None


def _next_timer(instance_id: str) -> datetime | None:
    db.session.expire_all()
    return db.session.scalar(select(func.min(Timer.due_at)).where(
        Timer.process_instance_id == instance_id, Timer.fired_at.is_(None), Timer.cancelled_at.is_(None)))


def _lane_names(xml: bytes) -> set[str]:
    try:
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    except etree.XMLSyntaxError:
        return set()
    return {(lane.get("name") or lane.get("id") or "").strip()[:100] for lane in root.iter(f"{{{BPMN_NS}}}lane")
            } - {""}


# --------------------------------------------------------------------------- the table


def markdown(results: list[Outcome], corpus_name: str) -> str:
    counts = Counter(r.outcome for r in results)
    spiff_done = [r for r in results if r.spiff]
    lines = [
        "# BPMN compatibility",
        "",
        f"Generated by `bpm-server corpus report` from the {len(results)} BPMN files of the corpus "
        f"(`{corpus_name}`, read from `BPM_BPMN_CORPUS`; the files stay outside this repository under "
        "their own licenses). Each file was uploaded as a new model to a throwaway server with the test "
        "clock on and a department for each of its lane names; an accepted one was started and driven: "
        "user tasks completed with empty data, the test clock moved to each next timer. "
        "\"SpiffWorkflow alone\" names the SpiffWorkflow 3.2 parser (bpmn, camunda, spiff) whose own run "
        "completes the file the same way, if any.",
        "",
        "## Summary",
        "",
        "| outcome | files |",
        "|---|---|",
        *(f"| {LABELS[o]} | {counts.get(o, 0)} |" for o in OUTCOMES),
        f"| **total** | {len(results)} |",
        "",
        f"SpiffWorkflow alone completes {len(spiff_done)} files; the server completes "
        f"{sum(1 for r in spiff_done if r.outcome == 'completed')} of them.",
        "",
        "## Files",
        "",
        "| file | outcome | element | reason | SpiffWorkflow alone |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| `{_cell(r.path)}` | {LABELS[r.outcome]} | {_cell(r.element or '')} | "
                     f"{_cell(r.reason)} | {r.spiff or '-'} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    # Object addresses in library messages ("<Element ... at 0x7f...>") would change the table on every run.
    flat = re.sub(r" at 0x[0-9a-f]+", "", " ".join(str(text).split()))
    return (flat[:240] + "…" if len(flat) > 240 else flat).replace("|", "\\|")


def summary_line(results: list[Outcome]) -> str:
    counts = Counter(r.outcome for r in results)
    return ", ".join(f"{counts.get(o, 0)} {o}" for o in OUTCOMES)


def iter_outcomes(results: list[Outcome]) -> Iterator[str]:
    for r in results:
        yield f"{r.outcome:9} {r.path}" + (f"  [{r.element}] {r.reason}" if r.reason else "")
