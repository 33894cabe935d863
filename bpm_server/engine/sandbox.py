"""Restricted evaluation of the Python embedded in uploaded BPMN diagrams.

Process owners upload BPMN diagrams whose script tasks, gateway conditions and
timer expressions are written in Python.  Those people are trusted to model
processes, not to run arbitrary code on the server, so that Python must never
be handed to the plain ``exec``/``eval`` builtins.  This module is the only
place where diagram code is compiled and run.

How it works
------------
This is a **RestrictedPython sandbox, not process isolation**.  The code runs
in the server process, with the server's privileges; the protection comes
from two layers:

1. *Compile time* (``RestrictedPython`` plus a small policy subclass): the
   source is parsed and rejected when it uses ``import``, ``exec``/``eval``,
   ``class`` definitions, ``while`` loops, ``try/except*``, async code, or any
   name or attribute that starts with ``_`` (``__import__``,
   ``().__class__``, ``f.__code__``, ``x.__dict__``, ``x._private``) or is a
   frame/generator introspection attribute (``gi_frame``, ``f_globals``...).
   Attribute reads, item reads/writes, iteration and augmented assignment are
   rewritten into calls to guard functions supplied at run time.
2. *Run time*: the code only sees a short whitelist of builtins (no ``open``,
   ``getattr``, ``type``, ``globals``, ``compile``, ``iter``...), the
   variables of the task, and the helper functions the server chooses to
   expose.  The guards refuse ``str.format``/``format_map`` (their field
   syntax can walk ``{0.__class__...}`` past the compile-time check), refuse
   item writes to anything but ``dict``/``list``/``set``, iterate lists over a
   snapshot, cap ``range()`` and enforce the budgets below.

Budgets (:class:`Budgets`, set per deployment in ``bpm_server.config``)
-------------------------------------------------------------------------
Every evaluation runs under a per-evaluation meter (:class:`_Meter`), with no
signals, threads or tracing (the embedded server runs requests in threads,
where SIGALRM cannot reach; ``sys.settrace`` would slow every line):

* *CPU time*: the compiler injects a call to ``_tick_()`` at the top of every
  ``for`` body, every comprehension step and every function/lambda body
  (loops and recursion are the only ways to run long in Python code).  A tick
  compares ``perf_counter()`` with a deadline (about 0.2 us); only when the
  wall deadline has passed is the thread's CPU time read, so time spent
  waiting for the GIL does not count.  The first tick starts the meter, and
  code that cannot loop, call or grow a value (most gateway conditions) gets
  no meter at all: it pays what it paid before the budgets.
* *Size of values*: ``+``, ``*``, ``**``, ``<<`` and ``%`` (and their
  augmented forms), f-string format specs and the growing ``str``/``list``
  methods (``replace``, ``join``, ``ljust``..., ``extend``) are routed
  through guards that refuse a result longer than ``max_value_length``
  elements or an integer wider than ``max_int_bits`` *before* computing it
  (as ``simpleeval`` does).
* *Memory*: the growth of the process's resident set since the meter started,
  read from ``/proc/self/statm`` every few hundred ticks and before every big
  (>= 1 MB) guarded result.  It is process-wide, so a concurrent request's
  allocations count too (erring on the side of stopping); not available
  where ``/proc`` is missing.
* Stopping raises ``_Stop``, a ``BaseException``: a script's ``except
  Exception`` (bare ``except:`` is compiled as ``except Exception:``) cannot
  swallow it.  It leaves the sandbox as :class:`BudgetExceeded`.

Remaining limit: a single C-level operation on a value that passed the size
guards is not interrupted (e.g. sorting a million-element list of shared
million-element lists).  Only a separate, resource-limited process would
close that.  Anything a *helper* function does is trusted; only expose
helpers that are safe to call with arbitrary arguments, and do not return
live server objects from them.

Public API: :class:`ScriptError`, :class:`BudgetExceeded`, :class:`Budgets` and
:class:`RestrictedEvaluator`.
"""

from __future__ import annotations

import ast
import copy
import functools
import logging
import math
import operator
import os
import re
import string
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeGuard, cast
from uuid import UUID

from RestrictedPython import (
    RestrictingNodeTransformer,
    compile_restricted_eval,
    compile_restricted_exec,
)
from RestrictedPython.Guards import (
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
)
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

__all__ = ["BudgetExceeded", "Budgets", "RestrictedEvaluator", "ScriptError"]

logger = logging.getLogger(__name__)

#: Filename given to compiled diagram code; used to find the failing line.
SCRIPT_FILENAME = "<script>"

#: Largest ``range()`` a script may create.
MAX_RANGE = 1_000_000
#: Default for :attr:`Budgets.max_value_length`.
MAX_SEQUENCE_LENGTH = 1_000_000
#: Default for :attr:`Budgets.max_int_bits`.
MAX_INT_BITS = 100_000
#: Characters of ``print`` output kept (and logged at DEBUG) per run.
MAX_PRINT_CHARS = 10_000

