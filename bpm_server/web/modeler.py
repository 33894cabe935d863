"""Process owners' pages: the models with their versions (and how many
instances run on each), and the bpmn-js modeler for one version.

The modeler page only renders the frame; the diagram comes from the REST API
(``GET .../versions/<n>/bpmn``), is checked with ``POST .../versions/validate``
and published with ``POST .../versions`` (session cookie plus X-CSRF-Token).
bpmn-js itself is served from ``frontend/node_modules`` (installed by
``make install`` with ``npm ci``; never committed).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import abort, flash, redirect, render_template, request, send_from_directory, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from bpm_server.accounts.models import TIERS
from bpm_server.database import db
from bpm_server.errors import AppError, Invalid
from bpm_server.extensions import deployment
from bpm_server.identity import departments
from bpm_server.identity.auth import current_user
from bpm_server.identity.models import Department
from bpm_server.modeling import management, service
from bpm_server.modeling.files import model_upload
from bpm_server.modeling.models import FormDefinition, ProcessModel, ProcessModelVersion
from bpm_server.sla.models import EscalationPolicy
from bpm_server.web.i18n import current_language
from bpm_server.web.session import error_page, page_blueprint, page_requires

BPMN_JS_DIST = Path(__file__).resolve().parent / "frontend" / "node_modules" / "bpmn-js" / "dist"

blp = page_blueprint("modeler", __name__)


@blp.route("/vendor/bpmn-js/<path:filename>")
def bpmn_js(filename: str) -> Any:
    """bpmn-js's prebuilt bundle and styles, straight from the npm package."""
    if not BPMN_JS_DIST.is_dir():
        abort(404, description="bpmn-js is not installed: run `make install` (npm ci in bpm_server/web/frontend)")
    return send_from_directory(BPMN_JS_DIST, filename, max_age=3600)


@blp.route("/models")
@page_requires("process_owner")
def models() -> str:
    session = db.session
    rows = []
    for process_model, versions in service.list_models(session):
        counts = service.instance_counts(session, process_model.id)
        rows.append({"model": process_model, "versions": [
            {"version": v, "current": v.id == process_model.current_version_id,
             "running": counts.get(v.version, {}).get("running", 0),
             "total": sum(counts.get(v.version, {}).values())} for v in versions]})
    return render_template("modeler/models.html", rows=rows, form=request.args)


def _uploaded_files() -> tuple[bytes | dict[str, bytes], dict[str, Any]]:
    """The files chosen in the page's file input: one diagram, or a model's BPMN and DMN files with its forms."""
    uploads = [(u.filename or "", u.read()) for u in request.files.getlist("files") if u.filename]
    if not uploads:
        raise Invalid(_("Choose the model's .bpmn file (and any .dmn and form .json files)."), code="missing_file")
    return model_upload(uploads)


def _problems_text(exc: AppError) -> str:
    problems = (exc.details or {}).get("problems") or []
    listed = "; ".join(f"{p.get('element_id') or _('the diagram')}: {p.get('message')}" for p in problems)
    return f"{exc.message} {listed}".strip() if listed else exc.message


@blp.route("/models/new", methods=["POST"])
@page_requires("process_owner")
def create_model() -> Any:
    """The list's "new model" form: id, name, description and the diagram file."""
    rt, session = deployment(), db.session
    form = request.form
    try:
        model_id, name = (form.get("id") or "").strip(), (form.get("name") or "").strip()
        if not model_id or not name:
            raise Invalid(_("A new model needs an id and a name."), code="validation_error")
        content, local_forms = _uploaded_files()
        management.create_model(session, model_id=model_id, name=name,
                                description=(form.get("description") or "").strip(), content=content,
                                local_forms=local_forms,
                                entry_process=(form.get("entry_process") or "").strip() or None,
                                actor=current_user().username, now=rt.clock.now())
    except AppError as exc:
        session.rollback()
        flash(_problems_text(exc), "error")
        return redirect(url_for("modeler.models"))
    session.commit()
    flash(_("Model %(id)s created with version 1.", id=model_id), "ok")
    return redirect(url_for("modeler.models") + f"#model-{model_id}")


@blp.route("/models/<model_id>/upload", methods=["POST"])
@page_requires("process_owner")
def upload_files(model_id: str) -> Any:
    """A model's "upload files" form: publish the chosen file as a new version."""
    rt, session = deployment(), db.session
    try:
        content, local_forms = _uploaded_files()
        version, created = service.publish_version(session, model_id, content, source="upload",
                                                   now=rt.clock.now(), created_by=current_user().username,
                                                   local_forms=local_forms)
    except AppError as exc:
        session.rollback()
        flash(_problems_text(exc), "error")
        return redirect(url_for("modeler.models"))
    session.commit()
    flash(_("Published as version %(n)s.", n=version.version) if created
          else _("Nothing changed: this content is already version %(n)s.", n=version.version), "ok")
    return redirect(url_for("modeler.models") + f"#model-{model_id}")


