"""CloudWatch metric math: a parser of the expression language the canary alarms use (IF, FILL, ABS, CEIL,
FLOOR, + - * / ^, comparisons, AND/OR/NOT) and its evaluation over one period's values."""

from __future__ import annotations

import math
import operator
import re
from typing import Any, Callable

from kanaria_tools.rehearsal.alarms.errors import AlarmDefinitionError

_TOKEN = re.compile(r"\s*(?:(\d+\.\d*|\.\d+|\d+)|([A-Za-z_][A-Za-z0-9_]*)|(>=|<=|==|!=|&&|\|\||[-+*/^(),<>!]))")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            if text[position:].strip() == "":
                break
            raise AlarmDefinitionError(f"cannot parse metric math {text!r} at {text[position:]!r}", field="Expression")
        number, name, op = match.groups()
        tokens.append(("num", number) if number else ("name", name) if name else ("op", op))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over metric math: or > and > not > comparison > additive > multiplicative > unary minus
    > power."""

    FUNCTIONS = {"IF", "FILL", "ABS", "CEIL", "FLOOR"}

    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next_is(self, *values: str, upper: bool = False) -> bool:
        """Whether the next token is one of `values` (compared in upper case when `upper`)."""
        token = self.peek()
        if token is None:
            return False
        return (token[1].upper() if upper else token[1]) in values

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1].upper() != value):
            raise AlarmDefinitionError(f"metric math {self.text!r}: expected {value or 'a value'}", field="Expression")
        self.i += 1
        return token

    def parse(self) -> Any:
        node = self.logical_or()
        extra = self.peek()
        if extra is not None:
            raise AlarmDefinitionError(f"metric math {self.text!r}: unexpected {extra[1]!r}", field="Expression")
        return node

    def logical_or(self) -> Any:
        node = self.logical_and()
        while self.next_is("OR", "||", upper=True):
            self.take()
            node = ("or", node, self.logical_and())
        return node

    def logical_and(self) -> Any:
        node = self.logical_not()
        while self.next_is("AND", "&&", upper=True):
            self.take()
            node = ("and", node, self.logical_not())
        return node

    def logical_not(self) -> Any:
        if self.next_is("NOT", "!", upper=True):
            self.take()
            return ("not", self.logical_not())
        return self.comparison()

    def comparison(self) -> Any:
        node = self.additive()
        while self.next_is(">", "<", ">=", "<=", "==", "!="):
            op = self.take()[1]
            node = ("cmp", op, node, self.additive())
        return node

    def additive(self) -> Any:
        node = self.multiplicative()
        while self.next_is("+", "-"):
            op = self.take()[1]
            node = ("bin", op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Any:
        node = self.unary()
        while self.next_is("*", "/"):
            op = self.take()[1]
            node = ("bin", op, node, self.unary())
        return node

    def unary(self) -> Any:
        if self.next_is("-"):
            self.take()
            return ("neg", self.unary())
        return self.power()

    def power(self) -> Any:
        node = self.atom()
        if self.next_is("^"):
            self.take()
            node = ("bin", "^", node, self.unary())
        return node

    def atom(self) -> Any:
        kind, value = self.take()
        if kind == "num":
            return ("num", float(value))
        if kind == "op" and value == "(":
            node = self.logical_or()
            self.take(")")
            return node
        if kind == "name":
            return self.call(value) if self.next_is("(") else ("id", value)
        raise AlarmDefinitionError(f"metric math {self.text!r}: unexpected {value!r}", field="Expression")

    def call(self, name: str) -> Any:
        function = name.upper()
        if function not in self.FUNCTIONS:
            raise AlarmDefinitionError(
                f"metric math function {name} is not evaluated by the rehearsal "
                f"(supported: {', '.join(sorted(self.FUNCTIONS))})",
                field="Expression",
            )
        self.take("(")
        args = [self.logical_or()]
        while self.next_is(","):
            self.take()
            if function == "FILL" and self.next_is("REPEAT", "LINEAR", upper=True):
                raise AlarmDefinitionError(
                    "FILL with REPEAT/LINEAR is not evaluated by the rehearsal", field="Expression"
                )
            args.append(self.logical_or())
        self.take(")")
        return ("call", function, args)


def parse_expression(text: str) -> Any:
    """AST of a metric math expression (AlarmDefinitionError on anything unsupported)."""
    return _Parser(text).parse()


Values = dict[str, float | None]

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_ARITHMETIC: dict[str, Callable[[float, float], float | None]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": lambda left, right: None if right == 0 else left / right,  # CloudWatch drops the datapoint on x / 0
    "^": operator.pow,
}
_ROUNDING: dict[str, Callable[[float], float]] = {"ABS": abs, "CEIL": math.ceil, "FLOOR": math.floor}


def _both(node: Any, values: Values, first: int) -> tuple[float, float] | None:
    """The operands node[first] and node[first + 1], None when either is missing."""
    left, right = evaluate_expression(node[first], values), evaluate_expression(node[first + 1], values)
    return None if left is None or right is None else (left, right)


def _id(node: Any, values: Values) -> float | None:
    if node[1] not in values:
        raise AlarmDefinitionError(f"metric math refers to unknown id {node[1]!r}", field="Expression")
    return values[node[1]]


def _neg(node: Any, values: Values) -> float | None:
    value = evaluate_expression(node[1], values)
    return None if value is None else -value


def _not(node: Any, values: Values) -> float | None:
    value = evaluate_expression(node[1], values)
    return None if value is None else float(not value)


def _logical(node: Any, values: Values) -> float | None:
    operands = _both(node, values, 1)
    if operands is None:
        return None
    left, right = operands
    return float(bool(left) and bool(right)) if node[0] == "and" else float(bool(left) or bool(right))


def _compare(node: Any, values: Values) -> float | None:
    operands = _both(node, values, 2)
    return None if operands is None else float(_COMPARISONS[node[1]](*operands))


def _arithmetic(node: Any, values: Values) -> float | None:
    operands = _both(node, values, 2)
    return None if operands is None else _ARITHMETIC.get(node[1], operator.pow)(*operands)


def _call(node: Any, values: Values) -> float | None:
    function, args = node[1], node[2]
    if function == "IF":
        condition = evaluate_expression(args[0], values)
        if condition is None:
            return None
        if condition:
            return evaluate_expression(args[1], values)
        return evaluate_expression(args[2], values) if len(args) > 2 else None
    value = evaluate_expression(args[0], values)
    if function == "FILL":
        return evaluate_expression(args[1], values) if value is None else value
    return None if value is None else _ROUNDING[function](value)


_EVALUATORS: dict[str, Callable[[Any, Values], float | None]] = {
    "num": lambda node, values: node[1],
    "id": _id,
    "neg": _neg,
    "not": _not,
    "and": _logical,
    "or": _logical,
    "cmp": _compare,
    "bin": _arithmetic,
    "call": _call,
}


def evaluate_expression(node: Any, values: Values) -> float | None:
    """One period's value; None is a missing datapoint (it propagates, FILL replaces it)."""
    evaluate = _EVALUATORS.get(node[0])
    if evaluate is None:
        raise AlarmDefinitionError(f"cannot evaluate {node!r}", field="Expression")
    return evaluate(node, values)
