"""Multi-file models: a model's BPMN and DMN files compiled together.

A model folder (``process_models/<id>/``) or an upload may hold several
``.bpmn`` files (call activities reach the processes of any of them) and
``.dmn`` files (the decision tables its business rule tasks call). Every
file passes the checks of a single upload; problems name the file as well as
the element, since the same id may mean different things in two files.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping

from lxml import etree

from bpm_server.engine.compiler import BPMN_NS, BpmnInvalid, CompiledModel, Problem, checked_bpmn_root, compile_parsed
from bpm_server.engine.dmn import checked_dmn_root, dmn_problems

MODEL_FILE_SUFFIXES = (".bpmn", ".dmn")
MAX_FILES = 50


def is_model_file(name: str) -> bool:
    return name.lower().endswith(MODEL_FILE_SUFFIXES)


def compile_files(files: Mapping[str, bytes], entry_process: str | None = None,
                  other_models: Collection[str] = ()) -> CompiledModel:
    """Compile a model made of several files (name -> content); ``BpmnInvalid`` lists every problem.
    ``other_models``: the entry processes of other models, which call activities may call too."""
    names = sorted(files)
    if not any(n.lower().endswith(".bpmn") for n in names):
        raise BpmnInvalid([Problem(None, "the model has no .bpmn file")])
    if len(names) > MAX_FILES:
        raise BpmnInvalid([Problem(None, f"the model has {len(names)} files; at most {MAX_FILES} are allowed")])
    problems: list[Problem] = []
    bpmn: list[tuple[str, etree._Element]] = []
    dmn: list[tuple[str, etree._Element]] = []
    for name in names:
        try:
            if name.lower().endswith(".bpmn"):
                bpmn.append((name, checked_bpmn_root(files[name])))
            elif name.lower().endswith(".dmn"):
                root = checked_dmn_root(name, files[name])
                problems += [_in_file(name, p) for p in dmn_problems(name, root)]
                dmn.append((name, root))
            else:
                problems.append(Problem(None, f"{name}: not a model file (expected .bpmn or .dmn)"))
        except BpmnInvalid as exc:
            problems += [_in_file(name, p) for p in exc.problems]
    problems += _duplicate_ids(bpmn, dmn)
    if problems:
        raise BpmnInvalid(problems)
    ordered, entry = _entry_first(bpmn, entry_process)
    return compile_parsed(ordered, entry, dmn, other_models)


def _in_file(name: str, problem: Problem) -> Problem:
    if problem.message.startswith(name):
        return problem
    return Problem(problem.element_id, f"{name}: {problem.message}", problem.line)


def _duplicate_ids(bpmn: list[tuple[str, etree._Element]], dmn: list[tuple[str, etree._Element]]) -> list[Problem]:
    """Process ids and decision ids are global within a model: one definition each."""
    seen: dict[str, str] = {}
    problems = []
    for name, root in bpmn:
        for process in root.iter(f"{{{BPMN_NS}}}process"):
            pid = process.get("id", "")
            if pid in seen:
                problems.append(Problem(pid, f"process {pid!r} is defined in both {seen[pid]} and {name}"))
            seen.setdefault(pid, name)
    decisions: dict[str, str] = {}
    for name, root in dmn:
        for decision in root.iter(f"{{{etree.QName(root).namespace}}}decision"):
            did = decision.get("id", "")
            if did in decisions:
                problems.append(Problem(did, f"decision {did!r} is defined in both {decisions[did]} and {name}"))
            decisions.setdefault(did, name)
    return problems


def _entry_first(bpmn: list[tuple[str, etree._Element]],
                 entry_process: str | None) -> tuple[list[tuple[str, etree._Element]], str | None]:
    """The files with the one holding the entry process first, and the entry process.

    Without a named entry process: the one executable process that no call
    activity of the model calls (several such: refused, the uploader names one)."""
    def executable(root: etree._Element) -> list[str]:
        return [p.get("id", "") for p in root.iter(f"{{{BPMN_NS}}}process") if p.get("isExecutable") == "true"]

    called = {c.get("calledElement") for _n, root in bpmn for c in root.iter(f"{{{BPMN_NS}}}callActivity")}
    if not entry_process:
        # Two processes nobody calls could each be the one users start: guessing by file order
        # would make the model's meaning depend on its file names, so the uploader chooses.
        candidates = [i for _n, root in bpmn for i in executable(root) if i not in called]
        if len(candidates) > 1:
            raise BpmnInvalid([Problem(None, f"the model's files hold {len(candidates)} executable processes that "
                                             f"no call activity calls ({', '.join(candidates)}): name the one "
                                             f"instances start with as entry_process")])
    for name, root in bpmn:
        ids = executable(root) if entry_process else [i for i in executable(root) if i not in called]
        if (entry_process and entry_process in ids) or (not entry_process and ids):
            return [(name, root), *((n, r) for n, r in bpmn if n != name)], entry_process or ids[0]
    if entry_process:
        found = ", ".join(i for _n, root in bpmn for i in executable(root)) or "none"
        raise BpmnInvalid([Problem(entry_process, f"entry process {entry_process!r} is not an executable process "
                                                  f"in the model's files (found: {found})")])
    return bpmn, None


def entry_file(files: Mapping[str, bytes], process_id: str) -> str:
    """The name of the file that defines ``process_id`` (the model's entry; what the modeler opens)."""
    for name in sorted(files):
        if name.lower().endswith(".bpmn"):
            root = checked_bpmn_root(files[name])
            if any(p.get("id") == process_id for p in root.iter(f"{{{BPMN_NS}}}process")):
                return name
    raise BpmnInvalid([Problem(process_id, f"no file of the model defines process {process_id!r}")])
