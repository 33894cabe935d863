"""Locale-aware dates and durations, and the stage-form renderer."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from bpm_server.config import PROJECT_ROOT
from bpm_server.web import forms
from bpm_server.web.i18n import date_filter, datetime_filter, working_duration_filter

FORMS = PROJECT_ROOT / "forms" / "account-project"
MOMENT = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai


@pytest.fixture
def app(tmp_path) -> Flask:
    """No database is touched here: one app, not one per backend."""
    from bpm_server.app import create_app
    from bpm_server.config import Config

    return create_app(Config(database_url=f"sqlite:///{tmp_path / 'unused.sqlite3'}", testing=True))


def test_dates_and_durations_follow_the_page_language(app: Flask) -> None:
    with app.test_request_context("/inbox"):
        assert datetime_filter(MOMENT, "short") == "2026/3/2 09:30"
        assert date_filter(MOMENT, "long") == "2026年3月2日"
        assert working_duration_filter(timedelta(hours=9, minutes=15)) == "1 个工作日 1 小时"
        assert working_duration_filter(timedelta(minutes=45)) == "45 分钟"
    with app.test_request_context("/inbox?lang=en"):
        assert datetime_filter(MOMENT, "short") == "3/2/26, 9:30\u202fAM"
        assert date_filter(MOMENT, "long") == "March 2, 2026"
        assert working_duration_filter(timedelta(hours=17)) == "2 working days 1 h"
        assert working_duration_filter(timedelta(hours=8)) == "1 working day"


def _schema(name: str) -> dict:
    return json.loads((FORMS / f"{name}.json").read_text())


def test_every_process_form_renders_with_a_widget_per_field(app: Flask) -> None:
    widgets = {}
    with app.test_request_context("/"):
        for path in sorted(FORMS.glob("*.json")):
            for field in forms.fields_of(json.loads(path.read_text())):
                widgets[f"{path.stem}.{field.name}"] = field.widget
    assert widgets["kickoff.kickoff_minutes"] == "textarea"
    assert widgets["kickoff.attendees"] == "text"
    assert widgets["kickoff.kickoff_date"] == "date"
    assert widgets["needs_research.requirements_doc_url"] == "url"
    assert widgets["needs_research.requirements_confirmed"] == "checkbox"
    assert widgets["delivery.acceptance_result"] == "select"
    assert set(widgets.values()) <= {"text", "textarea", "date", "url", "select", "checkbox", "number"}


def test_posted_fields_become_the_json_the_server_validates(app: Flask) -> None:
    schema = {"type": "object", "properties": {
        "count": {"type": "integer"}, "ok": {"type": "boolean"}, "note": {"type": "string"},
        "when": {"type": "string", "format": "date"}, "kind": {"type": "string", "enum": ["a", "b"]}}}
    data = forms.data_from_form(schema, {"field:count": "12", "field:ok": "on", "field:note": "",
                                         "field:when": " 2026-03-02 ", "field:kind": "b"})
    assert data == {"count": 12, "ok": True, "when": "2026-03-02", "kind": "b"}  # empty note left out
    assert forms.data_from_form(schema, {"field:count": "twelve"}) == {"count": "twelve"}  # the server says why


def test_server_messages_are_shown_in_the_page_language(app: Flask) -> None:
    schema = _schema("kickoff")
    with app.test_request_context("/"):
        [minutes, *_] = forms.fields_of(schema, {"kickoff_minutes": "short"},
                                        {"kickoff_minutes": ["'short' is too short"]})
        assert minutes.errors == ["至少 10 个字符。"]
    with app.test_request_context("/?lang=en"):
        [minutes, *_] = forms.fields_of(schema, {}, {"kickoff_minutes": ["this field is required"]})
        assert minutes.errors == ["This field is required."]
