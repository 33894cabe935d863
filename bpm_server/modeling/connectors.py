"""Upload checks of service tasks against the deployment's connectors: a task may only
call a system this deployment declares (``erp``, built in, or one of the connectors
file), an operation that system declares, and, for spiff-arena's ``http/...``
operations, a URL under a declared system's base URL when the URL is a literal."""
from __future__ import annotations

import ast

from bpm_server.engine.adapter import CompiledModel, Problem, topic_of
from bpm_server.extensions import deployment
from integrations.connectors import HTTP_OPERATIONS, ConnectorConfigError, HttpConnector
from integrations.registry import connectors_path, declared_connectors

BUILT_IN = {"erp"}  # configured by BPM_ERP_BASE_URL; a deployment without it answers its calls "skipped"


def service_task_problems(model: CompiledModel) -> list[Problem]:
    if all(topic_of(op) is not None or op.partition(".")[0] in BUILT_IN for op, _ in model.service_tasks.values()):
        return []  # nothing to look up in the connectors file (nor a deployment needed)
    config = deployment().config
    try:
        systems = declared_connectors(config)
        broken = None
    except ConnectorConfigError as exc:
        systems, broken = {}, str(exc)
    problems = []
    for element, (operation, params) in sorted(model.service_tasks.items()):
        if topic_of(operation) is not None:
            continue
        problem = _problem(operation, params, systems, broken, connectors_path(config))
        if problem:
            problems.append(Problem(element, problem))
    return problems


def _problem(operation: str, params: dict[str, str], systems: dict[str, HttpConnector], broken: str | None,
             path: object) -> str | None:
    declared = ", ".join(sorted(BUILT_IN | set(systems)))
    if operation.startswith("http/") and operation not in HTTP_OPERATIONS:
        return f"unknown HTTP operation {operation!r} (known: {', '.join(sorted(HTTP_OPERATIONS))})"
    if operation in HTTP_OPERATIONS:
        try:
            url = ast.literal_eval(params.get("url") or "")
        except (ValueError, SyntaxError):
            return None if params.get("url") else f"the {operation} call needs a 'url' parameter"
        if isinstance(url, str) and not any(c.owns(url) for c in systems.values()):
            return (f"the {operation} call goes to {url!r}, which is under no system of the connectors file "
                    f"({path or 'none configured'}); declare its base URL there")
        return None
    system, _, name = operation.partition(".")
    if system in BUILT_IN:
        return None
    if system not in systems:
        reason = f"the connectors file cannot be read ({broken})" if broken else \
            f"it is not declared in the connectors file ({path or 'none configured'})"
        return f"the service task calls system {system!r}, but {reason}; known systems: {declared}"
    if name not in systems[system].operations:
        return (f"system {system!r} declares no operation {name!r} in the connectors file "
                f"(declared: {', '.join(sorted(systems[system].operations)) or 'none'})")
    return None
