"""Process models and their versions over HTTP."""
from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bpm_server.errors import Invalid, NotFound
from bpm_server.extensions import db_session, deployment
from bpm_server.identity.auth import READERS, current_user, requires
from bpm_server.instances.views import MigrationResultSchema
from bpm_server.modeling import management, service
from bpm_server.modeling.files import model_upload, split_uploads
from bpm_server.modeling.models import ProcessModelVersion
from bpm_server.runtime import operations
from bpm_server.sla import start_timers

blp = Blueprint("process_models", __name__, url_prefix="/api/v1/process-models",
                description="Process models (BPMN) and their immutable versions")


class VersionSchema(Schema):
    id = fields.String()
    version = fields.Integer()
    content_hash = fields.String()
    entry_process = fields.String()
    source = fields.String()
    created_by = fields.String(allow_none=True)
    created_at = fields.DateTime()
    forms = fields.Method("_form_names")

    def _form_names(self, version: ProcessModelVersion) -> list[str]:
        return sorted(version.forms)


class ModelSchema(Schema):
    id = fields.String()
    name = fields.String()
    description = fields.String()
    archived_at = fields.DateTime(allow_none=True, metadata={"description": "set: no new instances start"})
    current_version = fields.Nested(VersionSchema, allow_none=True)
    versions = fields.List(fields.Nested(VersionSchema))


class UploadResultSchema(Schema):
    process_model_id = fields.String()
    created = fields.Boolean(metadata={"description": "false when this exact content was already published"})
    version = fields.Nested(VersionSchema)


def _model_view(process_model, versions):
    current = next((v for v in versions if v.id == process_model.current_version_id), None)
    return {"id": process_model.id, "name": process_model.name, "description": process_model.description,
            "archived_at": process_model.archived_at, "current_version": current, "versions": versions}


@blp.route("")
@requires(*READERS)
@blp.response(200, ModelSchema(many=True))
def list_models():
    """Every model with its current and past versions (newest first)."""
    return [_model_view(m, vs) for m, vs in service.list_models(db_session())]


@blp.route("/<model_id>")
@requires(*READERS)
@blp.response(200, ModelSchema)
def get_model(model_id: str):
    """One model with its versions."""
    for process_model, versions in service.list_models(db_session()):
        if process_model.id == model_id:
            return _model_view(process_model, versions)
    raise NotFound(f"process model {model_id!r} does not exist", code="unknown_process_model")


@blp.route("/<model_id>/versions/<int:number>/bpmn")
@requires(*READERS)
@blp.response(200, content_type="application/xml")
def get_version_bpmn(model_id: str, number: int):
    """The BPMN XML of one version (what the modeler opens)."""
    version = db_session().query(ProcessModelVersion).filter_by(process_model_id=model_id, version=number).first()
    if version is None:
        raise NotFound(f"process model {model_id!r} has no version {number}", code="unknown_version")
    return Response(version.bpmn_xml, mimetype="application/xml")


@blp.route("/<model_id>/versions", methods=["POST"])
@requires("process_owner")
@blp.doc(requestBody={"content": {"application/xml": {"schema": {"type": "string"}},
                                  "multipart/form-data": {"schema": {"type": "object", "properties": {
                                      "file": {"type": "string", "format": "binary"}}}}}})
@blp.response(201, UploadResultSchema)
@blp.alt_response(200, schema=UploadResultSchema, description="the same content was already published")
@blp.alt_response(422, description="the diagram has problems, listed per BPMN element id in details.problems")
def upload_version(model_id: str):
    """Validate and publish a new version (XML body, or multipart: one ``file``, or several ``files``:
    the model's BPMN and DMN files and its own forms as .json)."""
    content, local_forms = uploaded_content()
    version, created = service.publish_version(db_session(), model_id, content, source="upload",
                                               now=deployment().clock.now(), created_by=current_user().username,
                                               local_forms=local_forms)
    # The new current version's timer start events armed, the replaced version's disarmed.
    start_timers.arm_model(db_session(), deployment().evaluator, model_id, deployment().clock.now())
    return {"process_model_id": model_id, "created": created, "version": version}, (201 if created else 200)