#: Non-container values kept in :meth:`RestrictedEvaluator.execute` results
#: besides None/bool/int/float/str (these are the ones SpiffWorkflow's default
#: serializer registry knows how to store).
EXTRA_DATA_TYPES: tuple[type, ...] = (datetime, timedelta, UUID)


class ScriptError(Exception):
    """A diagram's script or expression failed: compile error, forbidden construct, or runtime error."""

    message: str
    line: int | None
    source_line: str | None

    def __init__(
        self,
        message: str,
        line: int | None = None,
        source_line: str | None = None,
    ) -> None:
        self.message = message
        self.line = line
        self.source_line = source_line
        super().__init__(message, line, source_line)

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        text = f"line {self.line}: {self.message}"
        if self.source_line:
            text += f" [{self.source_line.strip()}]"
        return text


class _AccessDenied(Exception):
    """Raised by the run-time guards; turned into a ScriptError with its message."""


@dataclass(frozen=True)
class Budgets:
    """What one evaluation of diagram code, and one engine command, may use.

    The sandbox enforces the first four per evaluation (a script, condition or
    expression); the engine (``bpm_server.engine.run``) enforces the last two
    per command (start, completion, timer, message, service answer).
    """

    cpu_seconds: float = 1.0  # CPU time of one evaluation
    memory_bytes: int = 256 * 1024 * 1024  # growth of the resident set during one evaluation
    max_value_length: int = MAX_SEQUENCE_LENGTH  # elements of a str/list/tuple a guarded operation may produce
    max_int_bits: int = MAX_INT_BITS  # width of an int a guarded operation may produce
    max_engine_steps: int = 10_000  # engine tasks run by one command
    max_call_depth: int = 20  # call activities nested inside each other

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "memory_bytes", "max_value_length", "max_int_bits",
                     "max_engine_steps", "max_call_depth"):
            if not getattr(self, name) > 0:
                raise ValueError(f"budget {name} must be positive, not {getattr(self, name)!r}")


class BudgetExceeded(ScriptError):
    """Diagram code went over one of its :class:`Budgets`; ``budget`` says which."""

    budget: str

    def __init__(self, budget: str, message: str, line: int | None = None, source_line: str | None = None) -> None:
        super().__init__(message, line, source_line)
        self.budget = budget


class _Stop(BaseException):
    """Raised by the meter when a budget is exhausted.

    A BaseException so that a script's ``except Exception`` cannot swallow it
    (bare ``except:`` is compiled as ``except Exception:``).
    """

    def __init__(self, budget: str, message: str) -> None:
        super().__init__(message)
        self.budget = budget
        self.message = message


# --------------------------------------------------------------------------
# Compilation
# --------------------------------------------------------------------------


