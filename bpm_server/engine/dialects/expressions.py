"""Translating JUEL (Camunda 7 ``${...}``) and FEEL (Camunda 8 ``=...``) expressions to
the Python our sandbox evaluates.

Only the part of each language whose meaning is the same in Python is
translated: literals, variables and property paths, comparisons, arithmetic,
``and``/``or``/``not``, ``empty`` and the conditional operator. Anything else
(method calls, beans, ``execution``, FEEL functions other than ``not()``) raises
``Untranslatable`` naming what could not be read, so the upload can refuse the
element instead of the instance failing later.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar


class Untranslatable(Exception):
    """An expression whose meaning we cannot carry over; the message says which part."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "num", "str", "name", "op", "end"
    text: str


_TOKEN = re.compile(r"""\s*(?:
    (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?:.()\[\],=])
)""", re.VERBOSE)

# Context objects of the Camunda engine: there is nothing like them in our data.
_CAMUNDA_CONTEXT = {"execution", "task", "authenticatedUserId", "variables", "externalTask", "connector",
                    "dateTime", "currentUser", "currentUserGroups"}


def _tokens(source: str) -> list[_Token]:
    tokens, position = [], 0
    source = source.rstrip()
    while position < len(source):
        match = _TOKEN.match(source, position)
        if not match or match.end() == position:
            raise Untranslatable(f"cannot read the expression from {source[position:].strip()[:30]!r}")
        position = match.end()
        kind = match.lastgroup or "op"
        tokens.append(_Token(kind, match.group(kind)))
    tokens.append(_Token("end", ""))
    return tokens


_Table = dict[str, tuple[int, str]]
_Words = dict[str, str]


class _Translator:
    """A small precedence-climbing parser that writes Python as it reads."""

    # operator -> (precedence, python)
    BINARY: ClassVar[dict[str, tuple[int, str]]]
    WORDS: ClassVar[dict[str, str]]  # word operators (and, eq, ...) mapped onto the symbolic ones
    LANGUAGE = ""

    def __init__(self, source: str) -> None:
        self.tokens = _tokens(source)
        self.index = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def _op(self, token: _Token) -> str | None:
        if token.kind == "op":
            return token.text
        if token.kind == "name" and token.text in self.WORDS:
            return self.WORDS[token.text]
        return None

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        if self._op(self.token) != text:
            found = self.token.text or "the end"
            raise Untranslatable(f"expected {text!r} but found {found!r}")
        self.advance()

    def translate(self) -> str:
        result = self.expression(0)
        if self.token.kind != "end":
            raise Untranslatable(f"unexpected {self.token.text!r}")
        return result

    def expression(self, minimum: int) -> str:
        left = self.unary()
        while True:
            op = self._op(self.token)
            if op == "?" and minimum <= 1:
                self.advance()
                then = self.expression(0)
                self.expect(":")
                otherwise = self.expression(1)
                left = f"({then} if {left} else {otherwise})"
                continue
            if op not in self.BINARY:
                return left
            precedence, python = self.BINARY[op]
            if precedence < minimum:
                return left
            self.advance()
            right = self.expression(precedence + 1)
            left = f"({left} {python} {right})"

    def unary(self) -> str:
        op = self._op(self.token)
        if op == "-":
            self.advance()
            return f"(-{self.unary()})"
        return self.postfix(self.primary())

    def postfix(self, value: str) -> str:
        while True:
            op = self._op(self.token)
            if op == ".":
                self.advance()
                name = self.advance()
                if name.kind != "name":
                    raise Untranslatable(f"expected a property name after '.' but found {name.text!r}")
                if self._op(self.token) == "(" and name.text == "equals" and self.LANGUAGE == "JUEL":
                    # Java's a.equals(b), common in Camunda examples, means a == b for the values diagrams hold.
                    self.advance()
                    other = self.expression(0)
                    self.expect(")")
                    value = f"({value} == {other})"
                    continue
                if self._op(self.token) == "(":
                    raise Untranslatable(f"method call {name.text}(...) cannot run here")
                value = f"{value}[{name.text!r}]"
            elif op == "[":
                self.advance()
                key = self.expression(0)
                self.expect("]")
                value = f"{value}[{key}]"
            else:
                return value

    def primary(self) -> str:
        token = self.advance()
        if token.kind == "num":
            return token.text
        if token.kind == "str":
            return repr(_unquote(token.text))
        if self._op(token) == "(":
            inner = self.expression(0)
            self.expect(")")
            return f"({inner})"
        if token.kind == "name":
            return self.name(token.text)
        raise Untranslatable(f"unexpected {token.text or 'end of expression'!r}")

    def name(self, name: str) -> str:
        constants = {"true": "True", "false": "False", "null": "None"}
        if name in constants:
            return constants[name]
        if name in _CAMUNDA_CONTEXT:
            raise Untranslatable(f"{name!r} is an object of the Camunda engine; it does not exist here")
        if self._op(self.token) == "(":
            raise Untranslatable(f"function call {name}(...) cannot run here")
        if not name.isidentifier() or name.startswith("_"):
            raise Untranslatable(f"{name!r} cannot be a variable name here")
        return name


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _empty(value: str) -> str:
    return f"({value} is None or {value} == '' or {value} == [] or {value} == {{}})"


