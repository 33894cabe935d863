"""Fixtures of the account tests: a small intervention model and a rule that starts it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bpm_server.config import Config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "accounts"
MODEL_ID = "test-intervention"


def rule_dmn(inputs: list[tuple[str, str]], rows: list[tuple[list[str], str]], *, outputs: str = "process_model_id",
             decision: str = "test_rule") -> str:
    """A one-table DMN file: ``rows`` are (input entries, process model id)."""
    ins = "".join(f'<input id="i{n}" label="{label}"><inputExpression id="e{n}"><text>{expr}</text>'
                  f"</inputExpression></input>" for n, (label, expr) in enumerate(inputs))
    body = "".join(f'<rule id="r{n}">' + "".join(f"<inputEntry id='r{n}i{k}'><text>{e}</text></inputEntry>"
                                                 for k, e in enumerate(entries))
                   + f'<outputEntry id="r{n}o"><text>"{model}"</text></outputEntry></rule>'
                   for n, (entries, model) in enumerate(rows))
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="t" namespace="t">'
            f'<decision id="{decision}" name="测试规则 (test rule)"><decisionTable id="t1" hitPolicy="FIRST">{ins}'
            f'<output id="o1" name="{outputs}"/>{body}</decisionTable></decision></definitions>')


def patch(caller: Any, url: str, body: dict) -> Any:
    return caller.client.patch(url, json=body, headers={"Authorization": f"Bearer {caller.token}"})


@pytest.fixture
def config(config):
    """The test clock is on, and the daily evaluation at its default moment: it is driven day by day."""
    return config.but(test_clock=True, accounts_daily_at=Config().accounts_daily_at)


@pytest.fixture
def intervention(people) -> str:
    """The fixture model, published under ``test-intervention``."""
    xml = (FIXTURES / "intervention.bpmn").read_text(encoding="utf-8")
    response = people["owner"].post("/api/v1/process-models", json={
        "id": MODEL_ID, "name": "测试干预 (test intervention)", "description": "", "files": {"main.bpmn": xml}})
    assert response.status_code == 201, response.get_json()
    return MODEL_ID


@pytest.fixture
def low_usage_rule(people, intervention) -> dict:
    """A rule: usage below 70 in each of the last two weeks starts the fixture model."""
    dmn = rule_dmn([("本周", "usage_week_1"), ("上周", "usage_week_2")], [(["&lt; 70", "&lt; 70"], intervention)])
    response = people["owner"].post("/api/v1/account-rules/usage-test/versions", json={"dmn": dmn})
    assert response.status_code == 201, response.get_json()
    return response.get_json()
