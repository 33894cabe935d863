"""Model texts per locale (process_models/<id>/messages/<locale>.json): task title,
instructions and form in the reader's language, on the task API (?lang=) and the task page."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from io import BytesIO
from pathlib import Path

import pytest

from bpm_server.config import PROJECT_ROOT
from tests.api.flows import start_project
from tests.processes.helpers import start
from tests.support import new_model, page_client

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
SPIFF = "{http://spiffworkflow.org/bpmn/schema/1.0/core}"
MODELS = PROJECT_ROOT / "process_models"
SHIPPED = ["account-project", "churn-risk-intervention", "key-contact-handover", "green-channel-request",
           "quarterly-business-review", "tier-review"]


def kickoff(people) -> dict:
    [task] = start_project(people["sales"], "GAMMA")["tasks"]
    return task


def test_the_task_api_gives_account_project_in_chinese_or_english_on_request(people) -> None:
    task = kickoff(people)
    url = f"/api/v1/tasks/{task['id']}"
    zh = people["sales"].get(url, query_string={"lang": "zh_CN"}).get_json()
    assert zh["title"] == "项目启动" and zh["instructions"].startswith("与客户及内部项目团队召开启动会")
    assert zh["form"]["title"] == "项目启动"
    assert zh["form"]["properties"]["kickoff_minutes"]["title"] == "启动会会议纪要"
    assert zh["form"]["properties"]["kickoff_minutes"]["minLength"] == 10  # the constraints are untouched
    en = people["sales"].get(url, query_string={"lang": "en"}).get_json()
    assert en["title"] == "Project kickoff" and en["form"]["properties"]["kickoff_minutes"]["title"] == \
        "Kickoff meeting minutes"
    plain = people["sales"].get(url).get_json()  # without ?lang=: the texts as modelled
    assert plain["title"] == "Project kickoff"


def test_a_chinese_first_model_reads_in_english_with_its_choices(people) -> None:
    started = start(people["sales"], "churn-risk-intervention", "GAMMA")
    task = next(t for t in started["tasks"] if t["name"] == "contact_customer")
    url = f"/api/v1/tasks/{task['id']}"
    en = people["sales"].get(url, query_string={"lang": "en"}).get_json()
    assert en["title"] == "Contact the customer and assess the churn risk"
    cause = en["form"]["properties"]["risk_cause"]
    assert cause["title"] == "Main cause of the risk" and cause["enumNames"][0] == "Usage dropped"
    assert cause["enum"][0] == "low_usage"
    zh = people["sales"].get(url, query_string={"lang": "zh_CN"}).get_json()
    assert zh["title"] == "联系客户并评估流失风险"
    assert zh["form"]["properties"]["risk_cause"]["enumNames"][0] == "使用率下降"


def test_the_task_page_shows_chinese_by_default_and_english_on_request(people, synced_app) -> None:
    churn = start(people["sales"], "churn-risk-intervention", "GAMMA",
                          {"trigger": {"rule": "payment_overdue_30", "facts": {"overdue_days": 31}}})
    task = next(t for t in churn["tasks"] if t["name"] == "contact_customer")
    assert people["sales"].post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    browser = page_client(synced_app, "sales")
    zh = browser.get(f"/tasks/{task['id']}").get_data(as_text=True)
    for text in ("联系客户并评估流失风险", "主要风险原因", "使用率下降", "背景资料", "触发规则与事实",
                 "payment_overdue_30", "该客户近期的 SLA 超时"):
        assert text in zh, text
    en = browser.get(f"/tasks/{task['id']}?lang=en").get_data(as_text=True)
    for text in ("Contact the customer and assess the churn risk", "Main cause of the risk", "Usage dropped",
                 "Rule and facts that triggered this", "Recent SLA breaches of the account"):
        assert text in en, text
    assert "主要风险原因" not in en

    [kick] = start_project(people["sales"], "BETA")["tasks"]
    assert people["sales"].post(f"/api/v1/tasks/{kick['id']}/claim").status_code == 200
    page = browser.get(f"/tasks/{kick['id']}?lang=zh_CN").get_data(as_text=True)
    assert "<h1 data-testid=\"task-title\">项目启动</h1>" in page and "启动会会议纪要" in page


def _texts(model_id: str) -> set[str]:
    """Every text a reader of the model sees: stage names, instructions, form titles, help texts, choices."""
    folder = MODELS / model_id
    meta = json.loads((folder / "model.json").read_text("utf-8"))
    root = ET.parse(folder / meta["bpmn_file"]).getroot()
    found = {meta["name"]}
    forms: set[str] = set()
    for element in root.iter():
        if element.tag == f"{BPMN}userTask":
            found.add(element.get("name") or "")
        if element.tag == f"{SPIFF}instructionsForEndUser" and element.text:
            found.add(element.text.strip())
        if element.tag == f"{SPIFF}property" and element.get("name") == "formJsonSchemaFilename":
            forms.add(element.get("value") or "")
    for name in forms:
        walk = [json.loads((PROJECT_ROOT / "forms" / name).read_text("utf-8"))]
        while walk:
            node = walk.pop()
            if isinstance(node, dict):
                found |= {node[k] for k in ("title", "description") if isinstance(node.get(k), str)}
                found |= set(node.get("enumNames") or [])
                walk += list(node.values())
            elif isinstance(node, list):
                walk += node
    return found


@pytest.mark.parametrize("model_id", SHIPPED)
def test_every_text_of_a_shipped_model_has_its_other_language(model_id: str) -> None:
    texts = _texts(model_id)
    chinese = {t for t in texts if re.search(r"[\u4e00-\u9fff]", t)}
    other = "en" if chinese else "zh_CN"
    messages = json.loads((MODELS / model_id / "messages" / f"{other}.json").read_text("utf-8"))
    written_in = chinese if chinese else texts
    assert written_in == texts, f"{model_id} mixes languages: {sorted(texts - written_in)}"
    assert sorted(texts - set(messages)) == []


def _publish(caller, files: dict[str, bytes]):
    data = {"files": [(BytesIO(content), name) for name, content in files.items()]}
    return caller.post("/api/v1/process-models/handover-copy/versions", data=data, content_type="multipart/form-data")


def test_a_broken_messages_file_is_refused_naming_it_and_a_good_one_is_published(people, synced_app) -> None:
    new_model(synced_app, "handover-copy")
    bpmn = (MODELS / "key-contact-handover" / "key-contact-handover.bpmn").read_bytes()
    forms = {f"key-contact-handover/{p.name}": p.read_bytes()
             for p in (PROJECT_ROOT / "forms" / "key-contact-handover").iterdir()}
    refused = _publish(people["owner"], {"handover.bpmn": bpmn, **forms, "messages/en.json": b'["not", "a", "map"]'})
    assert refused.status_code == 422, refused.get_json()
    assert "messages/en.json" in json.dumps(refused.get_json(), ensure_ascii=False)
    versions = people["owner"].get("/api/v1/process-models/handover-copy").get_json()
    assert versions["current_version"] is None
    catalogue = json.dumps({"24小时内完成联系人交接": "Hand over now"}).encode()
    accepted = _publish(people["owner"], {"handover.bpmn": bpmn, **forms, "messages/en.json": catalogue})
    assert accepted.status_code == 201, accepted.get_json()
    started = start(people["sales"], "handover-copy", "BETA")
    detail = people["sales"].get(f"/api/v1/tasks/{started['tasks'][0]['id']}?lang=en").get_json()
    assert detail["title"] == "Hand over now"
    assert detail["form"]["title"] == "联系人交接"  # a text the catalogue does not know stays as written


def test_model_folders_keep_messages_out_of_the_forms(tmp_path: Path) -> None:
    from bpm_server.modeling.files import read_model_folder

    folder = MODELS / "tier-review"
    _, local = read_model_folder(folder, folder / "tier-review.bpmn")
    assert set(local) == {"messages/en.json"}


def test_a_diagram_published_alone_keeps_the_translations_of_the_current_version(people) -> None:
    bpmn = (MODELS / "account-project" / "account-project.bpmn").read_text("utf-8")
    changed = bpmn.replace('<spiffworkflow:property name="sla" value="2 working days" />',
                           '<spiffworkflow:property name="sla" value="3 working days" />', 1)
    published = people["owner"].post("/api/v1/process-models/account-project/versions", data=changed.encode(),
                                     content_type="application/xml")  # as the modeler publishes: the diagram only
    assert published.status_code == 201 and published.get_json()["version"]["version"] == 2
    task = kickoff(people)
    zh = people["sales"].get(f"/api/v1/tasks/{task['id']}", query_string={"lang": "zh_CN"}).get_json()
    assert zh["title"] == "项目启动"
