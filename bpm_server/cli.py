"""``bpm-server``: the console entry point (API.md "Process")."""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import NoReturn

import click
from flask import Flask

from bpm_server import logs
from bpm_server.config import PROJECT_ROOT

# Who the audit trail names for what an operator does on the server's console.
CLI_ACTOR = "cli"


def _app() -> Flask:
    from bpm_server.app import create_app

    return create_app()


@click.group()
def main() -> None:
    """BPM server for key-account service processes."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
def run(host: str, port: int, threads: int) -> None:
    """Web server; without BPM_REDIS_URL also the embedded job runner and timer loop."""
    from waitress import serve

    app = _app()
    from bpm_server.extensions import Deployment

    rt: Deployment = app.extensions["bpm"]
    mode = "rq on Redis" if rt.config.redis_url else "embedded (in-process)"
    click.echo(f"bpm-server on http://{host}:{port}/  database={_redact(rt.config.database_url)}  jobs={mode}")
    if not rt.config.redis_url:
        from bpm_server.sla.scheduler import start_in_thread

        start_in_thread(app)  # embedded mode: timers pumped here, jobs run in a thread
    serve(app, host=host, port=port, threads=threads, ident="bpm-server")


@main.command()
@click.option("--burst", is_flag=True, help="Run the jobs queued now, then exit.")
def worker(burst: bool) -> None:
    """An rq worker for production deployments (needs BPM_REDIS_URL)."""
    from rq import SimpleWorker

    from bpm_server import worker as rq_entry

    app = _app()
    rt = app.extensions["bpm"]
    if not rt.config.redis_url:
        raise click.ClickException("BPM_REDIS_URL is not set: without Redis, jobs run inside 'bpm-server run'")
    if not burst:
        from bpm_server.sla.scheduler import start_in_thread

        start_in_thread(app)  # every worker runs one; an advisory lock lets exactly one pump
    # Jobs run in this process, on the app built above: rq's default worker
    # forks per job and would rebuild the app (and its connection pool) each
    # time, which capped timer throughput at a few jobs per second.
    rq_entry.use_app(app)
    rq_worker = SimpleWorker([rt.jobs.queue], connection=rt.jobs.connection)
    # An alive key refreshed every few seconds: once it expires (the process was killed),
    # the pump queues this worker's running job again (RqJobQueue.recover_abandoned).
    stopping = threading.Event()
    threading.Thread(target=rt.jobs.keep_alive, args=(rq_worker.name, stopping), name="bpm-worker-alive",
                     daemon=True).start()
    try:
        # rq's own per-job lines only at DEBUG: perform_in_app writes the job's one line.
        rq_worker.work(burst=burst, with_scheduler=False, logging_level=logs.chatter_level(rt.config.log_level))
    finally:
        stopping.set()


@main.group()
def db() -> None:
    """Database schema."""


@db.command()
def upgrade() -> None:
    """Create or migrate the schema to the newest revision (Alembic)."""
    from flask_migrate import upgrade as alembic_upgrade

    app = _app()
    with app.app_context():
        alembic_upgrade()
    click.echo("database schema is up to date")


@main.group()
def models() -> None:
    """Process models."""


@models.command()
def sync() -> None:
    """Load process_models/ and forms/ as new versions where their content changed."""
    from bpm_server.database import db as database
    from bpm_server.errors import AppError
    from bpm_server.identity.departments import CATALOG_FILE, sync_catalog
    from bpm_server.modeling.service import sync_from_disk
    from bpm_server.sla import start_timers
    from bpm_server.sla.policies import sync_file

    app = _app()
    rt = app.extensions["bpm"]
    with app.app_context():
        try:
            departments = sync_catalog(database.session, rt.config.models_dir / CATALOG_FILE, now=rt.clock.now())
            report = sync_from_disk(database.session, rt.config.models_dir, rt.config.forms_dir, now=rt.clock.now())
            start_timers.arm_all(database.session, rt.evaluator, rt.clock.now())
            policies = sync_file(database.session, rt.config.models_dir / "escalation-policies.json",
                                 now=rt.clock.now())
            database.session.commit()
        except AppError as exc:
            database.session.rollback()
            _fail(exc.message, exc.details)
    for code in departments:
        click.echo(f"department named: {code}")
    for name in report.forms_changed:
        click.echo(f"form updated: {name}")
    for name in report.versions_created:
        click.echo(f"new version: {name}")
    for name in report.unchanged:
        click.echo(f"unchanged: {name}")
    for name in policies:
        click.echo(f"escalation policy updated: {name}")


@main.group()
def users() -> None:
    """Users and departments."""


@users.command("add")
@click.argument("username")
@click.option("--department", required=True, help="Department code; created if it does not exist.")
@click.option("--role", "roles", multiple=True, default=("staff",), show_default=True,
              help="staff, process_owner, auditor, admin or integration; repeat for several.")
@click.option("--display-name", default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--lead", is_flag=True, help="Make the user the lead of the department (escalations reach them).")
def users_add(username: str, department: str, roles: tuple[str, ...], display_name: str | None,
              password_stdin: bool, lead: bool) -> None:
    """Create a user."""
    from bpm_server.audit.service import record
    from bpm_server.database import db as database
    from bpm_server.errors import AppError
    from bpm_server.identity.service import add_user

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    if password_stdin and not password:
        raise click.ClickException("--password-stdin given but no password was read")
    app = _app()
    with app.app_context():
        try:
            user = add_user(database.session, username, department=department, roles=roles, password=password,
                            display_name=display_name, now=app.extensions["bpm"].clock.now())
            if lead:
                user.department.lead_user_id = user.id
            record(database.session, actor=CLI_ACTOR, action="user.create", object_type="user", object_id=username,
                   now=user.created_at, before=None, after={"display_name": user.display_name,
                                                            "department": department, "roles": list(user.roles),
                                                            "active": True, "lead": lead})
            database.session.commit()
        except AppError as exc:
            database.session.rollback()
            _fail(exc.message)
    click.echo(f"user {username} added to department {department} with role(s) {', '.join(roles)}", err=True)


@main.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("issue")
@click.argument("username")
@click.option("--name", default=None, help="What the token is for (shown by 'tokens list').")
@click.option("--expires-in-days", type=click.IntRange(min=1), default=None,
              help="Lifetime in days; default BPM_TOKEN_EXPIRY_DAYS (unset: never expires).")
def tokens_issue(username: str, name: str | None, expires_in_days: int | None) -> None:
    """Print a new API token for USERNAME, alone on one line (only its hash is stored)."""
    from bpm_server.audit.service import record
    from bpm_server.database import db as database
    from bpm_server.errors import AppError
    from bpm_server.identity.models import ApiToken
    from bpm_server.identity.service import find_user, hash_token, issue_token

    app = _app()
    rt = app.extensions["bpm"]
    with app.app_context():
        user = find_user(database.session, username)
        if user is None:
            _fail(f"no user named {username!r}")
        if not user.active:
            _fail(f"user {username!r} is deactivated")
        now = rt.clock.now()
        try:
            token = issue_token(database.session, user, now=now, name=name, expires_in_days=expires_in_days,
                                default_expiry_days=rt.config.token_expiry_days)
        except AppError as exc:
            database.session.rollback()
            _fail(exc.message)
        row = database.session.query(ApiToken).filter_by(token_hash=hash_token(token)).one()
        record(database.session, actor=CLI_ACTOR, action="token.issue", object_type="token", object_id=row.id,
               now=now, user=username, name=name, expires_at=row.expires_at.isoformat() if row.expires_at else None)
        database.session.commit()
    click.echo(token)


@tokens.command("list")
@click.argument("username", required=False)
def tokens_list(username: str | None) -> None:
    """List API tokens (of USERNAME, or everyone's): id, user, name, state, created, expires, last used."""
    from bpm_server.database import db as database
    from bpm_server.identity.service import find_user, token_state
    from bpm_server.identity.service import tokens as all_tokens

    app = _app()
    with app.app_context():
        user = None
        if username:
            user = find_user(database.session, username)
            if user is None:
                _fail(f"no user named {username!r}")
        now = app.extensions["bpm"].clock.now()
        rows, _ = all_tokens(database.session, user=user, per_page=100_000)
        lines = [(t.id, t.user.username, t.name or "-", token_state(t, now), _when(t.created_at),
                  _when(t.expires_at), _when(t.last_used_at)) for t in rows]
        database.session.rollback()
    click.echo("\t".join(("id", "user", "name", "state", "created", "expires", "last_used")))
    for line in lines:
        click.echo("\t".join(line))


@tokens.command("revoke")
@click.argument("token_id")
def tokens_revoke(token_id: str) -> None:
    """Revoke the token TOKEN_ID (see 'tokens list'); it answers 401 from the next request on."""
    from bpm_server.database import db as database
    from bpm_server.errors import AppError
    from bpm_server.identity.service import revoke_token

    app = _app()
    with app.app_context():
        try:
            token = revoke_token(database.session, None, token_id, now=app.extensions["bpm"].clock.now(),
                                 actor_name=CLI_ACTOR)
            owner = token.user.username
            database.session.commit()
        except AppError as exc:
            database.session.rollback()
            _fail(exc.message)
    click.echo(f"token {token_id} of {owner} revoked")


@main.group()
def audit() -> None:
    """The SLA breach log."""


@audit.command("verify")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also compare the log with the signed checkpoints in FILE (see 'audit checkpoint').")
def audit_verify(checkpoint_file: Path | None) -> None:
    """Check the breach log's hash chain: exit 0 when intact, else name the first broken entry.
    With --checkpoint, entries removed from the end are found too, even with the head rewound."""
    from bpm_server.database import db as database
    from bpm_server.errors import AppError
    from bpm_server.sla import checkpoints
    from bpm_server.sla.breaches import verify

    app = _app()
    with app.app_context():
        status = verify(database.session)
        compared = None
        if checkpoint_file is not None and status.intact:
            rt = app.extensions["bpm"]
            try:
                points = checkpoints.parse_lines(checkpoint_file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, AppError) as exc:
                _fail(f"{checkpoint_file}: {getattr(exc, 'message', exc)}")
            key = checkpoints.signing_key(rt.config.checkpoint_key, rt.config.secret_key)
            compared = checkpoints.check(database.session, key, points)
    if not status.intact:
        where = (f" at entry {status.first_broken_seq}" if status.first_broken_seq is not None else "") + \
            (f" (id {status.first_broken_id})" if status.first_broken_id else "")
        _fail(f"breach log broken{where}: {status.reason}")
    if compared is not None and not compared.ok:
        _fail(f"breach log does not match its checkpoints: {compared.reason}")
    suffix = f"; matches {compared.checked} checkpoint(s)" if compared is not None else ""
    click.echo(f"breach log intact: {status.entries} entries{suffix}")


@audit.command("checkpoint")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Append the checkpoint to FILE (one JSON line each) instead of only printing it.")
def audit_checkpoint(out_file: Path | None) -> None:
    """Print a signed checkpoint of the breach log's head (entry count and hash). Keep it
    outside the database, e.g. from cron: 'bpm-server audit checkpoint --out /backup/breach.ckpt'."""
    from bpm_server.database import db as database
    from bpm_server.errors import AppError
    from bpm_server.sla import checkpoints

    app = _app()
    with app.app_context():
        rt = app.extensions["bpm"]
        key = checkpoints.signing_key(rt.config.checkpoint_key, rt.config.secret_key)
        try:
            point = checkpoints.make(database.session, key, rt.clock.now())
        except AppError as exc:
            _fail(exc.message)
    line = json.dumps(point, sort_keys=True)
    if out_file is not None:
        try:
            with out_file.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError as exc:
            _fail(f"{out_file}: {exc}")
    click.echo(line)


@main.group()
def calendar() -> None:
    """The business calendar's official holiday notices."""


@calendar.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--actor", default="cli", show_default=True, help="Who imports it, for the audit trail.")
def calendar_import(file: Path, actor: str) -> None:
    """Import a year's official holiday notice from FILE (JSON, as for POST /api/v1/calendar/notices)."""
    from bpm_server.database import db as database
    from bpm_server.errors import AppError
    from bpm_server.sla.notices import apply_notice, parse_notice

    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError covers JSON and UTF-8 decoding errors
        _fail(f"{file}: cannot read JSON: {exc}")
    app = _app()
    with app.app_context():
        try:
            rt = app.extensions["bpm"]
            revision, created, moved = apply_notice(database.session, rt, parse_notice(raw), actor=actor,
                                                    now=rt.clock.now())
            if created:
                message = (f"calendar {revision.year}: revision {revision.revision} imported "
                           f"(published {revision.published.isoformat()}, {revision.source}); "
                           f"{len(moved)} open deadline(s) moved")
            else:
                message = f"calendar {revision.year}: unchanged, revision {revision.revision} is this notice"
            database.session.commit()
        except AppError as exc:
            database.session.rollback()
            _fail(f"{file}: {exc.message}")
    click.echo(message)


@main.command()
def doctor() -> None:
    """Check that every instance's engine state agrees with its tasks, timers and subscriptions."""
    from bpm_server.database import db as database
    from bpm_server.runtime.doctor import examine

    app = _app()
    with app.app_context():
        findings = [str(f) for f in examine(database.session, app.extensions["bpm"])]
        database.session.rollback()
    for line in findings:
        click.echo(line)
    if findings:
        _fail(f"{len(findings)} disagreement(s) between engine state and rows")
    click.echo("all instances agree with their tasks, timers and subscriptions")


@main.group()
def corpus() -> None:
    """The BPMN compatibility table over a corpus of public diagrams."""


@corpus.command("report")
@click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path, file_okay=False),
              help="The corpus folder (default: BPM_BPMN_CORPUS).")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False),
              default=PROJECT_ROOT / "docs" / "bpmn-compatibility.md", show_default=True)
