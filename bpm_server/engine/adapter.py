"""The engine adapter: the public face of the engine package, the only code in the
server that imports SpiffWorkflow (only modules inside ``bpm_server/engine/`` do).

The rest of the server imports from here, never from the modules behind it:
``compiler`` (and ``packages`` for a model of several BPMN and DMN files,
checked by ``dmn``) turns BPMN XML into a ``CompiledModel`` (or a list of problems per
BPMN element); ``run`` starts and resumes workflow runs, lists the human tasks
that are ready, completes them with form data and dumps the state as JSON
without the spec (the spec is compiled once per model version and injected on
load; see shared/notes/design-invariants.md); ``sandbox`` runs the diagrams'
scripts; ``events`` says what waiting tasks and start events wait for (event-based
gateways, timer and message start events, signals).

SpiffWorkflow gotchas handled in the package (numbers from shared/notes/spiffworkflow-3.2-probe.md):
G1 deep loops stall silently -> ``Run._check_depth`` (a named "loop too deep" error); G2/G9 scripts are Python ->
the RestrictedPython sandbox; G5 parser/serializer families must match ->
Spiff parser with SPIFF_CONFIG everywhere; G7 timers refresh after the run
loop -> ``Run.advance`` refreshes first; G8 no clock seam -> ``use_clock``;
G14 the serializer is not thread-safe -> one per thread.

Budgets (``Budgets``, from the deployment's config): the sandbox limits CPU
time, memory and value sizes per evaluation; ``Run`` limits engine steps and
call-activity depth per command. Every failure inside a ``Run`` method, a
budget or anything SpiffWorkflow raises, leaves it as ``EngineError`` naming
the BPMN element (and ``budget`` when one ran out).
"""
from __future__ import annotations

from bpm_server.engine import events
from bpm_server.engine.compiler import (
    BPMN_NS,
    DOCTYPE_REFUSED,
    MAX_BPMN_BYTES,
    MAX_PROLOG_BYTES,
    BpmnInvalid,
    CompiledModel,
    HumanTaskSpec,
    Problem,
    compile_bpmn,
)
from bpm_server.engine.external import topic_of
from bpm_server.engine.packages import compile_files, entry_file, is_model_file
from bpm_server.engine.run import (
    MAX_TASK_DEPTH,
    EngineError,
    ReadyTask,
    Run,
    ServiceCall,
    WaitingMessage,
    use_clock,
)
from bpm_server.engine.sandbox import BudgetExceeded, Budgets

__all__ = [
    "BPMN_NS", "DOCTYPE_REFUSED", "MAX_BPMN_BYTES", "MAX_PROLOG_BYTES", "MAX_TASK_DEPTH",
    "BpmnInvalid", "BudgetExceeded", "Budgets", "CompiledModel", "EngineError", "HumanTaskSpec", "Problem", "ReadyTask",
    "Run", "ServiceCall", "WaitingMessage", "compile_bpmn", "compile_files", "entry_file", "events",
    "is_model_file", "topic_of", "use_clock",
]
