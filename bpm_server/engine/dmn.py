"""DMN decision tables: the upload checks of a model's ``.dmn`` files.

SpiffWorkflow's DMN engine runs the tables (a business rule task names its
decision with ``spiffworkflow:calledDecisionId``); its parser accepts much that
then fails or silently decides nothing at run time. So before a model is
published every table is checked here, and each problem names the table, the
rule (its id and row number) or the input at fault:

- a decision holds exactly one decision table (what the engine runs), with a
  hit policy the engine implements (UNIQUE, FIRST, COLLECT without aggregation);
- every input has an expression, every rule one entry per input and per output;
- every expression (input, input entry as the engine forms it, output entry)
  compiles in the sandbox, like every other expression of a diagram;
- under UNIQUE no two rules can match the same inputs (checked where the
  entries are literals, comparisons or ``-``; an entry we cannot reason
  about is never called overlapping).
"""
from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree

from bpm_server.engine.compiler import BpmnInvalid, Problem, _check_script, _safe_xml

DMN_NAMESPACES = (
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "https://www.omg.org/spec/DMN/20211108/MODEL/",
    "https://www.omg.org/spec/DMN/20230324/MODEL/",
)
HIT_POLICIES = ("UNIQUE", "FIRST", "COLLECT")
MAX_DMN_BYTES = 2 * 1024 * 1024
_QUESTION = re.compile(r"""(\?)(?=(?:[^'"]|['"][^'"]*['"])*$)""")  # the engine's "?" outside quotes


def checked_dmn_root(name: str, xml: bytes) -> etree._Element:
    """A DMN file's root after the size, XML and namespace checks, or ``BpmnInvalid`` naming the file."""
    if len(xml) > MAX_DMN_BYTES:
        raise BpmnInvalid([Problem(name, f"the DMN file is larger than {MAX_DMN_BYTES // (1024 * 1024)} MB")])
    try:
        root = _safe_xml(xml)
    except etree.XMLSyntaxError as exc:
        raise BpmnInvalid([Problem(name, f"DMN file {name}: malformed XML: {exc.msg}", exc.lineno)]) from None
    if root.getroottree().docinfo.doctype:
        raise BpmnInvalid([Problem(name, f"DMN file {name}: a DOCTYPE declaration is not allowed")])
    namespace = etree.QName(root).namespace
    if etree.QName(root).localname != "definitions" or namespace not in DMN_NAMESPACES:
        raise BpmnInvalid([Problem(name, f"{name} is not a DMN document: the root element is {root.tag!r}, "
                                         f"expected dmn:definitions in one of {', '.join(DMN_NAMESPACES)}")])
    return root


def dmn_problems(name: str, root: etree._Element) -> list[Problem]:
    """Every problem of one DMN file's decisions, each naming the decision, table, rule or input."""
    ns = etree.QName(root).namespace
    decisions = root.findall(f"{{{ns}}}decision")
    if not decisions:
        return [Problem(name, f"DMN file {name} has no decision")]
    if len(decisions) > 1:
        # SpiffWorkflow's DMN parser reads one decision per file.
        ids = ", ".join(d.get("id", "?") for d in decisions)
        return [Problem(decisions[1].get("id"), f"DMN file {name} holds {len(decisions)} decisions ({ids}); "
                                                 f"put each decision in a file of its own")]
    decision = decisions[0]
    tables = decision.findall(f"{{{ns}}}decisionTable")
    if len(tables) != 1:
        found = "no decision table" if not tables else f"{len(tables)} decision tables"
        return [Problem(decision.get("id"), f"decision {decision.get('id')!r} has {found}: the engine runs "
                                            f"exactly one decision table per decision (literal expressions "
                                            f"and decision requirements graphs are not supported)")]
    return _table_problems(ns or "", tables[0])


@dataclass(frozen=True)
class _Column:
    id: str
    label: str
    expression: str | None


