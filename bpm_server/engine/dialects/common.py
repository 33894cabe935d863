"""What the dialect translators share: namespaces, the problem list, and writing the
``spiffworkflow:`` extensions our parser reads (properties, pre- and post-scripts)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
ZEEBE = "http://camunda.org/schema/zeebe/1.0"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"

# Our property names (read by the modeling and tasks domains).
DEPARTMENT = "department"
ASSIGNEE = "assignee"
CANDIDATE_USERS = "candidateUsers"
FORM = "formJsonSchemaFilename"


@dataclass
class Found:
    problems: list[tuple[str | None, str, int | None]] = field(default_factory=list)
    forms: dict[str, dict[str, Any]] = field(default_factory=dict)
    service_types: dict[str, str] = field(default_factory=dict)

    def problem(self, node: etree._Element, message: str) -> None:
        self.problems.append((element_id(node), message, node.sourceline))


def local(node: etree._Element) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def owner(node: etree._Element) -> etree._Element:
    """The BPMN element a node belongs to (itself, or the nearest ancestor with an id outside extensions)."""
    current: etree._Element | None = node
    while current is not None:
        if (isinstance(current.tag, str) and current.tag.startswith(f"{{{BPMN}}}") and current.get("id")
                and local(current) not in ("extensionElements",)
                # An event definition's id means nothing in the modeler: name its event.
                and not local(current).endswith("EventDefinition")):
            return current
        current = current.getparent()
    return node


def element_id(node: etree._Element) -> str | None:
    return owner(node).get("id")


def _extensions(element: etree._Element) -> etree._Element:
    ext = element.find(f"{{{BPMN}}}extensionElements")
    if ext is None:
        ext = etree.Element(f"{{{BPMN}}}extensionElements")
        docs = element.findall(f"{{{BPMN}}}documentation")
        element.insert(len(docs), ext)
    return ext


def copy_properties(node: etree._Element, namespace: str, target: etree._Element) -> None:
    """A dialect's ``<ns:property name= value=>`` children written as our task properties on ``target``."""
    for prop in node.iterfind(f"{{{namespace}}}property"):
        if prop.get("name"):
            set_property(target, prop.get("name") or "", prop.get("value") or "")


def set_property(element: etree._Element, name: str, value: str) -> None:
    """Write ``spiffworkflow:property`` ``name`` = ``value`` on a BPMN element (replacing one of that name)."""
    ext = _extensions(element)
    props = ext.find(f"{{{SPIFF}}}properties")
    if props is None:
        props = etree.SubElement(ext, f"{{{SPIFF}}}properties")
    for prop in props.findall(f"{{{SPIFF}}}property"):
        if prop.get("name") == name:
            props.remove(prop)
    etree.SubElement(props, f"{{{SPIFF}}}property", name=name, value=value)


def get_property(element: etree._Element, name: str) -> str | None:
    for prop in element.iterfind(f"{{{BPMN}}}extensionElements/{{{SPIFF}}}properties/{{{SPIFF}}}property"):
        if prop.get("name") == name:
            return prop.get("value")
    return None


def add_script(element: etree._Element, kind: str, line: str) -> None:
    """Append a line to the element's ``spiffworkflow:preScript`` or ``postScript``."""
    ext = _extensions(element)
    script = ext.find(f"{{{SPIFF}}}{kind}")
    if script is None:
        script = etree.SubElement(ext, f"{{{SPIFF}}}{kind}")
        script.text = line
    else:
        script.text = f"{script.text or ''}\n{line}"


def names(text: str | None) -> list[str]:
    """A comma-separated list attribute (candidateGroups, candidateUsers), trimmed, empty items left out."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


_LOOP_ORDER = ("loopCardinality", "loopDataInputRef", "loopDataOutputRef", "inputDataItem", "outputDataItem",
               "complexBehaviorDefinition", "completionCondition")


def put_loop_child(characteristics: etree._Element, tag: str, text: str | None = None,
                   attrs: dict[str, str] | None = None) -> None:
    """Add a child to multiInstanceLoopCharacteristics in the order the BPMN schema requires."""
    if characteristics.find(f"{{{BPMN}}}{tag}") is not None:
        return
    child = etree.Element(f"{{{BPMN}}}{tag}")
    for key, value in (attrs or {}).items():
        child.set(key, value)
    child.text = text
    rank = _LOOP_ORDER.index(tag)
    position = 0
    for index, existing in enumerate(characteristics):
        if local(existing) in ("documentation", "extensionElements") or (
                local(existing) in _LOOP_ORDER and _LOOP_ORDER.index(local(existing)) < rank):
            position = index + 1
    characteristics.insert(position, child)
