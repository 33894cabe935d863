"""Camunda 7 (``camunda:``) attributes and extension elements, mapped to ours or refused."""
from __future__ import annotations

from typing import Any

from lxml import etree

from bpm_server.engine.dialects.common import (
    ASSIGNEE,
    BPMN,
    CAMUNDA,
    CANDIDATE_USERS,
    DEPARTMENT,
    FORM,
    Found,
    add_script,
    copy_properties,
    local,
    owner,
    put_loop_child,
    set_property,
)
from bpm_server.engine.dialects.expressions import Untranslatable, juel_to_python, value_to_python

# Attributes that only tune Camunda's job executor, history or tooling: no effect on what runs here.
_HARMLESS = {"asyncBefore", "asyncAfter", "exclusive", "jobPriority", "taskPriority", "historyTimeToLive",
             "versionTag", "isStartableInTasklist", "candidateStarterGroups", "candidateStarterUsers", "dueDate",
             "followUpDate", "priority", "initiator", "formRefBinding", "formRefVersion", "modelerTemplate",
             "modelerTemplateVersion", "calledElementBinding", "calledElementVersion", "calledElementVersionTag",
             "calledElementTenantId", "caseRef", "failedJobRetryTimeCycle", "errorCodeVariable",
             "errorMessageVariable", "escalationCodeVariable", "variableName", "async",
             "diagramRelationId"}  # diagramRelationId: Camunda Modeler links the file to its cloud copy
# Read by other parts of the server (DMN business rule tasks, external service tasks).
_ELSEWHERE = {"decisionRef", "decisionRefBinding", "decisionRefVersion", "decisionRefVersionTag",
              "decisionRefTenantId", "mapDecisionResult", "resultVariable", "type", "topic"}
_DELEGATES = {"class": "a Java class", "delegateExpression": "a Java delegate expression",
              "expression": "a Java expression"}
_HARMLESS_EXTENSIONS = {"failedJobRetryTimeCycle", "potentialStarter", "errorEventDefinition"}
_JSON_TYPES = {"string": "string", "long": "integer", "boolean": "boolean", "date": "string", "enum": "string"}


def element(node: etree._Element, found: Found) -> None:
    """The ``camunda:`` attributes of one BPMN element."""
    for attribute, value in list(node.attrib.items()):
        if not attribute.startswith(f"{{{CAMUNDA}}}"):
            continue
        name = attribute.split("}", 1)[1]
        if name in _HARMLESS:
            continue
        if name in _DELEGATES:
            found.problem(node, f"camunda:{name}={value!r} runs {_DELEGATES[name]}, which cannot run here; "
                                f"use a script task or a service task of a declared system")
        elif name == "assignee":
            set_property(node, ASSIGNEE, value.strip())
        elif name == "candidateGroups":
            set_property(node, DEPARTMENT, value.strip())
        elif name == "candidateUsers":
            set_property(node, CANDIDATE_USERS, value.strip())
        elif name == "formKey":
            _form_key(node, value, found)
        elif name in ("collection", "elementVariable"):
            _multi_instance(node, name, value, found)
        elif name == "scriptFormat":
            continue
        elif name == "formRef":
            continue  # a Camunda Forms reference: the task gets the generic form (SpiffWorkflow ignores it too)
        elif name == "type" and value == "external":
            found.service_types[node.get("id") or ""] = node.get(f"{{{CAMUNDA}}}topic") or ""
        elif name in _ELSEWHERE:
            if name == "resultVariable" and local(node) == "scriptTask":
                found.problem(node, "camunda:resultVariable on a script task is not supported: assign the "
                                    "variable in the script instead")
            continue
        else:
            found.problem(node, f"attribute camunda:{name} is not supported here")
    if local(node) == "scriptTask":
        fmt = (node.get("scriptFormat") or "python").lower()
        if fmt not in ("python", "py", "text/x-python"):
            found.problem(node, f"the script is written in {node.get('scriptFormat')!r}; only Python scripts run "
                                f"here")


def _form_key(node: etree._Element, value: str, found: Found) -> None:
    # "embedded:app:forms/x.html", "camunda-forms:..." and the like are other tools' forms; one
    # that names a JSON file is taken for ours (the upload then checks we hold it).
    name = value.rsplit(":", 1)[-1].removeprefix("forms/")
    if name.endswith(".json"):
        set_property(node, FORM, name)


def _multi_instance(node: etree._Element, name: str, value: str, found: Found) -> None:
    if name == "elementVariable":
        put_loop_child(node, "inputDataItem", attrs={"id": f"{value}_item", "name": value})
        return
    try:
        collection = juel_to_python(value) if "{" in value else value.strip()
    except Untranslatable as exc:
        found.problem(node, f"cannot translate camunda:collection {value!r}: {exc}")
        return
    if not collection.isidentifier():
        found.problem(node, f"camunda:collection {value!r} must name a variable holding a list")
        return
    put_loop_child(node, "loopDataInputRef", collection)


