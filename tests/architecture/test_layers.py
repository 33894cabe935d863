"""The package's imports point one way (README "Layout"), with no cycle.

Every import counts, at module top or inside a function: an import hidden in a
function to dodge a cycle is still a cycle here. Imports under
``if TYPE_CHECKING:`` are left out (they never run).
"""
from __future__ import annotations

import re
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2] / "bpm_server"

ENTRY, RUNTIME, DOMAIN, RECORDS, FOUNDATION = 4, 3, 2, 1, 0
NAMES = {ENTRY: "entry points", RUNTIME: "runtime", DOMAIN: "domains", RECORDS: "engine and records",
         FOUNDATION: "foundations"}

#: Modules whose layer is not their package's, each for a reason.
EXCEPTIONS = {
    # Pure working-time arithmetic on dates (imports nothing of ours): the
    # per-deployment calendar object every layer reads.
    "bpm_server.sla.calendar": FOUNDATION,
    # The statutory holidays fixed by law, per year: pure date facts the calendar
    # uses for provisional years (imports nothing of ours).
    "bpm_server.sla.statutory": FOUNDATION,
    # The grammar of SLA properties and escalation rules: what modeling checks
    # when a diagram or policy is uploaded (imports only the calendar and tiers).
    "bpm_server.sla.definitions": RECORDS,
    "bpm_server.sla.escalation": RECORDS,
    # The job queue interface and its two implementations (no domain code).
    "bpm_server.jobs": FOUNDATION,
    "bpm_server.jobs.queue": FOUNDATION,
}
FOUNDATIONS = {"bpm_server", "bpm_server.config", "bpm_server.clock", "bpm_server.database", "bpm_server.errors",
               "bpm_server.extensions", "bpm_server.logs"}
ENTRY_MODULES = {"bpm_server.app", "bpm_server.wsgi", "bpm_server.worker", "bpm_server.cli", "bpm_server.demo",
                 "bpm_server.api_common", "bpm_server.request_guard", "bpm_server.jobs.runner",
                 "bpm_server.corpus"}
ENTRY_PACKAGES = {"web", "health", "migrations"}
# Modules that serve HTTP or run jobs, in any package (Dispatch's file names).
ENTRY_FILES = {"views", "jobs", "schemas", "auth", "hooks"}
RECORD_PACKAGES = {"engine", "identity", "accounts", "modeling", "audit", "instances"}
DOMAIN_PACKAGES = {"tasks", "sla", "messages", "outbound", "erp", "notifications", "integration_log",
                   "external_tasks"}


def layer(module: str) -> int:
    if module in EXCEPTIONS:
        return EXCEPTIONS[module]
    if module in FOUNDATIONS:
        return FOUNDATION
    parts = module.split(".")
    if module in ENTRY_MODULES or parts[1] in ENTRY_PACKAGES or ENTRY_FILES & set(parts[2:]):
        return ENTRY
    if parts[1] == "runtime":
        return RUNTIME
    if parts[-1] == "models" or parts[1] in RECORD_PACKAGES:
        return RECORDS
    if parts[1] in DOMAIN_PACKAGES:
        return DOMAIN
    raise AssertionError(f"{module} has no layer: add its package to tests/architecture/test_layers.py")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("bpm_server", exclude_type_checking_imports=True)


def test_every_module_has_a_layer(graph) -> None:
    for module in graph.modules:
        layer(module)


def test_imports_point_down_the_layers(graph) -> None:
    upward = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if layer(imported) > layer(importer):
                upward.append(f"{importer} ({NAMES[layer(importer)]}) imports {imported} "
                              f"({NAMES[layer(imported)]})")
    assert upward == []


def test_no_import_cycle(graph) -> None:
    cycles = [cycle for cycle in _strongly_connected(graph) if len(cycle) > 1]
    assert cycles == []


def test_the_runtime_is_imported_by_entry_points_only(graph) -> None:
    importers = {m for m in graph.find_modules_that_directly_import("bpm_server.runtime")
                 if not m.startswith("bpm_server.runtime")}
    assert importers and all(layer(m) == ENTRY for m in importers), importers


def test_no_appended_import_sections() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
                 if "node_modules" not in p.parts and re.search(r"noqa: E402", p.read_text(encoding="utf-8"))]
    assert offenders == []


def _strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm, iteratively (the package has a few hundred modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    found.append(sorted(component))
    return found
