"""``bpm-server tokens list|revoke`` and ``tokens issue --expires-in-days``, run as
real processes like an operator on the server's console; every action audited."""
from __future__ import annotations

import json
from datetime import datetime

from tests.cli.test_cli import Cli, failed, get_me


def _listing(cli: Cli, *args: str) -> list[dict[str, str]]:
    header, *rows = cli.ok("tokens", "list", *args).stdout.splitlines()
    columns = header.split("\t")
    assert columns == ["id", "user", "name", "state", "created", "expires", "last_used"]
    return [dict(zip(columns, row.split("\t"), strict=True)) for row in rows]


def _audit(cli: Cli) -> list[tuple[str, str, str, dict]]:
    return [(actor, action, object_id, json.loads(details) if isinstance(details, str) else details)
            for actor, action, object_id, details in cli.query(
                "SELECT actor, action, object_id, details FROM audit_event ORDER BY id")]


def test_tokens_list_and_revoke_end_a_token_and_are_audited(cli: Cli) -> None:
    cli.ok("users", "add", "alice", "--department", "sales")
    cli.ok("users", "add", "bob", "--department", "it")
    alice = cli.ok("tokens", "issue", "alice", "--name", "laptop").stdout.strip()
    cli.ok("tokens", "issue", "bob")
    assert get_me(cli.database_url, alice)[0] == 200

    everyone = _listing(cli)
    assert sorted(row["user"] for row in everyone) == ["alice", "bob"]
    mine, = _listing(cli, "alice")
    assert (mine["name"], mine["state"], mine["expires"]) == ("laptop", "active", "-")
    assert mine["last_used"] != "-"  # the request above used it
    listing = cli.ok("tokens", "list").stdout
    assert alice not in listing and alice[4:] not in listing, "a listing never shows a secret"

    result = cli.ok("tokens", "revoke", mine["id"])
    assert mine["id"] in result.stdout and "alice" in result.stdout
    assert get_me(cli.database_url, alice)[0] == 401
    assert _listing(cli, "alice")[0]["state"] == "revoked"
    assert [row["state"] for row in _listing(cli, "bob")] == ["active"]

    assert "already revoked" in failed(cli("tokens", "revoke", mine["id"]))
    assert "does not exist" in failed(cli("tokens", "revoke", "no-such-id"))
    assert "no user named 'carol'" in failed(cli("tokens", "list", "carol"))

    events = _audit(cli)
    assert [(actor, action) for actor, action, _, _ in events] == [
        ("cli", "user.create"), ("cli", "user.create"), ("cli", "token.issue"), ("cli", "token.issue"),
        ("cli", "token.revoke")]
    assert events[2][3]["user"] == "alice" and events[2][3]["name"] == "laptop"
    assert events[4][2] == mine["id"] and events[4][3]["user"] == "alice"


def test_tokens_issue_with_a_lifetime_or_the_deployments_default(cli: Cli) -> None:
    cli.ok("users", "add", "alice", "--department", "sales")
    result = cli.ok("tokens", "issue", "alice", "--expires-in-days", "7")
    assert len(result.stdout.splitlines()) == 1  # still the token alone on one line
    defaulted = cli("tokens", "issue", "alice", BPM_TOKEN_EXPIRY_DAYS="90")
    assert defaulted.returncode == 0, defaulted.stderr
    cli.ok("tokens", "issue", "alice")  # no default configured: never expires
    lifetimes: list[int | None] = []
    for row in _listing(cli, "alice"):
        if row["expires"] == "-":
            lifetimes.append(None)
            continue
        lifetime = datetime.fromisoformat(row["expires"]) - datetime.fromisoformat(row["created"])
        lifetimes.append(lifetime.days)
    assert sorted(lifetimes, key=lambda d: d or 0) == [None, 7, 90]
    assert "Invalid value for '--expires-in-days'" in failed(cli("tokens", "issue", "alice", "--expires-in-days", "0"))
    assert len(_listing(cli, "alice")) == 3