def _table_problems(ns: str, table: etree._Element) -> list[Problem]:
    table_id = table.get("id") or "decisionTable"
    hit_policy = (table.get("hitPolicy") or "UNIQUE").upper()
    problems: list[Problem] = []
    if hit_policy not in HIT_POLICIES:
        problems.append(Problem(table_id, f"decision table {table_id!r}: hit policy {hit_policy} is not supported "
                                          f"(supported: {', '.join(HIT_POLICIES)})"))
    if table.get("aggregation"):
        problems.append(Problem(table_id, f"decision table {table_id!r}: COLLECT with aggregation "
                                          f"{table.get('aggregation')} is not supported; collect the list "
                                          f"and add it up in a script task"))
    inputs = [_input_of(ns, element) for element in table.findall(f"{{{ns}}}input")]
    outputs = [element.get("name") or element.get("id") or "" for element in table.findall(f"{{{ns}}}output")]
    for column in inputs:
        if not column.expression:
            problems.append(Problem(column.id, f"decision table {table_id!r}: input {column.label!r} has no "
                                               f"input expression (the value the rules test is missing)"))
        else:
            problems += [Problem(column.id, f"decision table {table_id!r}: input {column.label!r}: "
                                            f"expression {column.expression!r}: {exc.message}")
                         for exc in _check_script(column.expression, "eval")]
    if not outputs:
        problems.append(Problem(table_id, f"decision table {table_id!r} has no output"))
    for output in table.findall(f"{{{ns}}}output"):
        if not output.get("name"):
            problems.append(Problem(output.get("id"), f"decision table {table_id!r}: output "
                                                      f"{output.get('label') or output.get('id')!r} has no name "
                                                      f"(the variable the decision sets)"))
    rules: list[tuple[str, int, list[str | None]]] = []
    for row, rule in enumerate(table.findall(f"{{{ns}}}rule"), start=1):
        rule_id = rule.get("id") or f"row {row}"
        where = f"decision table {table_id!r}, rule {rule_id} (row {row})"
        entries = [_text(ns, e) for e in rule.findall(f"{{{ns}}}inputEntry")]
        results = [_text(ns, e) for e in rule.findall(f"{{{ns}}}outputEntry")]
        if len(entries) != len(inputs):
            problems.append(Problem(rule_id, f"{where} has {len(entries)} input entries for {len(inputs)} "
                                             f"inputs: give every input a cell ('-' matches anything)"))
            continue
        if len(results) != len(outputs):
            problems.append(Problem(rule_id, f"{where} has {len(results)} output entries for {len(outputs)} "
                                             f"outputs"))
            continue
        for column, entry in zip(inputs, entries, strict=True):
            source = _entry_expression(column.expression or "x", entry)
            problems += [Problem(rule_id, f"{where}: input {column.label!r}: cannot read entry {entry!r}: "
                                          f"{exc.message}") for exc in _check_script(source, "eval")] \
                if source else []
        for output_name, result in zip(outputs, results, strict=True):
            problems += [Problem(rule_id, f"{where}: output {output_name!r}: cannot read entry {result!r}: "
                                          f"{exc.message}") for exc in _check_script(result, "eval")] \
                if result else []
        rules.append((rule_id, row, [_cell(e) for e in entries]))
    if hit_policy == "UNIQUE" and not problems:
        problems += _overlaps(table_id, inputs, rules)
    return problems


def _input_of(ns: str, element: etree._Element) -> _Column:
    expression = element.find(f"{{{ns}}}inputExpression")
    text = _text(ns, expression) if expression is not None else None
    return _Column(element.get("id") or "input", element.get("label") or element.get("id") or "input", text)


def _text(ns: str, element: etree._Element) -> str | None:
    node = element.find(f"{{{ns}}}text")
    text = (node.text or "").strip() if node is not None else ""
    return text or None


