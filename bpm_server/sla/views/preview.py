"""What-if before publishing, over HTTP: a draft diagram or SLA table measured against the
model's completed stages of the last N days (bpm_server.sla.preview)."""
from __future__ import annotations

from flask import request
from marshmallow import Schema, fields, validate

from bpm_server.errors import Invalid
from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import requires
from bpm_server.modeling.views import uploaded_content
from bpm_server.sla import preview
from bpm_server.sla.views.blueprint import blp


class PreviewArgs(Schema):
    days = fields.Integer(load_default=90, validate=validate.Range(min=1, max=366),
                          metadata={"description": "how far back completed stages are replayed"})


class PastStageSchema(Schema):
    task_id = fields.String()
    process_instance_id = fields.String()
    account_id = fields.String()
    account_name = fields.String()
    stage = fields.String()
    title = fields.String()
    completed_at = fields.DateTime()
    used_working_seconds = fields.Integer()
    length_before_working_seconds = fields.Integer(allow_none=True)
    length_after_working_seconds = fields.Integer(allow_none=True)


class StagePreviewSchema(Schema):
    stage = fields.String()
    title = fields.String()
    completed = fields.Integer()
    sla_after = fields.String(allow_none=True)
    on_time_before_percent = fields.Float(allow_none=True)
    on_time_after_percent = fields.Float(allow_none=True)


class SlaPreviewSchema(Schema):
    process_model_id = fields.String()
    days = fields.Integer()
    since = fields.DateTime()
    stages_compared = fields.Integer()
    stages = fields.List(fields.Nested(StagePreviewSchema))
    newly_breaching = fields.List(fields.Nested(PastStageSchema))
    no_longer_breaching = fields.List(fields.Nested(PastStageSchema))
    note = fields.String(allow_none=True, metadata={"description": "why nothing was compared, if nothing was"})


@blp.route("/process-models/<model_id>/sla-preview", methods=["POST"])
@requires("process_owner")
@blp.arguments(PreviewArgs, location="query")
@blp.doc(requestBody={"content": {
    "application/xml": {"schema": {"type": "string"}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
    "application/json": {"schema": {"type": "object", "required": ["sla"], "properties": {
        "sla": {"type": "object", "additionalProperties": {"type": "string", "nullable": True},
                "description": "stage id -> length ('3 working days'), or null for no SLA"}}}}}})
@blp.response(200, SlaPreviewSchema)
@blp.alt_response(422, description="the draft's problems per BPMN element, or the SLA table's per stage")
def sla_preview(args: dict, model_id: str) -> dict:
    """Replay the last ``days`` of the model's completed stages under a draft's SLAs (a draft
    diagram, or the current version with an SLA table's changes): on-time % per stage before and
    after, and which past stages would newly breach or stop breaching. Nothing is published."""
    session, rt = db_session(), deployment()
    if request.mimetype == "application/json":
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("sla"), dict):
            raise Invalid("the body must be {\"sla\": {\"<stage id>\": \"<length>\"}}", code="invalid_body",
                          details={"sla": ["an object: stage id -> length or null"]})
        draft = preview.draft_from_table(session, model_id, body["sla"])
    else:
        content, local_forms = uploaded_content()
        draft = preview.draft_from_diagram(session, model_id, content, local_forms)
    return preview.preview(session, rt.calendar, model_id, draft, days=args["days"], now=rt.clock.now())
