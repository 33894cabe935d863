"""The process model repository: syncing process_models/ and forms/ from disk,
publishing uploaded versions, and the compiled-spec cache.

A version is immutable and identified by a content hash over its BPMN and
the forms it uses; publishing the same content again returns the existing
version instead of creating a duplicate.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bpm_server.audit.service import record as audit
from bpm_server.database import new_id
from bpm_server.engine.adapter import (
    BpmnInvalid,
    CompiledModel,
    Problem,
    compile_bpmn,
    compile_files,
    entry_file,
    events,
)
from bpm_server.errors import Invalid, NotFound
from bpm_server.instances.models import ProcessInstance
from bpm_server.modeling.assignment import assignment_warnings, check_assignments
from bpm_server.modeling.connectors import service_task_problems
from bpm_server.modeling.files import read_model_folder
from bpm_server.modeling.forms import EMPTY_FORM, schema_problem
from bpm_server.modeling.models import FormDefinition, ProcessModel, ProcessModelVersion
from bpm_server.modeling.texts import catalog_problem, is_messages_file
from bpm_server.sla.definitions import problems_for_model

log = logging.getLogger(__name__)

FORM_PROPERTY = "formJsonSchemaFilename"
DEPARTMENT_PROPERTY = "department"
PRIORITY_PROPERTY = "priority"  # the priority a stage opens with (tasks/service.initial_priority)
MAX_PRIORITY = 10
START_ELEMENT = "start"  # how problems with the start event's form are labelled


@dataclass(frozen=True)
class SyncReport:
    forms_changed: list[str]
    versions_created: list[str]
    unchanged: list[str]


# --------------------------------------------------------------------------- compiled cache

_compiled: dict[str, CompiledModel] = {}
_compiled_lock = threading.Lock()


def compiled(version: ProcessModelVersion) -> CompiledModel:
    """The parsed spec of a version, built once per process (versions never change)."""
    with _compiled_lock:
        model = _compiled.get(version.id)
    if model is None:
        if version.files:
            model = compile_files({n: t.encode() for n, t in version.files.items()}, version.entry_process)
        else:
            model = compile_bpmn(version.bpmn_xml.encode(), version.entry_process)
        with _compiled_lock:
            _compiled[version.id] = model
    return model


_forms_by_version: dict[str, dict[str, Any]] = {}


def forms_of_version(session: Session, version_id: str) -> dict[str, Any]:
    """The forms a version was published with, cached per process (versions never change).

    Lets a task's form be found from its instance's version id without loading
    the version row (with its BPMN text) on every claim."""
    with _compiled_lock:
        forms = _forms_by_version.get(version_id)
    if forms is None:
        forms = session.scalar(select(ProcessModelVersion.forms).where(ProcessModelVersion.id == version_id))
        if forms is None:
            return {}
        with _compiled_lock:
            _forms_by_version[version_id] = forms
    return forms


def department_of(task: Any) -> str | None:
    """A human task's department: its ``department`` property, else its lane."""
    return task.properties.get(DEPARTMENT_PROPERTY) or task.lane


def form_name_of(task: Any) -> str | None:
    return task.properties.get(FORM_PROPERTY)


# --------------------------------------------------------------------------- publishing