def _entry_expression(input_expression: str, entry: str | None) -> str | None:
    """The expression the DMN engine evaluates for one cell (see SpiffWorkflow's ``DMNEngine.evaluate``)."""
    if entry is None or entry == "-":
        return None
    if _QUESTION.search(entry):
        return _QUESTION.sub("dmninputexpr", entry)
    try:
        ast.parse(entry, mode="eval")
    except SyntaxError:
        return f"({input_expression}) {entry}"  # a comparison such as "> 1000": the engine prefixes the input
    return f"({input_expression}) == ({entry})"


# --------------------------------------------------------------------------- overlapping rules

# A cell as a set of values it matches: None = anything; ("eq", values) = those literals;
# ("range", low, low_open, high, high_open) for numbers; "unknown" when we cannot tell.
_Cell = Any


def _cell(entry: str | None) -> _Cell:
    if entry is None or entry == "-":
        return None
    try:
        value = ast.literal_eval(entry)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = None
    if isinstance(value, (str, int, float, bool)):
        return ("eq", frozenset([value]))
    match = re.fullmatch(r"\s*(==|>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)\s*", entry)
    if match:
        operator, number = match.group(1), float(match.group(2))
        return {"==": ("eq", frozenset([number])), ">": ("range", number, True, None, True),
                ">=": ("range", number, False, None, True), "<": ("range", None, True, number, True),
                "<=": ("range", None, True, number, False)}[operator]
    match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(<=|<)\s*\?\s*(<=|<)\s*(-?\d+(?:\.\d+)?)\s*", entry)
    if match:
        return ("range", float(match.group(1)), match.group(2) == "<", float(match.group(4)), match.group(3) == "<")
    return "unknown"


def _intersect(a: _Cell, b: _Cell) -> bool | None:
    """Whether two cells match a common value: True, False, or None when we cannot tell."""
    if a is None or b is None:
        return True
    if a == "unknown" or b == "unknown":
        return None
    assert isinstance(a, tuple) and isinstance(b, tuple)
    if a[0] == "eq" and b[0] == "eq":
        return bool(a[1] & b[1])
    if a[0] == "eq":
        a, b = b, a
    if b[0] == "eq":  # a is a range
        return any(isinstance(v, (int, float)) and not isinstance(v, bool) and _in_range(a, float(v)) for v in b[1])
    low = _max_bound((a[1], a[2]), (b[1], b[2]), lower=True)
    high = _max_bound((a[3], a[4]), (b[3], b[4]), lower=False)
    if low[0] is None or high[0] is None:
        return True
    return low[0] < high[0] or (low[0] == high[0] and not low[1] and not high[1])


def _in_range(cell: tuple, value: float) -> bool:
    _kind, low, low_open, high, high_open = cell
    above = low is None or value > low or (value == low and not low_open)
    below = high is None or value < high or (value == high and not high_open)
    return above and below


def _max_bound(a: tuple, b: tuple, *, lower: bool) -> tuple:
    """The tighter of two bounds (value, open): the larger lower bound or the smaller upper bound."""
    if a[0] is None:
        return b
    if b[0] is None:
        return a
    if a[0] == b[0]:
        return (a[0], a[1] or b[1])
    return max(a, b, key=lambda x: x[0]) if lower else min(a, b, key=lambda x: x[0])


def _overlaps(table_id: str, inputs: Sequence[_Column], rules: list[tuple[str, int, list[_Cell]]]) -> list[Problem]:
    problems = []
    for i, (first, first_row, first_cells) in enumerate(rules):
        for second, second_row, second_cells in rules[i + 1:]:
            if all(_intersect(a, b) is True for a, b in zip(first_cells, second_cells, strict=True)):
                labels = ", ".join(column.label for column in inputs) or "no inputs"
                problems.append(Problem(second, f"decision table {table_id!r} has hit policy UNIQUE, but rules "
                                                f"{first} (row {first_row}) and {second} (row {second_row}) "
                                                f"both match the same values of {labels}: make the rules "
                                                f"exclusive or choose hit policy FIRST"))
                break
    return problems
