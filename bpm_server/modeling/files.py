"""The files of one model: its folder on disk or a multi-file upload, split into
model files (BPMN and DMN, compiled together) and the model's own forms (JSON Schema).

A model folder ``process_models/<id>/`` holds ``model.json``, its entry diagram
(``bpmn_file``), any further ``.bpmn`` and ``.dmn`` files, and forms: every
other ``.json`` file, named by its path in the folder (under a ``forms/``
subfolder without that prefix), as diagrams name them in
``formJsonSchemaFilename``. A model's own form is found before the forms/ library.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bpm_server.engine.adapter import is_model_file
from bpm_server.errors import Invalid

METADATA_FILE = "model.json"
FORMS_FOLDER = "forms"


def read_model_folder(folder: Path, bpmn_path: Path) -> tuple[bytes | dict[str, bytes], dict[str, Any]]:
    """(the entry diagram alone, or every model file by name; the model's own forms by name)."""
    model_files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and is_model_file(p.name)}
    forms = [(p.relative_to(folder).as_posix(), p.read_bytes()) for p in sorted(folder.rglob("*.json"))
             if p.name != METADATA_FILE or p.parent != folder]
    local_forms = split_uploads(forms)[1]
    if set(model_files) <= {bpmn_path.name}:
        return bpmn_path.read_bytes(), local_forms
    return model_files, local_forms


def split_uploads(uploads: Iterable[tuple[str, bytes]]) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Uploaded or read files, by name: (model files, forms as parsed JSON); anything else is refused."""
    model_files: dict[str, bytes] = {}
    forms: dict[str, Any] = {}
    for raw_name, content in uploads:
        name = raw_name.replace("\\", "/").lstrip("/")
        if ".." in name.split("/"):
            raise Invalid(f"file name {raw_name!r} is not allowed", code="invalid_file_name",
                          details={"files": [raw_name]})
        if is_model_file(name):
            if "/" in name:
                name = name.rsplit("/", 1)[1]
            if name in model_files:
                raise Invalid(f"file {name!r} is uploaded twice", code="duplicate_file", details={"files": [name]})
            model_files[name] = content
        elif name.lower().endswith(".json"):
            key = name[len(FORMS_FOLDER) + 1:] if name.startswith(f"{FORMS_FOLDER}/") else name
            try:
                forms[key] = json.loads(content.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise Invalid(f"form {name}: not valid JSON ({exc})", code="invalid_form",
                              details={"files": [name]}) from None
        else:
            raise Invalid(f"file {name!r} is neither a model file (.bpmn, .dmn) nor a form (.json)",
                          code="unsupported_file", details={"files": [name]})
    return model_files, forms


def model_upload(uploads: Iterable[tuple[str, bytes]]) -> tuple[bytes | dict[str, bytes], dict[str, Any]]:
    """A new model's or version's uploaded files: one diagram alone (its bytes), or every model
    file by name with the model's own forms; refused naming the file when none is a .bpmn or one is empty."""
    model_files, forms = split_uploads(uploads)
    if not any(name.lower().endswith(".bpmn") for name in model_files):
        raise Invalid("the upload needs a .bpmn file", code="missing_file",
                      details={"files": ["a .bpmn file is required"]})
    empty = sorted(name for name, content in model_files.items() if not content.strip())
    if empty:
        raise Invalid(f"file {empty[0]!r} is empty", code="empty_upload", details={"files": empty})
    if len(model_files) == 1 and not forms:
        return next(iter(model_files.values())), {}
    return model_files, forms