def _content_hash(xml: str, forms: dict[str, Any], files: dict[str, str] | None = None) -> str:
    content: dict[str, Any] = {"bpmn": xml, "forms": forms}
    if files:  # one-file versions keep the hash they always had
        content["files"] = files
    payload = json.dumps(content, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def check_version(session: Session, xml: bytes | Mapping[str, bytes], entry_process: str | None,
                  local_forms: Mapping[str, Any] | None = None,
                  model_id: str | None = None, *,
                  departments_exist: bool = True) -> tuple[CompiledModel, dict[str, Any]]:
    """Compile and check a diagram (or a model's files, name -> content) against our conventions;
    return it with the forms it uses. ``local_forms`` are the model's own forms (from its folder
    or the upload), found before the forms/ library.

    ``departments_exist=False`` (syncing process_models/ at deployment, possibly
    before any department is created) only requires each task to name one."""
    other_models = {pid: vid for pid, (mid, vid) in _entry_processes(session).items() if mid != model_id}
    if isinstance(xml, Mapping):
        for name, content in xml.items():
            _check_encoding(content, name)
        model = compile_files(xml, entry_process, other_models)
    else:
        _check_encoding(xml)
        model = compile_bpmn(xml, entry_process, other_models)
    problems: list[Problem] = _cross_model_cycles(session, model)
    library = {f.name: f.schema for f in session.scalars(select(FormDefinition))}
    library.update(model.generated_forms)  # forms written inside the diagram (Camunda formData)
    for name, schema in (local_forms or {}).items():
        if is_messages_file(name):
            continue
        problem = schema_problem(schema)
        if problem:
            raise BpmnInvalid([Problem(None, f"form {name}: {problem}")])
        library[name] = schema
    forms: dict[str, Any] = {}
    for name, content in (local_forms or {}).items():
        if is_messages_file(name):  # translations of the model's texts: published with the version
            problem = catalog_problem(name, content)
            if problem:
                raise BpmnInvalid([Problem(None, problem)])
            forms[name] = content

    def use_form(element_id: str, form_name: str | None) -> None:
        if not form_name:
            return
        if form_name not in library:
            problems.append(Problem(element_id, f"form file {form_name!r} does not exist under forms/ "
                                                f"nor among the model's own forms"))
        else:
            forms[form_name] = library[form_name]

    use_form(START_ELEMENT, model.start_properties.get(FORM_PROPERTY))
    problems.extend(check_assignments(session, model.human_tasks.values(), departments_exist=departments_exist))
    for task in model.human_tasks.values():
        use_form(task.name, form_name_of(task))
        priority = task.properties.get(PRIORITY_PROPERTY)
        if priority is not None and not (priority.strip().isdigit() and int(priority) <= MAX_PRIORITY):
            problems.append(Problem(task.name, f"priority {priority!r} must be a whole number from 0 to "
                                               f"{MAX_PRIORITY}"))
    problems.extend(events.start_event_problems(model.spec))
    data_fields = {name for form, schema in forms.items() if not is_messages_file(form)
                   for name in _form_fields(schema)}
    problems.extend(Problem(element, message)
                    for element, message in problems_for_model(model.human_tasks.values(), data_fields))
    problems.extend(service_task_problems(model))
    if problems:
        raise BpmnInvalid(problems)
    return model, forms


def _check_encoding(xml: bytes, name: str | None = None) -> None:
    # Versions are stored and served as UTF-8 text. The XML parser reads
    # UTF-16 too, so without this a diagram would pass the checks and then
    # fail to be stored (and /validate would call it clean).
    try:
        text = xml.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BpmnInvalid([Problem(None, f"{name or 'the diagram'} is not UTF-8 encoded (invalid byte at offset "
                                         f"{exc.start}); save it as UTF-8")]) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise BpmnInvalid([Problem(None, f"{name or 'the diagram'} contains a NUL byte at offset {nul} "
                                         "(UTF-16 text?); save it as UTF-8")])


def _form_fields(schema: Any) -> set[str]:
    """Top-level field names a form can put into the process data (if/then branches included)."""
    fields: set[str] = set()
    if isinstance(schema, dict):
        fields.update((schema.get("properties") or {}).keys())
        for key in ("allOf", "anyOf", "oneOf"):
            for part in schema.get(key) or []:
                fields |= _form_fields(part)
        for key in ("then", "else", "if"):
            fields |= _form_fields(schema.get(key))
    return fields


def _entry_processes(session: Session) -> dict[str, tuple[str, str]]:
    """Entry process id -> (model id, current version id), over every model with a published version."""
    rows = session.execute(select(ProcessModelVersion.entry_process, ProcessModel.id, ProcessModelVersion.id)
                           .join(ProcessModel, ProcessModel.current_version_id == ProcessModelVersion.id)).all()
    return {pid: (mid, vid) for pid, mid, vid in rows}


def callee_resolver(session: Session) -> Callable[[str], tuple[str, CompiledModel]]:
    """For a run: another model's entry process -> (its current version id, compiled), at the call."""
    def resolve(process_id: str) -> tuple[str, CompiledModel]:
        found = _entry_processes(session).get(process_id)
        if found is None:
            raise NotFound(f"no published model has entry process {process_id!r}", code="unknown_process")
        return found[1], compiled(session.get_one(ProcessModelVersion, found[1]))
    return resolve


def called_models(session: Session, called_versions: Mapping[str, str] | None) -> dict[str, tuple[str, CompiledModel]]:
    """The versions an instance called (process id -> version id), compiled."""
    return {pid: (vid, compiled(session.get_one(ProcessModelVersion, vid)))
            for pid, vid in (called_versions or {}).items()}


def _cross_model_cycles(session: Session, model: CompiledModel) -> list[Problem]:
    """Calls into other models that lead back to this model's entry process (through their current versions)."""
    entries = _entry_processes(session)
    problems = []
    for called, elements in sorted(model.external_calls.items()):
        seen: set[str] = set()
        frontier = [(called, [model.process_id, called])]
        while frontier:
            pid, path = frontier.pop()
            if pid == model.process_id:
                problems += [Problem(e, f"the call activity calls process {called!r} of another model, which "
                                        f"calls back ({' -> '.join(path)}): the calls would never end")
                             for e in elements]
                break
            if pid in seen or pid not in entries:
                continue
            seen.add(pid)
            callee = compiled(session.get_one(ProcessModelVersion, entries[pid][1]))
            frontier += [(nxt, [*path, nxt]) for nxt in callee.external_calls]
    return problems


def start_form_name(model: CompiledModel) -> str | None:
    return model.start_properties.get(FORM_PROPERTY)


def publish_version(session: Session, model_id: str, xml: bytes | Mapping[str, bytes], *, source: str,
                    now: datetime, created_by: str | None = None, entry_process: str | None = None,
                    local_forms: Mapping[str, Any] | None = None) -> tuple[ProcessModelVersion, bool]:
    """Store a new version unless one with the same content exists; (version, created).

    ``xml`` is one diagram, or a multi-file model's files (name -> content: its BPMN
    and DMN files); ``local_forms`` the model's own forms (name -> JSON Schema)."""
    process_model = session.get(ProcessModel, model_id)
    if process_model is None:
        raise NotFound(f"process model {model_id!r} does not exist", code="unknown_process_model")
    if entry_process is None and process_model.current_version_id:
        current = session.get(ProcessModelVersion, process_model.current_version_id)
        entry_process = current.entry_process if current else None
    if source != "sync":
        local_forms = _with_current_messages(session, process_model, local_forms)
    try:
        compiled_model, forms = check_version(session, xml, entry_process, local_forms, model_id,
                                              departments_exist=source != "sync")
        files = None
        if isinstance(xml, Mapping):
            files = {name: content.decode("utf-8") for name, content in sorted(xml.items())}
            text = files[entry_file(xml, compiled_model.process_id)]
        else:
            text = xml.decode("utf-8")
    except BpmnInvalid as exc:
        raise Invalid(f"the diagram has {len(exc.problems)} problem(s): {exc}", code="invalid_bpmn",
                      details={"problems": [p.as_dict() for p in exc.problems]}) from None
    digest = _content_hash(text, forms, files)
    existing = session.scalar(select(ProcessModelVersion).where(
        ProcessModelVersion.process_model_id == model_id, ProcessModelVersion.content_hash == digest))
    if existing is not None:
        return existing, False
    number = (session.scalar(select(func.max(ProcessModelVersion.version))
                             .where(ProcessModelVersion.process_model_id == model_id)) or 0) + 1
    version = ProcessModelVersion(id=new_id(), process_model_id=model_id, version=number, content_hash=digest,
                                  entry_process=compiled_model.process_id, bpmn_xml=text, forms=forms, files=files,
                                  source=source, created_by=created_by, created_at=now)
    session.add(version)
    process_model.current_version_id = version.id
    # Who published what is part of the audit trail, like every other change to how work is routed.
    audit(session, actor=created_by or source, action="process_model.publish", object_type="process_model",
          object_id=model_id, now=now, version=number, content_hash=digest, source=source)
    session.flush()
    with _compiled_lock:
        _compiled[version.id] = compiled_model
    return version, True


def _with_current_messages(session: Session, process_model: ProcessModel,
                           local_forms: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """An upload without messages files keeps the current version's translations: the modeler
    sends only the diagram, and publishing a changed SLA must not drop the model's English."""
    if any(is_messages_file(name) for name in (local_forms or {})) or not process_model.current_version_id:
        return local_forms
    current = session.get(ProcessModelVersion, process_model.current_version_id)
    carried = {name: form for name, form in (current.forms if current else {}).items() if is_messages_file(name)}
    return {**(local_forms or {}), **carried} if carried else local_forms


def list_models(session: Session) -> list[tuple[ProcessModel, list[ProcessModelVersion]]]:
    models = session.scalars(select(ProcessModel).order_by(ProcessModel.id)).all()
    versions = session.scalars(select(ProcessModelVersion).order_by(ProcessModelVersion.process_model_id,
                                                                    ProcessModelVersion.version.desc())).all()
    by_model: dict[str, list[ProcessModelVersion]] = {}
    for version in versions:
        by_model.setdefault(version.process_model_id, []).append(version)
    return [(m, by_model.get(m.id, [])) for m in models]


def current_version(session: Session, model_id: str) -> ProcessModelVersion:
    process_model = session.get(ProcessModel, model_id)
    if process_model is None:
        raise NotFound(f"process model {model_id!r} does not exist", code="unknown_process_model")
    if not process_model.current_version_id:
        raise NotFound(f"process model {model_id!r} has no published version", code="no_version")
    return session.get_one(ProcessModelVersion, process_model.current_version_id)


def form_of(version: ProcessModelVersion, form_name: str | None) -> dict[str, Any]:
    return version.forms.get(form_name, EMPTY_FORM) if form_name else EMPTY_FORM


# --------------------------------------------------------------------------- sync from disk


def sync_from_disk(session: Session, models_dir: Path, forms_dir: Path, *, now: datetime) -> SyncReport:
    """Load forms/ and process_models/ as new versions where their content changed.

    Raises ``Invalid`` naming the file (and BPMN element) at fault; the caller's
    transaction is then rolled back, so a bad file changes nothing.
    """
    forms_changed = _sync_forms(session, forms_dir, now)
    created: list[str] = []
    unchanged: list[str] = []
    for meta_path in sorted(models_dir.glob("*/model.json")):
        meta = _read_metadata(meta_path)
        process_model = session.get(ProcessModel, meta["id"])
        if process_model is None:
            process_model = ProcessModel(id=meta["id"], name=meta["name"], description=meta.get("description", ""),
                                         created_at=now)
            session.add(process_model)
            session.flush()
        process_model.name, process_model.description = meta["name"], meta.get("description", "")
        bpmn_path = meta_path.parent / meta["bpmn_file"]
        content, local_forms = read_model_folder(meta_path.parent, bpmn_path)
        try:
            version, was_created = publish_version(session, meta["id"], content, source="sync",
                                                   now=now, entry_process=meta["entry_process"],
                                                   local_forms=local_forms)
        except Invalid as exc:
            raise Invalid(f"{bpmn_path}: {exc.message}", code=exc.code, details=exc.details) from None
        (created if was_created else unchanged).append(f"{meta['id']} v{version.version}")
    return SyncReport(forms_changed, created, unchanged)


def _sync_forms(session: Session, forms_dir: Path, now: datetime) -> list[str]:
    changed = []
    for path in sorted(forms_dir.rglob("*.json")):
        name = path.relative_to(forms_dir).as_posix()
        try:
            schema = json.loads(path.read_text("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Invalid(f"form {name}: not valid JSON ({exc})", code="invalid_form") from None
        problem = schema_problem(schema)
        if problem:
            raise Invalid(f"form {name}: {problem}", code="invalid_form")
        digest = hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()
        row = session.get(FormDefinition, name)
        if row is None:
            session.add(FormDefinition(name=name, content_hash=digest, schema=schema, updated_at=now))
            changed.append(name)
        elif row.content_hash != digest:
            row.content_hash, row.schema, row.updated_at = digest, schema, now
            changed.append(name)
    session.flush()
    return changed


def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Invalid(f"{path}: not valid JSON ({exc})", code="invalid_model_metadata") from None
    missing = [key for key in ("id", "name", "entry_process", "bpmn_file") if not isinstance(meta.get(key), str)]
    if missing:
        raise Invalid(f"{path}: missing or non-string key(s): {', '.join(missing)}", code="invalid_model_metadata")
    return meta


# --------------------------------------------------------------------------- the modeler: check without publishing


def validate_diagram(session: Session, model_id: str, xml: bytes | Mapping[str, bytes],
                     local_forms: Mapping[str, Any] | None = None) -> tuple[list[Problem], list[Problem]]:
    """(every problem publishing ``xml`` as a new version of the model would report, the warnings
    that would not stop it); nothing is stored.

    Runs exactly the checks of ``publish_version`` (compile, departments, forms,
    SLA properties), so a diagram the modeler calls clean publishes cleanly."""
    process_model = session.get(ProcessModel, model_id)
    if process_model is None:
        raise NotFound(f"process model {model_id!r} does not exist", code="unknown_process_model")
    entry_process = None
    if process_model.current_version_id:
        current = session.get(ProcessModelVersion, process_model.current_version_id)
        entry_process = current.entry_process if current else None
    try:
        model, _forms = check_version(session, xml, entry_process, local_forms, model_id)
    except BpmnInvalid as exc:
        return list(exc.problems), []
    return [], assignment_warnings(session, model.human_tasks.values())


def instance_counts(session: Session, model_id: str) -> dict[int, dict[str, int]]:
    """Per version number of the model: how many instances are in each state (running, completed, ...).

    Running instances keep the version they started with, so process owners
    need this before they retire or fix a version."""

    if session.get(ProcessModel, model_id) is None:
        raise NotFound(f"process model {model_id!r} does not exist", code="unknown_process_model")
    rows = session.execute(
        select(ProcessModelVersion.version, ProcessInstance.state, func.count(ProcessInstance.id))
        .join(ProcessInstance, ProcessInstance.version_id == ProcessModelVersion.id)
        .where(ProcessModelVersion.process_model_id == model_id)
        .group_by(ProcessModelVersion.version, ProcessInstance.state)).all()
    counts: dict[int, dict[str, int]] = {
        number: {} for number in session.scalars(select(ProcessModelVersion.version)
                                                 .where(ProcessModelVersion.process_model_id == model_id))}
    for number, state, count in rows:
        counts.setdefault(number, {})[state] = count
    return counts
