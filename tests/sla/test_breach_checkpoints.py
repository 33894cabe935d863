"""Signed checkpoints of the breach log kept outside the database: someone with
database access who deletes the newest entries *and* rewinds the head row leaves
a chain that is consistent with itself; only a checkpoint taken earlier shows it."""
from __future__ import annotations

import json
from pathlib import Path

from flask import Flask
from sqlalchemy import select, text

from bpm_server.database import db
from bpm_server.sla import breaches
from bpm_server.sla.models import BreachEntry
from tests.sla.test_breach_log import _bypass_trigger_and_run, audit_verify, logged  # noqa: F401 (fixture)


def _checkpoint(database_url: str, tmp_path: Path, out: Path, **env: str) -> dict:
    result = audit_verify(database_url, tmp_path, "--out", str(out), command="checkpoint", **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _cut_last_entry_and_rewind_head(app: Flask) -> int:
    with app.app_context():
        last, before = db.session.execute(select(BreachEntry.seq, BreachEntry.prev_hash)
                                          .order_by(BreachEntry.seq.desc()).limit(1)).one()
        db.session.remove()
    _bypass_trigger_and_run(app, "DELETE FROM sla_breach_log WHERE seq = :seq", {"seq": last})
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("UPDATE sla_breach_log_head SET seq = :seq, hash = :hash"),
                     {"seq": last - 1, "hash": before})
    return last


def test_a_checkpoint_reveals_entries_cut_from_the_end_with_the_head_rewound(
        logged, synced_app: Flask, database_url: str, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "breach.ckpt"
    point = _checkpoint(database_url, tmp_path, out)
    assert point["entries"] >= 3 and len(point["hash"]) == 64 and point["signature"]
    assert out.read_text().count("\n") == 1
    ok = audit_verify(database_url, tmp_path, "--checkpoint", str(out))
    assert ok.returncode == 0 and "matches 1 checkpoint" in ok.stdout, ok.stdout + ok.stderr

    last = _cut_last_entry_and_rewind_head(synced_app)

    # Without the checkpoint the shortened log looks whole: that is the gap this closes.
    plain = audit_verify(database_url, tmp_path)
    assert plain.returncode == 0 and f"{last - 1} entries" in plain.stdout, plain.stdout + plain.stderr
    checked = audit_verify(database_url, tmp_path, "--checkpoint", str(out))
    output = checked.stdout + checked.stderr
    assert checked.returncode != 0, output
    assert f"saw {last} entries" in output and "removed from the end" in output, output
    assert "Traceback" not in output


def test_a_forged_or_foreign_checkpoint_fails_its_signature(
        logged, synced_app: Flask, database_url: str, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "breach.ckpt"
    point = _checkpoint(database_url, tmp_path, out)
    forged = {**point, "entries": point["entries"] - 1}
    (tmp_path / "forged.ckpt").write_text(json.dumps(forged) + "\n")
    result = audit_verify(database_url, tmp_path, "--checkpoint", str(tmp_path / "forged.ckpt"))
    assert result.returncode != 0 and "wrong signature" in result.stderr, result.stdout + result.stderr

    other_key = audit_verify(database_url, tmp_path, "--checkpoint", str(out), BPM_CHECKPOINT_KEY="another-key")
    assert other_key.returncode != 0 and "wrong signature" in other_key.stderr, other_key.stderr


def test_checkpoints_accumulate_and_each_is_checked(logged, synced_app: Flask,  # noqa: F811
                                                    database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "breach.ckpt"
    first = _checkpoint(database_url, tmp_path, out)
    second = _checkpoint(database_url, tmp_path, out)
    assert first["entries"] == second["entries"] and out.read_text().count("\n") == 2
    result = audit_verify(database_url, tmp_path, "--checkpoint", str(out))
    assert result.returncode == 0 and "matches 2 checkpoint(s)" in result.stdout, result.stdout + result.stderr


def test_no_checkpoint_is_signed_for_a_broken_chain_and_a_bad_file_is_named(
        logged, synced_app: Flask, database_url: str, tmp_path: Path) -> None:  # noqa: F811
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_text("not json\n")
    result = audit_verify(database_url, tmp_path, "--checkpoint", str(garbage))
    assert result.returncode != 0 and "line 1: not JSON" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr

    with synced_app.app_context():
        seq = db.session.scalar(select(BreachEntry.seq).order_by(BreachEntry.seq).limit(1))
        db.session.remove()
    _bypass_trigger_and_run(synced_app, "UPDATE sla_breach_log SET assignee = 'mallory' WHERE seq = :seq",
                            {"seq": seq})
    out = tmp_path / "breach.ckpt"
    refused = audit_verify(database_url, tmp_path, "--out", str(out), command="checkpoint")
    assert refused.returncode != 0 and "no checkpoint signed" in refused.stderr, refused.stderr
    assert not out.exists()


def test_a_checkpoint_reveals_a_last_entry_rewritten_with_its_hash_recomputed(
        logged, synced_app: Flask, database_url: str, tmp_path: Path) -> None:  # noqa: F811
    """The chain's hash is no secret: whoever edits the newest entry can recompute its
    hash and the head's. The signed checkpoint still holds the old hash."""
    out = tmp_path / "breach.ckpt"
    _checkpoint(database_url, tmp_path, out)
    with synced_app.app_context():
        entry = db.session.scalars(select(BreachEntry).order_by(BreachEntry.seq.desc()).limit(1)).one()
        entry.assignee = "mallory"
        forged_hash = breaches._digest(breaches._hashed_fields(entry), entry.prev_hash)
        seq = entry.seq
        db.session.rollback()
        db.session.remove()
    _bypass_trigger_and_run(synced_app, "UPDATE sla_breach_log SET assignee = 'mallory', hash = :hash "
                            "WHERE seq = :seq", {"hash": forged_hash, "seq": seq})
    with synced_app.app_context(), db.engine.begin() as conn:
        conn.execute(text("UPDATE sla_breach_log_head SET hash = :hash"), {"hash": forged_hash})

    assert audit_verify(database_url, tmp_path).returncode == 0  # the chain alone cannot tell
    result = audit_verify(database_url, tmp_path, "--checkpoint", str(out))
    assert result.returncode != 0 and f"entry {seq} differs" in result.stderr, result.stdout + result.stderr
