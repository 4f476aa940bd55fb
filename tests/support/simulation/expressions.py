"""DynamoDB condition and update expressions, evaluated on an item held in memory (Python values as the boto3
resource sees them: str, Decimal, bool, None, list, dict, set).

Only what a rollouts-table adapter writes is supported (top-level attributes; comparisons, AND/OR/NOT, parentheses,
attribute_exists/attribute_not_exists/begins_with; SET with +/- and if_not_exists, REMOVE, ADD); anything else
raises NotImplementedError so the fake never guesses. tests/simulation/test_fakes_vs_moto.py pins the semantics
against moto."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Mapping

_TOKEN = re.compile(r"\s*(<>|<=|>=|[=<>(),+\-]|#\w+|:\w+|[A-Za-z_][\w.\[\]]*)")
_KEYWORDS = {"AND", "OR", "NOT", "SET", "REMOVE", "ADD", "DELETE", "BETWEEN", "IN"}
_MISSING = object()


def tokens(text: str) -> list[str]:
    """The expression's tokens (ValueError on anything the grammar below does not know)."""
    out, at = [], 0
    text = text.strip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise ValueError(f"cannot tokenize {text[at:]!r}")
        out.append(match.group(1))
        at = match.end()
    return out


class _Parser:
    def __init__(self, text: str, names: Mapping[str, str] | None, values: Mapping[str, Any] | None):
        self.tokens = tokens(text)
        self.at = 0
        self.names = dict(names or {})
        self.values = dict(values or {})

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.upper() != expected):
            raise ValueError(f"expected {expected!r} at {token!r} in {' '.join(self.tokens)}")
        self.at += 1
        return token

    def name(self, token: str) -> str:
        if token.startswith("#"):
            return self.names[token]
        if token.startswith(":") or token.upper() in _KEYWORDS:
            raise ValueError(f"{token!r} is not an attribute name")
        if "." in token or "[" in token:
            raise NotImplementedError(f"nested attribute paths ({token}) are not supported by the fake")
        return token


def _comparable(left: Any, right: Any) -> bool:
    numbers = (Decimal, int)
    if isinstance(left, numbers) and isinstance(right, numbers):
        return True
    return type(left) is type(right) and isinstance(left, (str, bytes))


def evaluate_condition(
    text: str, item: Mapping[str, Any] | None, names: Mapping[str, str] | None, values: Mapping[str, Any] | None
) -> bool:
    """True when the condition holds on `item` (None: the item does not exist)."""
    parser = _Parser(text, names, values)
    result = _or(parser, item or {})
    if parser.peek() is not None:
        raise ValueError(f"trailing tokens in condition {text!r}")
    return result


def _or(p: _Parser, item: Mapping[str, Any]) -> bool:
    result = _and(p, item)
    while p.peek() is not None and p.peek().upper() == "OR":
        p.take()
        right = _and(p, item)
        result = result or right
    return result


def _and(p: _Parser, item: Mapping[str, Any]) -> bool:
    result = _not(p, item)
    while p.peek() is not None and p.peek().upper() == "AND":
        p.take()
        right = _not(p, item)
        result = result and right
    return result


def _not(p: _Parser, item: Mapping[str, Any]) -> bool:
    if p.peek() is not None and p.peek().upper() == "NOT":
        p.take()
        return not _not(p, item)
    return _primary(p, item)


def _operand(p: _Parser, item: Mapping[str, Any]) -> Any:
    token = p.take()
    if token.startswith(":"):
        return p.values[token]
    return item.get(p.name(token), _MISSING)


def _primary(p: _Parser, item: Mapping[str, Any]) -> bool:
    token = p.peek()
    if token == "(":
        p.take()
        result = _or(p, item)
        p.take(")")
        return result
    if token in {"attribute_exists", "attribute_not_exists", "begins_with"}:
        p.take()
        p.take("(")
        name = p.name(p.take())
        if token == "begins_with":
            p.take(",")
            prefix = _operand(p, item)
            p.take(")")
            value = item.get(name, _MISSING)
            return isinstance(value, str) and isinstance(prefix, str) and value.startswith(prefix)
        p.take(")")
        return (name in item) == (token == "attribute_exists")
    left = _operand(p, item)
    operator = p.take()
    right = _operand(p, item)
    return _compare(left, operator, right)


def _compare(left: Any, operator: str, right: Any) -> bool:
    if left is _MISSING or right is _MISSING:
        return operator == "<>"  # DynamoDB: a missing attribute is "not equal" to any value, and nothing else
    if operator == "=":
        return bool(left == right) and (_comparable(left, right) or type(left) is type(right))
    if operator == "<>":
        return not (left == right and (_comparable(left, right) or type(left) is type(right)))
    if not _comparable(left, right):
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[operator]


def apply_update(
    text: str, item: dict[str, Any], names: Mapping[str, str] | None, values: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The item after the update expression (a new dict; `item` is not changed)."""
    p = _Parser(text, names, values)
    new = dict(item)
    while p.peek() is not None:
        clause = p.take().upper()
        if clause == "SET":
            _set_clause(p, item, new)
        elif clause == "REMOVE":
            while True:
                new.pop(p.name(p.take()), None)
                if p.peek() != ",":
                    break
                p.take(",")
        elif clause == "ADD":
            while True:
                name = p.name(p.take())
                value = p.values[p.take()]
                current = new.get(name)
                if isinstance(value, set):
                    new[name] = set(current or set()) | value
                else:
                    new[name] = (current if current is not None else Decimal(0)) + value
                if p.peek() != ",":
                    break
                p.take(",")
        else:
            raise NotImplementedError(f"update clause {clause} is not supported by the fake")
    return new


def _set_clause(p: _Parser, old: Mapping[str, Any], new: dict[str, Any]) -> None:
    while True:
        name = p.name(p.take())
        p.take("=")
        value = _set_value(p, old)
        if p.peek() in {"+", "-"}:
            operator = p.take()
            other = _set_value(p, old)
            value = value + other if operator == "+" else value - other
        new[name] = value
        if p.peek() != ",":
            return
        p.take(",")


def _set_value(p: _Parser, old: Mapping[str, Any]) -> Any:
    token = p.take()
    if token == "if_not_exists":
        p.take("(")
        name = p.name(p.take())
        p.take(",")
        default = _set_value(p, old)
        p.take(")")
        return old.get(name, default)
    if token.startswith(":"):
        return p.values[token]
    name = p.name(token)
    if name not in old:
        raise ValueError(f"The provided expression refers to an attribute that does not exist in the item: {name}")
    return old[name]