@blp.route("/models/<model_id>/<verb>", methods=["POST"])
@page_requires("process_owner")
def lifecycle(model_id: str, verb: str) -> Any:
    """Republish an older version (roll back), archive or unarchive the model."""
    rt, session = deployment(), db.session
    actor, now = current_user().username, rt.clock.now()
    try:
        if verb == "republish":
            number = int(request.form.get("version", "0"))
            management.republish(session, model_id, number, actor=actor, now=now)
            message = _("Version %(n)s is current again: new instances start on it.", n=number)
        elif verb == "archive":
            management.archive(session, model_id, actor=actor, now=now)
            message = _("The model is archived: it starts no new instances.")
        elif verb == "unarchive":
            management.unarchive(session, model_id, actor=actor, now=now)
            message = _("The model starts new instances again.")
        else:
            return error_page(404)
    except (AppError, ValueError) as exc:
        session.rollback()
        flash(exc.message if isinstance(exc, AppError) else _("Choose a version."), "error")
        return redirect(url_for("modeler.models"))
    session.commit()
    flash(message, "ok")
    return redirect(url_for("modeler.models") + f"#model-{model_id}")


@blp.route("/models/<model_id>/versions/<int:number>")
@page_requires("process_owner")
def edit(model_id: str, number: int) -> Any:
    session = db.session
    process_model = session.get(ProcessModel, model_id)
    version = session.scalar(select(ProcessModelVersion).where(ProcessModelVersion.process_model_id == model_id,
                                                               ProcessModelVersion.version == number))
    if process_model is None or version is None:
        return error_page(404, _("Process model %(id)s has no version %(n)s.", id=model_id, n=number))
    latest = session.scalar(select(ProcessModelVersion.version).where(
        ProcessModelVersion.process_model_id == model_id).order_by(ProcessModelVersion.version.desc()).limit(1))
    running = service.instance_counts(session, model_id).get(number, {}).get("running", 0)
    choices = {
        "departments": [{"id": d.id, "name": departments.label(d, d.id, current_language())}
                        for d in session.scalars(select(Department).order_by(Department.id))],
        "forms": list(session.scalars(select(FormDefinition.name).order_by(FormDefinition.name))),
        "policies": list(session.scalars(select(EscalationPolicy.name).order_by(EscalationPolicy.name))),
        "tiers": list(TIERS),
    }
    urls = {
        "bpmn": url_for("process_models.get_version_bpmn", model_id=model_id, number=number),
        "validate": url_for("process_models.validate_version", model_id=model_id),
        "publish": url_for("process_models.upload_version", model_id=model_id),
        "models": url_for("modeler.models"),
        "sla_preview": url_for("sla.sla_preview", model_id=model_id),
    }
    return render_template("modeler/edit.html", model=process_model, version=version, latest=latest,
                           running=running, choices=choices, urls=urls, strings=_modeler_strings())


def _modeler_strings() -> dict[str, str]:
    """Texts the modeler's JavaScript shows, in the page's language."""
    return {
        "loading": _("Loading the diagram…"),
        "load_failed": _("The diagram could not be loaded."),
        "import_warnings": _("Some parts of the diagram could not be read and would be lost when publishing:"),
        "select_task": _("Select a user task in the diagram to edit its department, form and SLA."),
        "not_user_task": _("This element is not a user task: only user tasks have a department, form and SLA."),
        "validating": _("Checking on the server…"),
        "valid": _("No problems found: the diagram can be published."),
        "problems": _("Problems found: fix them before publishing."),
        "diagram": _("the diagram"),
        "publishing": _("Publishing…"),
        "published": _("Published as version %(n)s.", n="{n}"),
        "unchanged": _("Nothing changed: this content is already version %(n)s.", n="{n}"),
        "publish_refused": _("Not published: the diagram has problems."),
        "request_failed": _("The server refused the request:"),
        "back_to_list": _("Back to the list of versions"),
        "none": _("(none)"),
        "lane": _("Lane"),
        "no_lane": _("(no lane)"),
        "preview_summary": _("%(n)s completed stages of the last %(days)s days compared.", n="{n}", days="{days}"),
        "preview_empty": _("No stage of this model was completed in the last %(days)s days: nothing to compare.",
                           days="{days}"),
        "preview_stage": _("Stage"),
        "preview_completed": _("Completed"),
        "preview_sla": _("SLA as drawn"),
        "preview_before": _("On time, as it happened"),
        "preview_after": _("On time with these SLAs"),
        "preview_newly": _("Would newly breach (%(n)s)", n="{n}"),
        "preview_cleared": _("Would no longer breach (%(n)s)", n="{n}"),
    }