class _Juel(_Translator):
    LANGUAGE = "JUEL"
    BINARY: ClassVar[_Table] = {
        "||": (2, "or"), "&&": (3, "and"), "==": (5, "=="), "!=": (5, "!="), "<": (6, "<"), ">": (6, ">"),
        "<=": (6, "<="), ">=": (6, ">="), "+": (7, "+"), "-": (7, "-"), "*": (8, "*"), "/": (8, "/"), "%": (8, "%")}
    WORDS: ClassVar[_Words] = {"and": "&&", "or": "||", "eq": "==", "ne": "!=", "lt": "<", "gt": ">", "le": "<=",
                               "ge": ">=", "div": "/", "mod": "%", "not": "!"}

    def unary(self) -> str:
        if self._op(self.token) == "!":
            self.advance()
            return f"(not {self.unary()})"
        if self.token.kind == "name" and self.token.text == "empty":
            self.advance()
            return _empty(self.unary())
        return super().unary()


class _Feel(_Translator):
    LANGUAGE = "FEEL"
    BINARY: ClassVar[_Table] = {
        "or": (2, "or"), "and": (3, "and"), "=": (5, "=="), "!=": (5, "!="), "<": (6, "<"), ">": (6, ">"),
        "<=": (6, "<="), ">=": (6, ">="), "+": (7, "+"), "-": (7, "-"), "*": (8, "*"), "/": (8, "/")}
    WORDS: ClassVar[_Words] = {"and": "and", "or": "or"}

    def name(self, name: str) -> str:
        if name == "not" and self._op(self.token) == "(":
            self.advance()
            inner = self.expression(0)
            self.expect(")")
            return f"(not {inner})"
        if name == "is" and self._op(self.token) == "(":
            raise Untranslatable("function call is(...) cannot run here")
        return super().name(name)


_JUEL_WHOLE = re.compile(r"^\s*[$#]\{(?P<body>.*)\}\s*$", re.DOTALL)
_JUEL_PART = re.compile(r"[$#]\{(.*?)\}", re.DOTALL)


def is_juel(text: str) -> bool:
    return bool(_JUEL_PART.search(text or ""))


def is_feel(text: str) -> bool:
    return (text or "").lstrip().startswith("=")


def juel_to_python(text: str) -> str:
    """``${a > 1000 && b == 'x'}`` -> ``((a > 1000) and (b == 'x'))``; text around ``${}`` is joined as strings."""
    whole = _JUEL_WHOLE.match(text)
    if whole and "${" not in whole.group("body") and "#{" not in whole.group("body"):
        body = whole.group("body").strip()
        if not body:
            raise Untranslatable("the expression is empty")
        return _Juel(body).translate()
    parts: list[str] = []
    position = 0
    for match in _JUEL_PART.finditer(text):
        if match.start() > position:
            parts.append(repr(text[position:match.start()]))
        parts.append(f"str({_Juel(match.group(1)).translate()})")
        position = match.end()
    if position < len(text):
        parts.append(repr(text[position:]))
    return " + ".join(parts) if parts else repr(text)


def feel_to_python(text: str) -> str:
    """``=amount > 1000 and not(vip)`` -> ``((amount > 1000) and (not vip))``."""
    body = text.lstrip()[1:].strip() if is_feel(text) else text.strip()
    if not body:
        raise Untranslatable("the expression is empty")
    return _Feel(body).translate()


def value_to_python(text: str) -> str:
    """A Camunda value that may be a literal string, a JUEL or a FEEL expression, as Python."""
    if is_feel(text):
        return feel_to_python(text)
    if is_juel(text):
        return juel_to_python(text)
    return repr(text)