def uploaded_content() -> tuple[bytes | dict[str, bytes], dict[str, Any]]:
    """One diagram, or a multi-file model's files (several multipart files: BPMN, DMN, forms)."""
    uploads = [*request.files.getlist("file"), *request.files.getlist("files")] \
        if request.mimetype == "multipart/form-data" else []
    if len(uploads) > 1 or any((u.filename or "").lower().endswith((".dmn", ".json")) for u in uploads):
        model_files, forms = split_uploads((u.filename or "", u.read()) for u in uploads)
        if not model_files:
            raise Invalid("the upload holds no .bpmn or .dmn file", code="empty_upload")
        return model_files, forms
    return _uploaded_xml(), {}


def _uploaded_xml() -> bytes:
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file") or request.files.get("files")
        if upload is None:
            raise Invalid("multipart upload needs the BPMN file in the field 'file'", code="missing_file",
                          details={"file": ["required"]})
        xml = upload.read()
    else:
        xml = request.get_data()
    if not xml.strip():
        raise Invalid("the upload is empty; send the BPMN XML", code="empty_upload")
    return xml


class ProblemSchema(Schema):
    element_id = fields.String(allow_none=True, metadata={"description": "the BPMN element at fault, if known"})
    message = fields.String()
    line = fields.Integer(allow_none=True)


class ValidationResultSchema(Schema):
    valid = fields.Boolean()
    problems = fields.List(fields.Nested(ProblemSchema))
    warnings = fields.List(fields.Nested(ProblemSchema), metadata={
        "description": "what publishing would accept but a process owner should know (an assignee nobody here has)"})


@blp.route("/<model_id>/versions/validate", methods=["POST"])
@requires("process_owner")
@blp.doc(requestBody={"content": {"application/xml": {"schema": {"type": "string"}},
                                  "multipart/form-data": {"schema": {"type": "object", "properties": {
                                      "file": {"type": "string", "format": "binary"}}}}}})
@blp.response(200, ValidationResultSchema)
def validate_version(model_id: str):
    """Run the upload's checks on a diagram without publishing it; problems are listed per BPMN element id."""
    content, local_forms = uploaded_content()
    problems, warnings = service.validate_diagram(db_session(), model_id, content, local_forms)
    return {"valid": not problems, "problems": [p.as_dict() for p in problems],
            "warnings": [w.as_dict() for w in warnings]}


class VersionCountSchema(Schema):
    version = fields.Integer()
    running = fields.Integer()
    total = fields.Integer()
    by_state = fields.Dict(keys=fields.String(), values=fields.Integer())


class InstanceCountsSchema(Schema):
    process_model_id = fields.String()
    versions = fields.List(fields.Nested(VersionCountSchema))


@blp.route("/<model_id>/instance-counts")
@requires(*READERS)
@blp.response(200, InstanceCountsSchema)
def instance_counts(model_id: str):
    """How many instances run (and have run) on each version, newest version first."""
    counts = service.instance_counts(db_session(), model_id)
    return {"process_model_id": model_id,
            "versions": [{"version": number, "running": states.get("running", 0), "total": sum(states.values()),
                          "by_state": states} for number, states in sorted(counts.items(), reverse=True)]}


class BulkMigrateSchema(Schema):
    to_version = fields.Integer(required=True, validate=validate.Range(min=1))
    from_version = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1))
    dry_run = fields.Boolean(load_default=True, metadata={"description": "default true: say what would happen"})


class BulkMigrationSchema(Schema):
    items = fields.List(fields.Nested(MigrationResultSchema))
    total = fields.Integer()
    migrated = fields.Integer()


@blp.route("/<model_id>/migrate", methods=["POST"])
@requires("admin", "process_owner")
@blp.arguments(BulkMigrateSchema)
@blp.response(200, BulkMigrationSchema)
def migrate_instances(body: dict, model_id: str):
    """Migrate every running or failed instance of the model (optionally only those on
    ``from_version``) to ``to_version``; a dry run (the default) changes nothing."""
    rt = deployment()
    results = operations.migrate_model_instances(db_session(), rt, model_id, body["to_version"],
                                                 from_version=body["from_version"], dry_run=body["dry_run"],
                                                 actor=current_user().username, now=rt.clock.now())
    return {"items": results, "total": len(results), "migrated": sum(r.migrated for r in results)}


# --------------------------------------------------------------------------- model lifecycle


