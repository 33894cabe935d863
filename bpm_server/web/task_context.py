"""What a stage asks its task page to show beside the form, declared in the diagram:

- ``showData``: process data fields (comma-separated names), e.g. ``trigger`` — the
  account rule and the facts that started a churn-risk intervention;
- ``showAccountContext="true"``: the account's other running processes and its recent
  SLA breaches, so whoever acts on a risk sees what else is going on with the account.

Labels come from the forms of the instance's version (in the reader's language)."""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from bpm_server.instances import service as instances
from bpm_server.modeling import texts
from bpm_server.modeling.service import compiled
from bpm_server.sla import breaches
from bpm_server.tasks.models import HumanTask
from bpm_server.web.labels import stage_titles

SHOW_DATA = "showData"
SHOW_ACCOUNT = "showAccountContext"
RECENT = 10


def context_of(session: Session, task: HumanTask, messages: Mapping[str, str]) -> dict[str, Any]:
    """``{"data": [(label, text)], "processes": [...] | None, "breaches": [...] | None}``."""
    version = instances.get_instance(session, task.process_instance_id).version
    spec = compiled(version).human_tasks.get(task.name)
    properties: Mapping[str, str] = spec.properties if spec is not None else {}
    labels, choices = _labels(version.forms, messages)
    data = task.data or {}
    names = [n.strip() for n in (properties.get(SHOW_DATA) or "").split(",") if n.strip()]
    shown = [(labels.get(name, name), _text(data[name], choices.get(name, {})))
             for name in names if data.get(name) not in (None, "")]
    result: dict[str, Any] = {"data": shown, "processes": None, "breaches": None}
    if (properties.get(SHOW_ACCOUNT) or "").strip().lower() == "true":
        running, _ = instances.list_instances(session, account_id=task.account_id, state="running", per_page=RECENT)
        result["processes"] = [i for i in running if i.id != task.process_instance_id]
        result["breaches"], _ = breaches.search(session, breaches.BreachFilter(account_id=task.account_id,
                                                                                per_page=RECENT))
        result["breach_titles"] = stage_titles(b["task_id"] for b in result["breaches"])
    return result


def _labels(forms: Mapping[str, Any], messages: Mapping[str, str]) -> tuple[dict[str, str], dict[str, dict]]:
    """Each field's title, and each choice field's labels by value (``enumNames``), translated."""
    labels: dict[str, str] = {}
    choices: dict[str, dict] = {}
    for name, schema in forms.items():
        if texts.is_messages_file(name) or not isinstance(schema, Mapping):
            continue
        for field, spec in (schema.get("properties") or {}).items():
            if not isinstance(spec, Mapping):
                continue
            if isinstance(spec.get("title"), str):
                labels.setdefault(field, texts.text(spec["title"], messages) or field)
            values, names = spec.get("enum"), spec.get("enumNames")
            if isinstance(values, list) and isinstance(names, list) and len(values) == len(names):
                pairs = zip(values, names, strict=True)
                choices.setdefault(field, {value: texts.text(label, messages) for value, label in pairs
                                           if isinstance(value, str) and isinstance(label, str)})
    return labels, choices


def _text(value: Any, choices: Mapping[str, Any]) -> str:
    """A data value as a person reads it: a choice by its label, a text as it is, the rest as JSON."""
    if isinstance(value, str):
        return str(choices.get(value) or value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