def extension(node: etree._Element, found: Found) -> None:
    """One ``camunda:`` element directly under ``bpmn:extensionElements`` (nested ones are read by their parent)."""
    parent = node.getparent()
    if parent is None or parent.tag != f"{{{BPMN}}}extensionElements":
        return
    target = owner(node)
    name = local(node)
    if name == "properties":
        copy_properties(node, CAMUNDA, target)
    elif name == "formData":
        _form_data(node, target, found)
    elif name == "inputOutput":
        _input_output(node, target, found)
    elif name in ("executionListener", "taskListener"):
        what = node.get("class") or node.get("delegateExpression") or node.get("expression") or "a script"
        found.problem(node, f"camunda:{name} ({node.get('event') or 'any event'}: {what}) cannot run here; "
                            f"model the work as a task of the diagram instead")
    elif name in ("in", "out"):
        _call_mapping(node, name, found)
    elif name in ("field", "connector"):
        found.problem(node, f"camunda:{name} configures a Java delegate or connector, which cannot run here")
    elif name not in _HARMLESS_EXTENSIONS:
        found.problem(node, f"extension camunda:{name} is not supported here")


def _form_data(node: etree._Element, target: etree._Element, found: Found) -> None:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for xml_field in node.iterfind(f"{{{CAMUNDA}}}formField"):
        field_id, kind = xml_field.get("id") or "", xml_field.get("type") or "string"
        if kind not in _JSON_TYPES:
            found.problem(node, f"form field {field_id!r} has type {kind!r}; supported types are "
                                f"{', '.join(_JSON_TYPES)}")
            continue
        schema: dict[str, Any] = {"type": _JSON_TYPES[kind], "title": xml_field.get("label") or field_id}
        if kind == "date":
            schema["format"] = "date"
        if kind == "enum":
            values = list(xml_field.iterfind(f"{{{CAMUNDA}}}value"))
            schema["enum"] = [v.get("id") for v in values]
            schema["x-enum-labels"] = {v.get("id"): v.get("name") or v.get("id") for v in values}
        default = xml_field.get("defaultValue")
        if default is not None and "${" not in default:
            schema["default"] = _typed(default, kind)
        for constraint in xml_field.iterfind(f"{{{CAMUNDA}}}validation/{{{CAMUNDA}}}constraint"):
            rule, config = constraint.get("name"), constraint.get("config")
            if rule == "required":
                required.append(field_id)
            elif rule in ("minlength", "maxlength") and config and config.isdigit():
                schema["minLength" if rule == "minlength" else "maxLength"] = int(config)
            elif rule in ("min", "max") and config:
                try:
                    schema["minimum" if rule == "min" else "maximum"] = float(config)
                except ValueError:
                    found.problem(node, f"form field {field_id!r}: {rule} {config!r} is not a number")
            elif rule == "readonly":
                schema["readOnly"] = True
            else:
                found.problem(node, f"form field {field_id!r}: validation {rule!r} is not supported")
        properties[field_id] = schema
    form: dict[str, Any] = {"type": "object", "title": target.get("name") or target.get("id"),
                            "properties": properties}
    if required:
        form["required"] = required
    form_name = f"camunda-formData/{target.get('id')}.json"
    found.forms[form_name] = form
    set_property(target, FORM, form_name)


def _typed(value: str, kind: str) -> Any:
    if kind == "long" and value.lstrip("-").isdigit():
        return int(value)
    if kind == "boolean":
        return value.lower() == "true"
    return value


def _input_output(node: etree._Element, target: etree._Element, found: Found) -> None:
    for tag, script in (("inputParameter", "preScript"), ("outputParameter", "postScript")):
        for param in node.iterfind(f"{{{CAMUNDA}}}{tag}"):
            name = param.get("name") or ""
            try:
                value = _parameter_value(param)
            except Untranslatable as exc:
                found.problem(node, f"camunda:{tag} {name!r}: {exc}")
                continue
            if not name.isidentifier():
                found.problem(node, f"camunda:{tag} {name!r} is not a variable name")
                continue
            add_script(target, script, f"{name} = {value}")


def _parameter_value(param: etree._Element) -> str:
    children = [c for c in param if isinstance(c.tag, str)]
    if not children:
        return value_to_python(param.text or "") if (param.text or "").strip() else "None"
    child = children[0]
    kind = local(child)
    if kind == "list":
        return "[" + ", ".join(_parameter_value(v) for v in child.iterfind(f"{{{CAMUNDA}}}value")) + "]"
    if kind == "map":
        return "{" + ", ".join(f"{e.get('key')!r}: {_parameter_value(e)}"
                               for e in child.iterfind(f"{{{CAMUNDA}}}entry")) + "}"
    if kind == "script" and (child.get("scriptFormat") or "").lower() == "python" and child.text:
        raise Untranslatable("a script value is not supported; compute it in a script task")
    raise Untranslatable(f"a camunda:{kind} value is not supported")


def _call_mapping(node: etree._Element, name: str, found: Found) -> None:
    # A call activity here shares all variables both ways: "all", or a variable passed under its own name, means
    # the same; renaming or computed values would not happen, so they are refused.
    if node.get("variables") == "all" or node.get("businessKey"):
        return
    source, target = node.get("source"), node.get("target")
    if source and source == target and not node.get("sourceExpression"):
        return
    found.problem(node, f"camunda:{name} maps {node.get('source') or node.get('sourceExpression')!r} to "
                        f"{target!r}; only variables=\"all\" or a variable under its own name are supported")