class CreateModelSchema(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    description = fields.String(load_default="", validate=validate.Length(max=10_000))
    entry_process = fields.String(load_default=None, allow_none=True,
                                  metadata={"description": "the process to start; inferred when omitted"})
    files = fields.Dict(keys=fields.String(), values=fields.String(), load_default=None,
                        metadata={"description": "file name -> content (JSON body); multipart sends `files`"})


def _created_files(body: dict) -> tuple[bytes | dict[str, bytes], dict[str, Any]]:
    """The files of a new model (JSON ``files`` by name, or multipart ``files``/``file``): one
    diagram, or several BPMN and DMN files with the model's own forms (.json)."""
    if request.mimetype == "multipart/form-data":
        uploads = [(u.filename or "", u.read()) for u in
                   [*request.files.getlist("files"), *request.files.getlist("file")]]
    else:
        files = body.get("files") or {}
        if not all(isinstance(text, str) for text in files.values()):
            raise Invalid("each file in 'files' is its name and its text", code="invalid_body",
                          details={"files": ["name -> text"]})
        uploads = [(name, text.encode()) for name, text in files.items()]
    return model_upload(uploads)


def _create_body() -> dict:
    raw: Any
    if request.mimetype == "multipart/form-data":
        raw = {k: v for k, v in request.form.items() if k in ("id", "name", "description", "entry_process")}
    else:
        raw = request.get_json(silent=True)
        if not isinstance(raw, dict):
            raise Invalid("the body must be a JSON object", code="invalid_body")
    errors = CreateModelSchema().validate(raw)
    if errors:
        raise Invalid("the new model has errors in: " + ", ".join(sorted(errors)), code="validation_error",
                      details=errors)
    return CreateModelSchema().load(raw)


@blp.route("", methods=["POST"])
@requires("process_owner")
@blp.doc(requestBody={"content": {
    "application/json": {"schema": {"type": "object", "required": ["id", "name", "files"], "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"},
        "entry_process": {"type": "string"},
        "files": {"type": "object", "additionalProperties": {"type": "string"}}}}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"},
        "entry_process": {"type": "string"},
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}})
@blp.response(201, ModelSchema)
@blp.alt_response(409, description="a model with this id exists")
@blp.alt_response(422, description="bad fields, or the diagram's problems per BPMN element id")
def create_model():
    """Create a model with its first version (the entry process chosen or inferred)."""
    body = _create_body()
    content, local_forms = _created_files(body)
    session, rt = db_session(), deployment()
    process_model, version = management.create_model(
        session, model_id=body["id"], name=body["name"], description=body["description"], content=content,
        local_forms=local_forms, entry_process=body["entry_process"], actor=current_user().username,
        now=rt.clock.now())
    return _model_view(process_model, [version]), 201


def _one_model(model_id: str) -> dict:
    for process_model, versions in service.list_models(db_session()):
        if process_model.id == model_id:
            return _model_view(process_model, versions)
    raise NotFound(f"process model {model_id!r} does not exist", code="unknown_process_model")


@blp.route("/<model_id>/versions/<int:number>/republish", methods=["POST"])
@requires("process_owner")
@blp.response(200, ModelSchema)
@blp.alt_response(409, description="that version is already current")
def republish_version(model_id: str, number: int):
    """Make an older version current again: new instances start on it (running ones keep theirs)."""
    management.republish(db_session(), model_id, number, actor=current_user().username,
                         now=deployment().clock.now())
    return _one_model(model_id)


@blp.route("/<model_id>/archive", methods=["POST"])
@requires("process_owner")
@blp.response(200, ModelSchema)
@blp.alt_response(409, description="already archived")
def archive_model(model_id: str):
    """Archive a model: starting an instance of it answers 409; running instances go on."""
    management.archive(db_session(), model_id, actor=current_user().username, now=deployment().clock.now())
    return _one_model(model_id)


@blp.route("/<model_id>/unarchive", methods=["POST"])
@requires("process_owner")
@blp.response(200, ModelSchema)
@blp.alt_response(409, description="not archived")
def unarchive_model(model_id: str):
    """Let a model start instances again."""
    management.unarchive(db_session(), model_id, actor=current_user().username, now=deployment().clock.now())
    return _one_model(model_id)
