"""The API against its own OpenAPI document (/api/v1/openapi.json), with Schemathesis.

For every operation Schemathesis generates requests, valid ones and ones that
break the document, and sends each with a token of every role (staff, a
department lead, process owner, auditor, admin, integration). Each answer must
be no 5xx, have a status the document lists for the operation, and a body,
error bodies included, that matches the schema the document gives that status.

The examples are bounded and derandomized: the same requests every run, the
whole file within a few minutes on a busy 2-core machine. One app and database
serve the whole module (with the demo's models, accounts and a running
instance), so what one request created is there for the next.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bpm_server.app import create_app
from bpm_server.clock import SettableClock
from bpm_server.config import PROJECT_ROOT, Config
from bpm_server.database import db
from tests.conftest import START, empty_tables

# Requests per operation, each sent once per role. A longer hunt asks for more, and for requests other
# than the fixed ones: BPM_TEST_SCHEMATHESIS_EXAMPLES=50 BPM_TEST_SCHEMATHESIS_RANDOM=1.
EXAMPLES_PER_OPERATION = int(os.environ.get("BPM_TEST_SCHEMATHESIS_EXAMPLES") or 8)
RANDOM = bool(os.environ.get("BPM_TEST_SCHEMATHESIS_RANDOM"))
# What any operation may answer, which the document's `default` error response stands for: no token or
# a bad one, a role without the right, an id that does not exist, input refused, the database away.
ANY_OPERATION = {401, 403, 404, 422, 503}


def documented_status(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                      case: schemathesis.Case) -> None:
    """Stricter than status_code_conformance (which any status passes through `default`): a status particular
    to the operation (a success, 409, 413, 415, 429, ...) is listed in the operation's own responses."""
    listed = set(case.operation.definition.raw.get("responses", {}))
    if response.status_code not in ANY_OPERATION and str(response.status_code) not in listed:
        raise AssertionError(f"{case.operation.label} answered {response.status_code}, which its responses "
                             f"({', '.join(sorted(listed))}) do not list: document it (@blp.alt_response)")


CHECKS = [not_a_server_error, status_code_conformance, documented_status, content_type_conformance,
          response_schema_conformance]
ROLES = {"staff": ("sales", ["staff"]), "lead": ("sales", ["staff"]), "process_owner": ("pmo", ["process_owner"]),
         "auditor": ("audit", ["auditor"]), "admin": ("it", ["admin"]), "integration": ("erp", ["integration"])}


# Names of path parameters and body fields, and a value of each that exists (filled by ``served``): a
# random id reaches only the 404 of its operation, so a generated request has one of these instead, now and then.
KNOWN: dict[str, object] = {}


@pytest.fixture(scope="module")
def served(pg_url: str) -> Iterator[tuple[Flask, dict[str, str]]]:
    """The app on this run's database with the demo's models, three accounts, one user per role (the lead
    leading sales) and one running instance; the tokens by role."""
    from bpm_server.accounts.service import upsert_account
    from bpm_server.identity.models import Department
    from bpm_server.identity.service import add_user, issue_token
    from bpm_server.modeling.service import sync_from_disk
    from bpm_server.sla.policies import sync_file

    config = Config(database_url=pg_url, testing=True, secret_key="test-secret",
                    erp_webhook_secret="test-webhook-secret", models_dir=PROJECT_ROOT / "process_models",
                    forms_dir=PROJECT_ROOT / "forms", queue_name="bpm-test")
    clock = SettableClock(START)
    app = create_app(config, clock=clock)
    empty_tables(app)
    tokens = {}
    with app.app_context():
        now = clock.now()
        sync_from_disk(db.session, config.models_dir, config.forms_dir, now=now)
        sync_file(db.session, config.models_dir / "escalation-policies.json", now=now)
        for role, (department, roles) in ROLES.items():
            user = add_user(db.session, role, department=department, roles=roles, now=now)
            tokens[role] = issue_token(db.session, user, now=now)
            if role == "lead":
                db.session.get_one(Department, department).lead_user_id = user.id
        for account_id, tier in (("ACME", "strategic"), ("BETA", "key"), ("GAMMA", "standard")):
            upsert_account(db.session, account_id, name=f"{account_id} Ltd", tier=tier, owner="staff", now=now)
        db.session.commit()
    started = app.test_client().post(
        "/api/v1/process-instances", headers={"Authorization": f"Bearer {tokens['staff']}"},
        json={"process_model_id": "account-project", "account_id": "ACME",
              "data": {"contract_no": "HT-1", "signed_at": "2026-03-02T09:00:00+08:00"}})
    assert started.status_code == 201, started.get_json()
    instance = started.get_json()
    inbox = app.test_client().get("/api/v1/tasks", headers={"Authorization": f"Bearer {tokens['staff']}"})
    KNOWN.update(instance_id=instance["id"], task_id=inbox.get_json()["items"][0]["id"], model_id="account-project",
                 process_model_id="account-project", account_id="ACME", number=1, username="staff",
                 department_id="sales", department="sales", assignee="staff", name="standard")
    yield app, tokens
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _document() -> dict:
    """The document as the app serves it, from an app that never touches a database (collection runs
    before any fixture, and the operations are the test's parameters)."""
    client = create_app(Config(database_url="sqlite://", testing=True)).test_client()
    return client.get("/api/v1/openapi.json").get_json()


schema = schemathesis.openapi.from_dict(_document(), config=schemathesis.Config.from_dict({
    "seed": 13,
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    "generation": {"max-examples": EXAMPLES_PER_OPERATION, "mode": "all", "database": "none"},
}))


def _with_known(values: object) -> st.SearchStrategy:
    """The generated values as they are, or with each known name given its existing value."""
    if not isinstance(values, dict) or not KNOWN.keys() & values.keys():
        return st.just(values)
    return st.sampled_from([values, {**values, **{k: KNOWN[k] for k in KNOWN.keys() & values.keys()}}])


@schema.hook("flatmap_path_parameters")
def _known_path(context: schemathesis.HookContext, path_parameters: dict) -> st.SearchStrategy:
    return _with_known(path_parameters)


@schema.hook("flatmap_body")
def _known_body(context: schemathesis.HookContext, body: object) -> st.SearchStrategy:
    return _with_known(body)


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=not RANDOM, database=None, deadline=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_every_answer_matches_the_document(case: schemathesis.Case, served: tuple[Flask, dict[str, str]]) -> None:
    app, tokens = served
    for token in tokens.values():
        case.call_and_validate(app=app, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
