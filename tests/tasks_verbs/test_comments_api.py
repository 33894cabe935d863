"""Comments and attachments on tasks and instances; notifications marked read."""
from __future__ import annotations

from io import BytesIO

from tests.api.flows import open_task, start_project


def test_comments_and_attachments_with_limits_and_authorization(people, synced_app):
    instance = start_project(people["sales"])
    task = open_task(people["sales"], instance["id"], "kickoff")
    url = f"/api/v1/tasks/{task['id']}"
    made = people["sales"].post(url + "/comments", json={"body": "客户要求周五开会"})
    assert made.status_code == 201 and made.get_json()["author"] == "sales"
    assert people["sales"].post(url + "/comments", json={"body": "  "}).status_code == 422
    assert people["it"].post(url + "/comments", json={"body": "x"}).status_code == 404
    assert people["sales"].post("/api/v1/tasks/nope/comments", json={"body": "x"}).status_code == 404
    up = people["sales"].post(url + "/attachments", data={"file": (BytesIO(b"%PDF-1.4 minutes"), "纪要.pdf",
                                                                   "application/pdf")},
                              content_type="multipart/form-data")
    assert up.status_code == 201, up.get_json()
    attachment = up.get_json()
    assert attachment["filename"] == "纪要.pdf" and attachment["size_bytes"] == 16
    refused = people["sales"].post(url + "/attachments", data={"file": (BytesIO(b"MZ"), "run.exe",
                                                                        "application/x-msdownload")},
                                   content_type="multipart/form-data")
    assert refused.status_code == 415, refused.get_json()
    limit = synced_app.extensions["bpm"].config.attachment_max_bytes
    big = people["sales"].post(url + "/attachments", data={"file": (BytesIO(b"a" * (limit + 1)), "big.txt",
                                                                    "text/plain")},
                               content_type="multipart/form-data")
    assert big.status_code == 413, big.get_json()
    got = people["sales"].get(attachment["url"])
    assert got.status_code == 200 and got.data == b"%PDF-1.4 minutes"
    assert people["it"].get(attachment["url"]).status_code == 404
    listed = people["sales"].get(f"/api/v1/process-instances/{instance['id']}/attachments").get_json()
    assert [a["filename"] for a in listed["items"]] == ["纪要.pdf"]
    inst = people["sales"].post(f"/api/v1/process-instances/{instance['id']}/comments", json={"body": "整体顺利"})
    assert inst.status_code == 201
    all_comments = people["sales"].get(f"/api/v1/process-instances/{instance['id']}/comments").get_json()
    assert sorted(c["body"] for c in all_comments["items"]) == sorted(["客户要求周五开会", "整体顺利"])


def test_notifications_mark_read(people):
    instance = start_project(people["sales"])
    task = open_task(people["sales"], instance["id"], "kickoff")
    people["sales"].post(f"/api/v1/tasks/{task['id']}/claim")
    people["sales"].post(f"/api/v1/tasks/{task['id']}/transfer", json={"to": "sales2", "reason": "休假"})
    assert people["sales2"].get("/api/v1/notifications/unread-count").get_json()["unread"] == 1
    note = people["sales2"].get("/api/v1/notifications").get_json()["items"][0]
    assert note["title"].startswith("转交给你")
    assert people["sales"].post(f"/api/v1/notifications/{note['id']}/read").status_code == 404
    assert people["sales2"].post(f"/api/v1/notifications/{note['id']}/read").get_json()["unread"] == 0
