"""``bpm-server``: the console entry point (API.md "Process")."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask

from bpm_server.config import PROJECT_ROOT


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
    SimpleWorker([rt.jobs.queue], connection=rt.jobs.connection).work(burst=burst, with_scheduler=False)


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
    from bpm_server.modeling.service import sync_from_disk
    from bpm_server.sla.policies import sync_file

    app = _app()
    rt = app.extensions["bpm"]
    with app.app_context():
        try:
            report = sync_from_disk(database.session, rt.config.models_dir, rt.config.forms_dir, now=rt.clock.now())
            policies = sync_file(database.session, rt.config.models_dir / "escalation-policies.json",
                                 now=rt.clock.now())
            database.session.commit()
        except AppError as exc:
            database.session.rollback()
            _fail(exc.message, exc.details)
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
def tokens_issue(username: str) -> None:
    """Print a new API token for USERNAME, alone on one line (only its hash is stored)."""
    from bpm_server.database import db as database
    from bpm_server.identity.service import find_user, issue_token

    app = _app()
    with app.app_context():
        user = find_user(database.session, username)
        if user is None:
            _fail(f"no user named {username!r}")
        token = issue_token(database.session, user, now=app.extensions["bpm"].clock.now())
        database.session.commit()
    click.echo(token)


@main.group()
def audit() -> None:
    """The SLA breach log."""


@audit.command("verify")
def audit_verify() -> None:
    """Check the breach log's hash chain: exit 0 when intact, else name the first broken entry."""
    from bpm_server.database import db as database
    from bpm_server.sla.breaches import verify

    app = _app()
    with app.app_context():
        status = verify(database.session)
    if status.intact:
        click.echo(f"breach log intact: {status.entries} entries")
        return
    where = (f" at entry {status.first_broken_seq}" if status.first_broken_seq is not None else "") + \
        (f" (id {status.first_broken_id})" if status.first_broken_id else "")
    _fail(f"breach log broken{where}: {status.reason}")


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


def _fail(message: str, details: object = None) -> None:
    click.echo(f"error: {message}", err=True)
    if isinstance(details, dict) and details.get("problems"):
        for problem in details["problems"]:
            click.echo(f"  - {problem.get('element_id') or 'diagram'}: {problem['message']}", err=True)
    raise SystemExit(1)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    main()
