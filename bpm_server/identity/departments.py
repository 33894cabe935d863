"""Department names in the reader's language, and the department catalogue file.

A department has a code (``id``, what diagrams and users refer to), a Chinese name
(``name``, the default language) and an English one (``name_en``). Pages show the name
in the reader's language; a department nobody named shows its code.

``process_models/departments.json`` names the departments the shipped models use::

    {"sales": {"name": "销售部", "name_en": "Sales"}, ...}

``bpm-server models sync`` creates the departments it lists and fills in names still
missing (a name that is only the code, no English name); it never overwrites a name an
administrator gave, so renaming through the API sticks.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bpm_server.audit.service import record as audit
from bpm_server.errors import Invalid
from bpm_server.identity.models import Department

CATALOG_FILE = "departments.json"
ENGLISH = "en"
DEFAULT_LOCALE = "zh_CN"  # the language of ``name``


def label(department: Department | None, code: str, locale: str) -> str:
    """The department's name in ``locale`` ("en" or Chinese); its code when it has none."""
    if department is None:
        return code
    if locale == ENGLISH:
        return department.name_en or code
    return department.name or code


def names(session: Session, locale: str) -> dict[str, str]:
    """Every department's name in ``locale``, by code (one query; look codes up with ``.get(code, code)``)."""
    return {d.id: label(d, d.id, locale) for d in session.scalars(select(Department))}


def _read(path: Path) -> Mapping[str, Mapping[str, str]]:
    try:
        catalog: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Invalid(f"{path.name}: {exc}", code="invalid_department_catalog") from None
    if not isinstance(catalog, dict):
        raise Invalid(f"{path.name}: expected an object of department codes", code="invalid_department_catalog")
    for code, entry in catalog.items():
        if not (isinstance(code, str) and 0 < len(code) <= 64 and isinstance(entry, dict)
                and all(isinstance(entry.get(key, ""), str) and len(entry.get(key, "")) <= 200
                        for key in ("name", "name_en"))):
            raise Invalid(f"{path.name}: {code!r} needs a code of 1 to 64 characters and string names",
                          code="invalid_department_catalog", details={"department": code})
    return catalog


def sync_catalog(session: Session, path: Path, *, now: datetime, actor: str = "models sync") -> list[str]:
    """Create the departments the file lists and fill in missing names; the codes that changed."""
    if not path.is_file():
        return []
    changed = []
    for code, entry in _read(path).items():
        department = session.get(Department, code)
        before = None if department is None else {"name": department.name, "name_en": department.name_en}
        if department is None:
            department = Department(id=code, name=code)
            session.add(department)
        if entry.get("name") and department.name == code:
            department.name = entry["name"]
        if entry.get("name_en") and not department.name_en:
            department.name_en = entry["name_en"]
        after = {"name": department.name, "name_en": department.name_en}
        if after != before:
            audit(session, actor=actor, action="department.create" if before is None else "department.update",
                  object_type="department", object_id=code, now=now, before=before, after=after)
            changed.append(code)
    session.flush()
    return changed
