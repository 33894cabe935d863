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
   snapshot, cap ``range()`` and cap the size of results of the augmented
   operators ``*=``, ``+=``, ``**=``, ``<<=``.

Known limits (by design, documented rather than solved here)
------------------------------------------------------------
* CPU: running code is **never interrupted**; there are no threads, signals
  or timeouts here.  Endless loops are hard to write (no ``while``, no
  ``iter(f, sentinel)``, capped ``range()``, list snapshots, Python's
  recursion limit), but a long computation is not: nested ``for`` loops over
  big ranges or ``10 ** 10**8`` run to completion and block the worker.
* Memory: plain binary operators are not routed through guards by
  RestrictedPython, so ``"a" * 10**10``, ``[0] * 10**10``, repeated
  ``x = x + x`` or ``"x".ljust(10**10)`` can exhaust memory.  Limiting these
  needs an extra AST transform or running scripts in a resource-limited
  worker process (the only real answer to both limits).
* Anything a *helper* function does is trusted; only expose helpers that are
  safe to call with arbitrary arguments, and do not return live server
  objects from them.

Public API: :class:`ScriptError` and :class:`RestrictedEvaluator`.
"""

from __future__ import annotations

import ast
import copy
import functools
import logging
import operator
import re
import string
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
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

__all__ = ["RestrictedEvaluator", "ScriptError"]

logger = logging.getLogger(__name__)

#: Filename given to compiled diagram code; used to find the failing line.
SCRIPT_FILENAME = "<script>"

#: Largest ``range()`` a script may create.
MAX_RANGE = 1_000_000
#: Largest str/list/tuple an augmented ``+=``/``*=`` may produce.
MAX_SEQUENCE_LENGTH = 1_000_000
#: Largest int (in bits) an augmented ``**=``/``<<=`` may produce.
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
        # Cannot be interrupted once running; a bounded `for` loop can do the job.
        self.error(
            node,
            "while loops are not allowed; use a for loop over a list or range()",
        )
        return node


@dataclass(frozen=True)
class _Compiled:
    code: types.CodeType
    used_names: frozenset[str]  # names the code reads (used to copy only what's needed)


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
        # One literal mode per call, so the tree's type is known (Expression or Module).
        tree = (ast.parse(source, SCRIPT_FILENAME, "eval") if mode == "eval"
                else ast.parse(source, SCRIPT_FILENAME, "exec"))
    except SyntaxError as exc:  # includes IndentationError / TabError
        line = exc.lineno
        text = exc.text.rstrip("\n") if exc.text else _source_line(source, line)
        raise ScriptError(f"syntax error: {exc.msg}", line, text) from None
    except ValueError as exc:  # e.g. NUL bytes on some Python versions
        raise ScriptError(f"syntax error: {exc}") from None
    except (RecursionError, MemoryError):
        raise ScriptError("the code is too deeply nested or too large") from None

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
    return _Compiled(code=result.code, used_names=frozenset(result.used_names))


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


def _check_size(op: str, left: Any, right: Any) -> None:
    """Refuse augmented operations whose result would be absurdly large."""
    if op == "*=":
        seq, count = (left, right) if isinstance(left, _SEQUENCE_TYPES) else (right, left)
        if (
            isinstance(seq, _SEQUENCE_TYPES)
            and isinstance(count, int)
            and len(seq) * count > MAX_SEQUENCE_LENGTH
        ):
            raise _AccessDenied(
                f"result of {op} would exceed {MAX_SEQUENCE_LENGTH} elements"
            )
    elif op == "+=":
        if (
            isinstance(left, _SEQUENCE_TYPES)
            and isinstance(right, Iterable)
            and isinstance(right, Sized)
            and len(left) + len(right) > MAX_SEQUENCE_LENGTH
        ):
            raise _AccessDenied(
                f"result of {op} would exceed {MAX_SEQUENCE_LENGTH} elements"
            )
    elif op == "**=":
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and abs(left) > 1
            and left.bit_length() * right > MAX_INT_BITS
        ):
            raise _AccessDenied(f"result of {op} would be too large a number")
    elif op == "<<=" and (
        isinstance(left, int)
        and isinstance(right, int)
        and left != 0
        and left.bit_length() + right > MAX_INT_BITS
    ):
        raise _AccessDenied(f"result of {op} would be too large a number")


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


def _guarded_inplacevar(op: str, left: Any, right: Any) -> Any:
    """``_inplacevar_``: ``n += 1`` is compiled to ``n = _inplacevar_("+=", n, 1)``."""
    try:
        func = _INPLACE_OPERATORS[op]
    except KeyError:
        raise _AccessDenied(f"operator {op} is not allowed") from None
    _check_size(op, left, right)
    return func(left, right)


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
    "_inplacevar_": _guarded_inplacevar,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_apply_": _guarded_apply,
    "_print_": _PrintSink,
})

#: Global names owned by the sandbox; never taken from, nor returned as, variables.
_RESERVED_NAMES = frozenset(_GUARDS) | {"_print"}


# --------------------------------------------------------------------------
# Data handling
# --------------------------------------------------------------------------

_SCALAR_TYPES: tuple[type, ...] = (type(None), bool, int, float, str)


def _is_plain_data(value: Any) -> bool:
    """True for JSON-friendly data: scalars, list/tuple/dict of plain data, EXTRA_DATA_TYPES.

    Self-referencing structures are not plain data.
    """

    def check(item: Any, ancestors: frozenset[int]) -> bool:
        if isinstance(item, (_SCALAR_TYPES, EXTRA_DATA_TYPES)):
            return True
        if id(item) in ancestors:
            return False
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


def _runtime_error(exc: Exception, source: str) -> ScriptError:
    line = _failing_line(exc.__traceback__)
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

    def __init__(self, helpers: Mapping[str, Callable[..., Any]] | None = None) -> None:
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
        namespace = self._namespace(_copy_variables(context, compiled.used_names))
        namespace["_print"] = _PrintSink()  # print() inside an expression
        try:
            return eval(compiled.code, namespace)  # a RestrictedPython code object
        except Exception as exc:
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
        namespace = self._namespace(variables)
        try:
            exec(compiled.code, namespace)  # a RestrictedPython code object
        except Exception as exc:
            raise _runtime_error(exc, source) from exc

        result: dict[str, Any] = {}
        for name, value in namespace.items():
            if name in _RESERVED_NAMES:
                continue
            if name in self._helpers and value is self._helpers[name]:
                continue
            came_from_context = name in variables and value is variables[name]
            if came_from_context or _is_plain_data(value):
                result[name] = value
        for name in _RESERVED_NAMES & variables.keys():
            # context keys that clash with sandbox internals pass through unchanged
            result[name] = variables[name]
        return result

    def _namespace(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        namespace: dict[str, Any] = dict(self._helpers)
        namespace.update(variables)  # data shadows helpers of the same name
        namespace.update(_GUARDS)  # sandbox internals always win
        return namespace