@click.option("--timeout", type=click.FloatRange(min=1), default=20.0, show_default=True,
              help="Seconds one file may take.")
def corpus_report(corpus_dir: Path | None, output: Path, timeout: float) -> None:
    """Upload and run every .bpmn file of the corpus on a throwaway server; write the table."""
    from bpm_server.config import Config
    from bpm_server.corpus import corpus_files, markdown, run_report, summary_line

    folder = corpus_dir or Config.from_env().bpmn_corpus
    if folder is None or not folder.is_dir() or not corpus_files(folder):
        _fail(f"no BPMN corpus at {folder}: pass --corpus or set BPM_BPMN_CORPUS" if folder
              else "no BPMN corpus: pass --corpus or set BPM_BPMN_CORPUS")
    results = run_report(folder, timeout=timeout)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(markdown(results, folder.name), "utf-8")
    click.echo(f"{output}: {len(results)} files: {summary_line(results)}")


@main.group()
def accounts() -> None:
    """Account watching: the daily evaluation of health and rules."""


@accounts.command("daily")
@click.option("--force", is_flag=True, help="Evaluate again even if today's evaluation already ran.")
def accounts_daily(force: bool) -> None:
    """Keep today's health row of every account and, on a working day, evaluate the rules now.
    The server runs this itself each day at BPM_ACCOUNTS_DAILY_AT; a second run the same day
    does nothing (unless --force)."""
    from bpm_server.database import db
    from bpm_server.runtime import evaluate_daily

    app = _app()
    with app.app_context():
        rt = app.extensions["bpm"]
        outcome = evaluate_daily(db.session, rt, rt.clock.now(), force=force)
        db.session.commit()
    click.echo(outcome)


@main.group()
def demo() -> None:
    """Demo data."""


@demo.command("seed")
@click.option("--tokens-file", type=click.Path(path_type=Path), default=PROJECT_ROOT / "var" / "demo-tokens.txt",
              show_default=True)
def demo_seed(tokens_file: Path) -> None:
    """Create demo users (one per department plus owner, auditor, admin), accounts and a running project."""
    from bpm_server.demo import seed

    app = _app()
    with app.app_context():
        lines = seed(app)
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    tokens_file.write_text("".join(f"{line}\n" for line in lines))
    tokens_file.chmod(0o600)
    click.echo(f"demo users and tokens written to {tokens_file}")


def _fail(message: str, details: object = None) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    if isinstance(details, dict) and details.get("problems"):
        for problem in details["problems"]:
            click.echo(f"  - {problem.get('element_id') or 'diagram'}: {problem['message']}", err=True)
    raise SystemExit(1)


def _when(moment: object) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"  # type: ignore[attr-defined]


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    main()