class _DiagramPolicy(RestrictingNodeTransformer):
    """RestrictedPython's default policy, made stricter for diagram code."""

    def visit_Import(self, node: ast.Import) -> ast.AST:
        self.error(node, "import is not allowed")
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        self.error(node, "import is not allowed")
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.error(node, "class definitions are not allowed")
        return node

    def visit_While(self, node: ast.While) -> ast.AST:
        # Endless by mistake too easily; a bounded `for` loop can do the job.
        self.error(
            node,
            "while loops are not allowed; use a for loop over a list or range()",
        )
        return node

    # The rewrites below add names starting with '_', which the policy refuses
    # in user code; they are added after the node's children were checked.
    # The policy's visit_* hand back the node they were given (children
    # checked and rewritten in place); the casts say so to the type checker.

    def visit_For(self, node: ast.For) -> ast.AST:
        node = cast(ast.For, super().visit_For(node))
        node.body.insert(0, _located(ast.Expr(_tick_call()), node))
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        node = cast(ast.comprehension, super().visit_comprehension(node))
        node.ifs.insert(0, _located(_tick_call(), node.iter))  # _tick_() is always true
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node = cast(ast.FunctionDef, super().visit_FunctionDef(node))
        node.body.insert(0, _located(ast.Expr(_tick_call()), node))
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        node = cast(ast.Lambda, super().visit_Lambda(node))
        node.body = _located(ast.BoolOp(op=ast.And(), values=[_tick_call(), node.body]), node.body)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = cast(ast.BinOp, super().visit_BinOp(node))
        symbol = _GUARDED_BINOPS.get(type(node.op))
        if symbol is None:
            return node
        call = ast.Call(func=ast.Name("_binop_", ast.Load()),
                        args=[ast.Constant(symbol), node.left, node.right], keywords=[])
        return _located(call, node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        # f"{x:>{10**10}}" would pad to 10 GB: the spec goes through _format_.
        node = cast(ast.FormattedValue, super().visit_FormattedValue(node))
        if node.format_spec is None:
            return node
        call = ast.Call(func=ast.Name("_format_", ast.Load()),
                        args=[node.value, node.format_spec, ast.Constant(node.conversion)], keywords=[])
        return _located(ast.FormattedValue(value=call, conversion=-1, format_spec=None), node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        node = cast(ast.ExceptHandler, super().visit_ExceptHandler(node))
        if node.type is None:  # bare except would catch the meter's _Stop
            node.type = _located(ast.Name("Exception", ast.Load()), node)
        return node


_GUARDED_BINOPS: dict[type, str] = {ast.Add: "+", ast.Mult: "*", ast.Pow: "**", ast.LShift: "<<", ast.Mod: "%"}


def _tick_call() -> ast.Call:
    return ast.Call(func=ast.Name("_tick_", ast.Load()), args=[], keywords=[])


def _located(new: Any, old: ast.AST) -> Any:
    """Give an injected node (and its new children) the position of the node it guards."""
    for child in ast.walk(new):
        if "lineno" in child._attributes and not hasattr(child, "lineno"):
            ast.copy_location(child, old)
    return new


@dataclass(frozen=True)
class _Compiled:
    code: types.CodeType
    used_names: frozenset[str]  # names the code reads (used to copy only what's needed)
    # Whether the code can loop, call, grow a value or read a growing method: only then
    # does an evaluation need its own meter (a plain comparison runs without one).
    needs_meter: bool = True


def _needs_meter(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.comprehension, ast.FunctionDef, ast.Lambda, ast.AugAssign)):
            return True
        if isinstance(node, ast.BinOp) and type(node.op) in _GUARDED_BINOPS:
            return True
        if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            return True
        if isinstance(node, ast.Attribute) and node.attr in _METERED_ATTRIBUTES:
            return True
    return False


_ERROR_RE = re.compile(r"^Line (\d+|None): (.*)$", re.DOTALL)


def _source_line(source: str, line: int | None) -> str | None:
    if line is None:
        return None
    lines = source.splitlines()
    if 1 <= line <= len(lines):
        return lines[line - 1]
    return None


def _prepare_source(source: str, mode: Literal["eval", "exec"]) -> str:
    if not isinstance(source, str):
        raise TypeError(f"source must be str, not {type(source).__name__}")
    if mode not in ("eval", "exec"):
        raise ValueError(f"mode must be 'eval' or 'exec', not {mode!r}")
    if mode == "eval":
        # Expressions embedded in XML often carry surrounding whitespace/newlines,
        # which 'eval' mode would reject as an unexpected indent.
        source = source.strip()
        if not source:
            raise ScriptError("expression is empty")
    return source


@functools.lru_cache(maxsize=1024)
def _compile(source: str, mode: Literal["eval", "exec"]) -> _Compiled:
    """Compile ``source`` under the restricted policy; cached per (source, mode).

    Failures raise ScriptError and are not cached (lru_cache only stores returns).
    """
    try:
        # eval mode parses to an Expression, exec mode to a Module.
        tree = cast(ast.Expression | ast.Module, ast.parse(source, SCRIPT_FILENAME, mode))
    except SyntaxError as exc:  # includes IndentationError / TabError
        line = exc.lineno
        text = exc.text.rstrip("\n") if exc.text else _source_line(source, line)
        raise ScriptError(f"syntax error: {exc.msg}", line, text) from None
    except ValueError as exc:  # e.g. NUL bytes on some Python versions
        raise ScriptError(f"syntax error: {exc}") from None
    except (RecursionError, MemoryError):
        raise ScriptError("the code is too deeply nested or too large") from None

    needs_meter = _needs_meter(tree)  # before RestrictedPython rewrites the tree
    compile_func = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    try:
        result = compile_func(tree, filename=SCRIPT_FILENAME, policy=_DiagramPolicy)
    except SyntaxError as exc:  # e.g. 'return' outside function, found by compile()
        line = exc.lineno
        raise ScriptError(
            f"syntax error: {exc.msg}", line, _source_line(source, line)
        ) from None
    except (RecursionError, MemoryError):
        raise ScriptError("the code is too deeply nested or too large") from None

    errors = list(result.errors)
    if errors:
        match = _ERROR_RE.match(errors[0])
        if match:
            line = None if match.group(1) == "None" else int(match.group(1))
            message = match.group(2)
        else:  # pragma: no cover - RestrictedPython always uses the format above
            line, message = None, errors[0]
        message = message.rstrip(".")
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem(s))"
        raise ScriptError(message, line, _source_line(source, line))

    if result.code is None:  # pragma: no cover - no errors implies code
        raise ScriptError("the code could not be compiled")
    return _Compiled(code=result.code, used_names=frozenset(result.used_names), needs_meter=needs_meter)


# --------------------------------------------------------------------------
# Run-time guards
# --------------------------------------------------------------------------

_FORMAT_METHODS = frozenset({"format", "format_map"})
_FORMATTER_METHODS = frozenset({"format", "vformat", "get_field", "get_value"})
_DENIED_ATTRIBUTES = frozenset({"mro"})  # type.mro() leads to `object`


