"""Camunda 8 (``zeebe:``) extension elements, mapped to ours or refused."""
from __future__ import annotations

from lxml import etree

from bpm_server.engine.dialects.common import (
    ASSIGNEE,
    BPMN,
    CANDIDATE_USERS,
    DEPARTMENT,
    ZEEBE,
    Found,
    add_script,
    copy_properties,
    local,
    owner,
    put_loop_child,
    set_property,
)
from bpm_server.engine.dialects.expressions import Untranslatable, feel_to_python, is_feel

# Tooling, scheduling metadata and Camunda 8 forms (which the generic form replaces, as in SpiffWorkflow).
_HARMLESS = {"versionTag", "priorityDefinition", "taskSchedule", "formDefinition", "userTaskForm", "userTask",
             "taskHeaders", "calledDecision", "header"}


def extension(node: etree._Element, found: Found) -> None:
    parent = node.getparent()
    if parent is None or parent.tag != f"{{{BPMN}}}extensionElements":
        return  # nested: read by the element it belongs to
    target = owner(node)
    name = local(node)
    if name == "assignmentDefinition":
        for attribute, ours in (("assignee", ASSIGNEE), ("candidateGroups", DEPARTMENT),
                                ("candidateUsers", CANDIDATE_USERS)):
            value = (node.get(attribute) or "").strip()
            if is_feel(value):
                found.problem(node, f"zeebe:assignmentDefinition {attribute}={value!r} is computed at run time; "
                                    f"name the {'user' if ours != DEPARTMENT else 'group'} directly")
            elif value:
                set_property(target, ours, value)
    elif name == "taskDefinition":
        found.service_types[target.get("id") or ""] = node.get("type") or ""
    elif name == "calledElement":
        process = (node.get("processId") or "").strip()
        if is_feel(process) or not process:
            found.problem(node, f"zeebe:calledElement processId={process!r} must name a process")
        else:
            target.set("calledElement", process)
    elif name == "ioMapping":
        for tag, script in (("input", "preScript"), ("output", "postScript")):
            for mapping in node.iterfind(f"{{{ZEEBE}}}{tag}"):
                _mapping(mapping, target, script, found)
    elif name == "properties":
        copy_properties(node, ZEEBE, target)
    elif name == "script":
        _script(node, target, found)
    elif name == "loopCharacteristics":
        _loop(node, target, found)
    elif name == "subscription":
        _subscription(node, target, found)
    elif name in ("executionListeners", "taskListeners"):
        found.problem(node, f"zeebe:{name} call job workers around the element, which cannot run here")
    elif name not in _HARMLESS:
        found.problem(node, f"extension zeebe:{name} is not supported here")


def _subscription(node: etree._Element, message: etree._Element, found: Found) -> None:
    """``<zeebe:subscription correlationKey="=orderId"/>`` on a message: an instance waits for the
    message whose correlation carries its own ``orderId``. Written as a BPMN correlation property
    named like the variable, so a sender posts ``{"correlation": {"orderId": ...}}``."""
    key = (node.get("correlationKey") or "").strip()
    if not key:
        return  # a message start event's message: nothing to correlate with yet
    try:
        variable = feel_to_python(key) if is_feel(key) else key
    except Untranslatable as exc:
        found.problem(message, f"cannot translate zeebe:subscription correlationKey {key!r}: {exc}")
        return
    if local(message) != "message" or not message.get("id"):
        found.problem(node, "zeebe:subscription belongs on a bpmn:message with an id")
        return
    if not variable.isidentifier():
        found.problem(message, f"zeebe:subscription correlationKey {key!r} must name one variable (=orderId)")
        return
    root = message.getroottree().getroot()
    prop = next((p for p in root.iterfind(f"{{{BPMN}}}correlationProperty") if p.get("id") == variable), None)
    if prop is None:
        prop = etree.Element(f"{{{BPMN}}}correlationProperty", id=variable, name=variable)
        message.addnext(prop)
    retrieval = etree.SubElement(prop, f"{{{BPMN}}}correlationPropertyRetrievalExpression",
                                 messageRef=message.get("id") or "")
    etree.SubElement(retrieval, f"{{{BPMN}}}formalExpression").text = variable


def _mapping(mapping: etree._Element, target: etree._Element, script: str, found: Found) -> None:
    source, variable = mapping.get("source") or "", mapping.get("target") or ""
    try:
        value = feel_to_python(source) if is_feel(source) else repr(source)
    except Untranslatable as exc:
        found.problem(mapping, f"cannot translate mapping {source!r} -> {variable!r}: {exc}")
        return
    if not variable.isidentifier():
        found.problem(mapping, f"mapping target {variable!r} is not a variable name")
        return
    add_script(target, script, f"{variable} = {value}")


def _script(node: etree._Element, target: etree._Element, found: Found) -> None:
    expression, result = node.get("expression") or "", node.get("resultVariable") or ""
    try:
        python = feel_to_python(expression)
    except Untranslatable as exc:
        found.problem(node, f"cannot translate script expression {expression!r}: {exc}")
        return
    if not result.isidentifier():
        found.problem(node, f"zeebe:script resultVariable {result!r} is not a variable name")
        return
    script = target.find(f"{{{BPMN}}}script")
    if script is None:
        script = etree.SubElement(target, f"{{{BPMN}}}script")
    script.text = f"{result} = {python}"


def _loop(node: etree._Element, target: etree._Element, found: Found) -> None:
    collection, item = node.get("inputCollection") or "", node.get("inputElement") or ""
    characteristics = target.find(f"{{{BPMN}}}multiInstanceLoopCharacteristics")
    try:
        python = feel_to_python(collection)
    except Untranslatable as exc:
        found.problem(node, f"cannot translate inputCollection {collection!r}: {exc}")
        return
    if characteristics is None or not python.isidentifier():
        found.problem(node, f"zeebe:loopCharacteristics inputCollection {collection!r} must name a list variable")
        return
    put_loop_child(characteristics, "loopDataInputRef", python)
    if item:
        put_loop_child(characteristics, "inputDataItem", attrs={"id": f"{item}_item", "name": item})