def _guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    """``_getattr_``: attribute reads (``a.b``) in diagram code."""
    if not isinstance(name, str):
        raise _AccessDenied("attribute names must be strings")
    if name.startswith("_"):
        raise _AccessDenied(f"access to attribute {name!r} is not allowed")
    if name in INSPECT_ATTRIBUTES or name in _DENIED_ATTRIBUTES:
        raise _AccessDenied(f"access to attribute {name!r} is not allowed")
    if name in _FORMAT_METHODS and (
        isinstance(obj, str) or (isinstance(obj, type) and issubclass(obj, str))
    ):
        # "{0.__class__}".format(x) would bypass the compile-time '_' check.
        raise _AccessDenied(
            f"str.{name}() is not allowed (it can reach private attributes); "
            "use an f-string or + instead"
        )
    if name in _FORMATTER_METHODS and (
        isinstance(obj, string.Formatter)
        or (isinstance(obj, type) and issubclass(obj, string.Formatter))
    ):
        raise _AccessDenied(f"string.Formatter.{name}() is not allowed")
    if isinstance(obj, types.ModuleType):
        raise _AccessDenied("access to module attributes is not allowed")
    return getattr(obj, name, *default)


def _guarded_getitem(obj: Any, key: Any) -> Any:
    """``_getitem_``: ``a[k]`` and ``a[i:j]`` reads; plain subscription."""
    return obj[key]


_WRITABLE_TYPES = (dict, list, set, bytearray)


def _guarded_write(obj: Any) -> Any:
    """``_write_``: target of ``a[k] = v``, ``del a[k]``, ``a.b = v``.

    Only the mutable plain containers may be written to (item assignment);
    attribute assignment on them fails naturally with AttributeError.
    """
    if isinstance(obj, _WRITABLE_TYPES):
        return obj
    raise _AccessDenied(f"objects of type {type(obj).__name__} cannot be modified")


_SEQUENCE_TYPES = (str, bytes, bytearray, list, tuple)

_INPLACE_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    "@=": operator.imatmul,
}

_BINARY_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "*": operator.mul, "**": operator.pow, "<<": operator.lshift, "%": operator.mod,
}

#: Seconds between two reads of the resident set size (one read costs ~10 us).
_MEMORY_CHECK_INTERVAL = 0.001
#: A guarded result at least this big (estimated bytes) makes the meter check memory first.
_BIG_RESULT_BYTES = 1 << 20
#: ``%`` conversions in a format string: their width and precision are checked.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")
#: str methods whose result can be much longer than their inputs.
_GROWING_STR_METHODS = frozenset({"replace", "join", "ljust", "rjust", "center", "zfill", "expandtabs",
                                  "translate"})
#: Attributes whose read goes through the meter (see ``_Meter.getattr``).
_METERED_ATTRIBUTES = _GROWING_STR_METHODS | {"extend", "to_bytes"}
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _resident_bytes() -> int | None:
    """The process's resident set size, or None where /proc is not available."""
    try:
        fd = os.open("/proc/self/statm", os.O_RDONLY)
    except OSError:
        return None
    try:
        return int(os.read(fd, 128).split()[1]) * _PAGE_SIZE
    finally:
        os.close(fd)


_NUMBERS = frozenset({int, float})
#: On two ints/floats these cannot produce a much wider number (floats overflow with an error).
_SAFE_NUMBER_OPERATORS = frozenset({"+", "%", "+=", "-=", "%=", "/=", "//=", ">>=", "&=", "|=", "^="})


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class _Meter:
    """The budgets of one evaluation, and the guards that enforce them.

    The clock starts at the first tick (or the first big guarded result):
    conditions without loops or calls never read a clock.
    """

    __slots__ = ("_cpu_deadline", "_cpu_start", "_deadline", "_rss_start", "_started", "budgets")

    def __init__(self, budgets: Budgets) -> None:
        self.budgets = budgets
        self._deadline = -math.inf  # next checkpoint (wall clock); the first tick starts the meter
        self._cpu_deadline = math.inf  # wall moment at which the CPU budget may be used up
        self._cpu_start = 0.0
        self._rss_start: int | None = None
        self._started = False

    # ------------------------------------------------------------ time and memory

    def tick(self, _now: Callable[[], float] = time.perf_counter) -> bool:
        """``_tick_()``: injected into every loop step and function call; always True."""
        if _now() > self._deadline:
            self._checkpoint()
        return True

    def _start(self) -> None:
        self._started = True
        self._cpu_start = time.thread_time()
        self._cpu_deadline = time.perf_counter() + self.budgets.cpu_seconds
        self._rss_start = _resident_bytes()

    def _checkpoint(self) -> None:
        """At most every millisecond of ticking: memory, and CPU time once it may be used up."""
        if not self._started:
            self._start()
        else:
            self.check_memory(0)
        now = time.perf_counter()
        if now >= self._cpu_deadline:
            # Wall time is cheap to read; CPU time decides (waiting for the GIL is not this code's fault).
            used = time.thread_time() - self._cpu_start
            budget = self.budgets.cpu_seconds
            if used >= budget:
                self._deadline = -math.inf  # every later tick stops again
                raise _Stop("cpu", f"CPU time budget exceeded: the code ran for more than {budget:g} s "
                                   f"of CPU time")
            self._cpu_deadline = now + (budget - used)
        self._deadline = min(self._cpu_deadline, now + _MEMORY_CHECK_INTERVAL)

    def check_memory(self, coming: int) -> None:
        """Stop when the resident set grew by more than the budget (``coming`` bytes about to be added)."""
        if not self._started:
            self._start()
        if self._rss_start is None:
            return
        now = _resident_bytes()
        if now is None:
            return
        budget = self.budgets.memory_bytes
        if now - self._rss_start + coming > budget:
            raise _Stop("memory", f"memory budget exceeded: the code would use more than "
                                  f"{budget // (1024 * 1024)} MB")

    # ------------------------------------------------------------ sizes

    def _length(self, length: int, per_element: int, what: str) -> None:
        limit = self.budgets.max_value_length
        if length > limit:
            raise _Stop("value size", f"value size budget exceeded: {what} would exceed {limit} elements")
        if length * per_element >= _BIG_RESULT_BYTES:
            self.check_memory(length * per_element)

    def _bits(self, bits: float, what: str) -> None:
        if bits > self.budgets.max_int_bits:
            raise _Stop("value size", f"value size budget exceeded: {what} would be too large a number "
                                      f"(more than {self.budgets.max_int_bits} bits)")

    def _check_operation(self, op: str, left: Any, right: Any) -> None:
        """Refuse ``left op right`` before computing it when the result would be too large."""
        what = f"result of {op}"
        if op in ("+", "+="):
            if isinstance(left, _SEQUENCE_TYPES) and hasattr(right, "__len__") and not isinstance(right, dict):
                self._length(len(left) + len(right), 1 if isinstance(left, str) else 8, what)
        elif op in ("*", "*="):
            if _is_int(left) and _is_int(right):
                self._bits(left.bit_length() + right.bit_length(), what)
                return
            seq, count = (left, right) if isinstance(left, _SEQUENCE_TYPES) else (right, left)
            if isinstance(seq, _SEQUENCE_TYPES) and _is_int(count) and count > 0:
                self._length(len(seq) * count, 1 if isinstance(seq, str) else 8, what)
        elif op in ("**", "**="):
            if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
                self._bits(math.log2(abs(left)) * right, what)
        elif op in ("<<", "<<="):
            if _is_int(left) and _is_int(right) and left != 0 and right > 0:
                self._bits(left.bit_length() + right, what)
        elif op in ("%", "%=") and isinstance(left, str):
            self._check_percent_format(left, right)

    def _check_percent_format(self, template: str, args: Any) -> None:
        limit = self.budgets.max_value_length
        for match in _PERCENT_SPEC.finditer(template):
            for group in match.groups():
                if group == "*":
                    values = args if isinstance(args, tuple) else (args,)
                    if any(_is_int(v) and abs(v) > limit for v in values):
                        raise _Stop("value size", f"value size budget exceeded: a % width above {limit}")
                elif group is not None and int(group) > limit:
                    raise _Stop("value size", f"value size budget exceeded: a % width above {limit}")

    # ------------------------------------------------------------ guards

    def binop(self, op: str, left: Any, right: Any) -> Any:
        """``_binop_``: ``a + b``, ``a * b``, ``a ** b``, ``a << b`` and ``a % b`` in diagram code."""
        if type(left) in _NUMBERS and type(right) in _NUMBERS and (  # the common case, kept cheap
                op in _SAFE_NUMBER_OPERATORS or type(left) is float or type(right) is float
                or (op == "*" and left.bit_length() + right.bit_length() <= self.budgets.max_int_bits)):
            return _BINARY_OPERATORS[op](left, right)
        self._check_operation(op, left, right)
        return _BINARY_OPERATORS[op](left, right)

    def inplacevar(self, op: str, left: Any, right: Any) -> Any:
        """``_inplacevar_``: ``n += 1`` is compiled to ``n = _inplacevar_("+=", n, 1)``."""
        try:
            func = _INPLACE_OPERATORS[op]
        except KeyError:
            raise _AccessDenied(f"operator {op} is not allowed") from None
        if not (type(left) in _NUMBERS and type(right) in _NUMBERS and (
                op in _SAFE_NUMBER_OPERATORS or type(left) is float or type(right) is float)):
            self._check_operation(op, left, right)
        return func(left, right)

    def format(self, value: Any, spec: str, conversion: int) -> str:
        """``_format_``: an f-string field with a format spec (its widths are checked)."""
        if conversion == ord("r"):
            value = repr(value)
        elif conversion == ord("s"):
            value = str(value)
        elif conversion == ord("a"):
            value = ascii(value)
        limit = self.budgets.max_value_length
        if any(int(digits) > limit for digits in _DIGITS.findall(spec)):
            raise _Stop("value size", f"value size budget exceeded: a format width above {limit}")
        return format(value, spec)

    def getattr(self, obj: Any, name: str, *default: Any) -> Any:
        """``_getattr_``: the checks of ``_guarded_getattr``; growing methods come back size-checked."""
        value = _guarded_getattr(obj, name, *default)
        if type(obj) is str and name in _GROWING_STR_METHODS:
            return functools.partial(self._str_method, obj, name)
        if type(obj) is list and name == "extend":
            return functools.partial(self._list_extend, obj)
        if type(obj) is int and name == "to_bytes":
            return functools.partial(self._int_to_bytes, obj)
        if obj is str and name in _GROWING_STR_METHODS:  # str.join(sep, items)
            return lambda text, *args, **kwargs: self._str_method(str(text), name, *args, **kwargs)
        if obj is list and name == "extend":
            return lambda items, other: self._list_extend(items, other)
        if obj is int and name == "to_bytes":
            return lambda number, *args, **kwargs: self._int_to_bytes(int(number), *args, **kwargs)
        return value

    def _str_method(self, text: str, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(text, name)
        what = f"str.{name}()"
        if name == "join":
            items: list[Any] = list(*args, **kwargs)
            size = sum(len(i) for i in items if isinstance(i, str)) + len(text) * max(len(items) - 1, 0)
            self._length(size, 1, what)
            return method(items)
        if name == "replace":
            bound = _replace_length(text, *args, **kwargs)
            if bound is not None:
                self._length(bound, 1, what)
        elif name in ("ljust", "rjust", "center", "zfill"):
            width = args[0] if args else kwargs.get("width")
            if _is_int(width):
                self._length(width, 1, what)
        elif name == "expandtabs":
            tabsize = args[0] if args else kwargs.get("tabsize", 8)
            if _is_int(tabsize):
                self._length(len(text) + text.count("\t") * max(tabsize, 0), 1, what)
        elif name == "translate" and args and isinstance(args[0], dict):
            longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
            self._length(len(text) * max(longest, 1), 1, what)
        return method(*args, **kwargs)

    def _list_extend(self, items: list, other: Any) -> None:
        if hasattr(other, "__len__"):
            self._length(len(items) + len(other), 8, "list.extend()")
        items.extend(other)

    def _int_to_bytes(self, number: int, *args: Any, **kwargs: Any) -> bytes:
        length = args[0] if args else kwargs.get("length", 1)
        if _is_int(length):
            self._length(length, 1, "int.to_bytes()")
        return number.to_bytes(*args, **kwargs)

    def guards(self) -> dict[str, Any]:
        return {"_tick_": self.tick, "_binop_": self.binop, "_inplacevar_": self.inplacevar,
                "_format_": self.format, "_getattr_": self.getattr}


def _replace_length(text: str, old: Any = None, new: Any = None, count: Any = -1) -> int | None:
    """Length of ``text.replace(old, new, count)``, computed without building it (None: not strings)."""
    if not (isinstance(old, str) and isinstance(new, str) and _is_int(count)):
        return None
    hits = text.count(old) if old else len(text) + 1
    if count >= 0:
        hits = min(hits, count)
    return len(text) + hits * (len(new) - len(old))


def _guarded_apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``_apply_``: calls written with ``*args``/``**kwargs``."""
    return func(*args, **kwargs)


class _PrintSink:
    """``_print_``: ``print()`` in a script is accepted and logged at DEBUG level."""

    def __init__(self, _getattr_: Any = None) -> None:
        self._parts: list[str] = []
        self._size = 0

    def write(self, text: str) -> None:
        if self._size < MAX_PRINT_CHARS:
            text = text[: MAX_PRINT_CHARS - self._size]
            self._parts.append(text)
            self._size += len(text)

    def __call__(self) -> str:  # the value of the name `printed`
        return "".join(self._parts)

    def _call_print(self, *objects: Any, sep: str | None = " ", end: str | None = "\n", **_: Any) -> None:
        sep = " " if sep is None else str(sep)
        end = "\n" if end is None else str(end)
        text = sep.join(str(o) for o in objects) + end
        self.write(text)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("script print: %s", text.rstrip("\n")[:MAX_PRINT_CHARS])


def _guarded_getiter(obj: Any) -> Iterator[Any]:
    """``_getiter_``: ``for`` loops and comprehensions.

    Lists are iterated over a snapshot, so ``for x in items: items.append(x)``
    ends instead of looping (and growing) forever.
    """
    if isinstance(obj, (list, bytearray)):
        return iter(obj.copy())
    return iter(obj)


def _safe_range(*args: int) -> range:
    """``range()`` capped at MAX_RANGE elements."""
    r = range(*args)
    try:
        size = len(r)
    except OverflowError:
        size = MAX_RANGE + 1
    if size > MAX_RANGE:
        raise _AccessDenied(f"range() is limited to {MAX_RANGE} elements")
    return r


_SAFE_BUILTIN_NAMES = (
    "abs", "all", "any", "ascii", "bin", "bool", "callable", "chr", "dict",
    "divmod", "enumerate", "filter", "float", "frozenset", "hex", "int",
    "isinstance", "len", "list", "map", "max", "min", "oct",
    "ord", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum",
    "tuple", "zip",
    # exceptions, so scripts can raise/catch meaningful errors
    "Exception", "ArithmeticError", "AssertionError", "AttributeError",
    "IndexError", "KeyError", "LookupError", "TypeError", "ValueError",
    "ZeroDivisionError",
)


def _build_builtins() -> dict[str, Any]:
    import builtins

    table: dict[str, Any] = {name: getattr(builtins, name) for name in _SAFE_BUILTIN_NAMES}
    table.update({"None": None, "True": True, "False": False, "range": _safe_range})
    return table


_SAFE_BUILTINS: Mapping[str, Any] = types.MappingProxyType(_build_builtins())

#: Builtins that exist in Python but are deliberately withheld; used only to
#: turn the resulting NameError into a clearer message.
_WITHHELD_BUILTINS = frozenset({
    "__import__", "open", "eval", "exec", "compile", "getattr", "setattr",
    "delattr", "hasattr", "globals", "locals", "vars", "dir", "type", "object",
    "input", "breakpoint", "help", "id", "hash", "memoryview", "bytes",
    "bytearray", "super", "classmethod", "staticmethod", "property", "exit",
    "quit", "issubclass", "format", "pow", "complex", "aiter", "anext",
    "iter", "next",  # iter(callable, sentinel) is an endless loop
})

_GUARDS: Mapping[str, Any] = types.MappingProxyType({
    "__builtins__": _SAFE_BUILTINS,
    "_getattr_": _guarded_getattr,
    "_getitem_": _guarded_getitem,
    "_getiter_": _guarded_getiter,
    "_write_": _guarded_write,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_apply_": _guarded_apply,
    "_print_": _PrintSink,
})

def _never_called(*_: Any) -> Any:  # pragma: no cover - only metered code calls these
    raise _AccessDenied("internal error: unmetered code reached a metered guard")


#: Stand-ins for the meter's guards in code that does not need a meter (so the names are always bound).
_UNMETERED_GUARDS: Mapping[str, Any] = types.MappingProxyType({
    "_tick_": _never_called, "_binop_": _never_called, "_inplacevar_": _never_called, "_format_": _never_called,
})

#: Global names owned by the sandbox; never taken from, nor returned as, variables.
_RESERVED_NAMES = frozenset(_GUARDS) | {"_print", "_tick_", "_binop_", "_inplacevar_", "_format_"}


# --------------------------------------------------------------------------
# Data handling
# --------------------------------------------------------------------------

_SCALAR_TYPES: tuple[type, ...] = (type(None), bool, int, float, str)


def _is_plain_data(value: Any, max_nodes: int = MAX_SEQUENCE_LENGTH) -> bool:
    """True for JSON-friendly data: scalars, list/tuple/dict of plain data, EXTRA_DATA_TYPES.

    Self-referencing structures are not plain data.  A value with more than
    ``max_nodes`` elements, counted as JSON would write them out (a list
    shared a million times counts a million times), raises ``_Stop``: it
    could not be stored.
    """
    budget = [max_nodes]

    def check(item: Any, ancestors: frozenset[int]) -> bool:
        if isinstance(item, (*_SCALAR_TYPES, *EXTRA_DATA_TYPES)):
            return True
        if id(item) in ancestors:
            return False
        if type(item) in (list, tuple, dict):
            budget[0] -= len(item)
            if budget[0] < 0:
                raise _Stop("value size", f"value size budget exceeded: a variable would exceed {max_nodes} elements")
        if type(item) in (list, tuple):
            inner = ancestors | {id(item)}
            return all(check(element, inner) for element in item)
        if type(item) is dict:
            inner = ancestors | {id(item)}
            return all(
                isinstance(key, _SCALAR_TYPES) and check(element, inner)
                for key, element in item.items()
            )
        return False

    try:
        return check(value, frozenset())
    except RecursionError:
        return False


def _copy_variables(context: Mapping[str, Any], names: Iterable[str] | None = None) -> dict[str, Any]:
    """Deep copy of the (selected) context variables; the caller's data is never shared.

    Values that cannot be deep-copied are passed through as they are.
    """
    selected = dict(context) if names is None else {name: context[name] for name in names if name in context}
    try:
        return copy.deepcopy(selected)
    except Exception:
        copied: dict[str, Any] = {}
        for key, value in selected.items():
            try:
                copied[key] = copy.deepcopy(value)
            except Exception:
                copied[key] = value
        return copied


def _failing_line(tb: types.TracebackType | None) -> int | None:
    """Line of the innermost frame of the traceback that belongs to diagram code."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == SCRIPT_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _runtime_error(exc: BaseException, source: str) -> ScriptError:
    line = _failing_line(exc.__traceback__)
    if isinstance(exc, _Stop):
        error: ScriptError = BudgetExceeded(exc.budget, exc.message, line, _source_line(source, line))
        error.__cause__ = exc
        return error
    if isinstance(exc, MemoryError):
        error = BudgetExceeded("memory", "memory budget exceeded: the code ran out of memory", line,
                               _source_line(source, line))
        error.__cause__ = exc
        return error
    if isinstance(exc, _AccessDenied):
        message = str(exc)
    elif isinstance(exc, NameError):
        message = str(exc)
        name = getattr(exc, "name", None)
        if name in _WITHHELD_BUILTINS:
            message += f" ({name!r} is not available to diagram scripts)"
    elif isinstance(exc, RecursionError):
        message = "RecursionError: maximum recursion depth exceeded"
    else:
        detail = str(exc)
        message = type(exc).__name__ + (f": {detail}" if detail else "")
    error = ScriptError(message, line, _source_line(source, line))
    error.__cause__ = exc
    return error


# --------------------------------------------------------------------------
# Public evaluator
# --------------------------------------------------------------------------


class RestrictedEvaluator:
    """Evaluates diagram expressions and runs diagram scripts under RestrictedPython.

    ``helpers`` are extra functions visible to the code by name (for example
    ``{"now": clock.now}``).  When a variable in the context has the same name
    as a helper, the variable wins inside the code.
    """

    def __init__(self, helpers: Mapping[str, Callable[..., Any]] | None = None,
                 budgets: Budgets | None = None) -> None:
        self.budgets = budgets or Budgets()
        checked: dict[str, Callable[..., Any]] = {}
        for name, func in (helpers or {}).items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"helper name {name!r} is not a valid identifier")
            if name.startswith("_"):
                raise ValueError(f"helper name {name!r} must not start with '_'")
            if not callable(func):
                raise TypeError(f"helper {name!r} must be callable, got {type(func).__name__}")
            checked[name] = func
        self._helpers: Mapping[str, Callable[..., Any]] = types.MappingProxyType(checked)

    @property
    def helpers(self) -> Mapping[str, Callable[..., Any]]:
        return self._helpers

    def check(self, source: str, mode: Literal["eval", "exec"]) -> None:
        """Compile-only check (diagram upload): raise ScriptError for syntax errors and forbidden constructs."""
        _compile(_prepare_source(source, mode), mode)

    def evaluate(self, expression: str, context: Mapping[str, Any]) -> Any:
        """Evaluate one expression (gateway condition, timer expression) against ``context``.

        ``context`` is not mutated: the variables the expression reads are deep-copied.
        """
        source = _prepare_source(expression, "eval")
        compiled = _compile(source, "eval")
        namespace = self._namespace(_copy_variables(context, compiled.used_names), compiled.needs_meter)
        namespace["_print"] = _PrintSink()  # print() inside an expression
        try:
            return eval(compiled.code, namespace)
        except (Exception, _Stop) as exc:
            raise _runtime_error(exc, source) from exc

    def execute(self, script: str, context: Mapping[str, Any]) -> dict[str, Any]:
        """Run a script task's code and return the complete new set of variables.

        The result holds the context's variables plus those the script assigned or
        changed (``del x`` removes ``x``), without helpers, builtins, sandbox
        internals, and values that are not plain data (functions, modules,
        classes, sets...); context values of other types are kept only when the
        script leaves them untouched.  ``context`` itself is never mutated.
        """
        source = _prepare_source(script, "exec")
        compiled = _compile(source, "exec")
        variables = _copy_variables(context)
        namespace = self._namespace(variables, compiled.needs_meter)
        try:
            exec(compiled.code, namespace)
        except (Exception, _Stop) as exc:
            raise _runtime_error(exc, source) from exc

        result: dict[str, Any] = {}
        max_nodes = self.budgets.max_value_length
        for name, value in namespace.items():
            if name in _RESERVED_NAMES:
                continue
            if name in self._helpers and value is self._helpers[name]:
                continue
            came_from_context = name in variables and value is variables[name]
            try:
                keep = came_from_context or _is_plain_data(value, max_nodes)
            except _Stop as exc:
                raise BudgetExceeded(exc.budget, f"{exc.message} ({name})") from None
            if keep:
                result[name] = value
        for name in _RESERVED_NAMES & variables.keys():
            # context keys that clash with sandbox internals pass through unchanged
            result[name] = variables[name]
        return result

    def _namespace(self, variables: Mapping[str, Any], needs_meter: bool = True) -> dict[str, Any]:
        namespace: dict[str, Any] = dict(self._helpers)
        namespace.update(variables)  # data shadows helpers of the same name
        namespace.update(_GUARDS)  # sandbox internals always win
        if needs_meter:
            namespace.update(_Meter(self.budgets).guards())  # a fresh meter: budgets are per evaluation
        else:  # code that cannot loop, call or grow a value: the plain guards are enough
            namespace.update(_UNMETERED_GUARDS)
        return namespace
