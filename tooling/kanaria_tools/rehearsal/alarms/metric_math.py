"""CloudWatch metric math: a parser of the expression language the canary alarms use (IF, FILL, ABS, CEIL,
FLOOR, + - * / ^, comparisons, AND/OR/NOT) and its evaluation over one period's values."""

from __future__ import annotations

import math
import re
from typing import Any

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

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1].upper() != value):
            raise AlarmDefinitionError(f"metric math {self.text!r}: expected {value or 'a value'}", field="Expression")
        self.i += 1
        return token

    def parse(self) -> Any:
        node = self.logical_or()
        if self.peek() is not None:
            raise AlarmDefinitionError(f"metric math {self.text!r}: unexpected {self.peek()[1]!r}", field="Expression")
        return node

    def logical_or(self) -> Any:
        node = self.logical_and()
        while self.peek() and self.peek()[1].upper() in {"OR", "||"}:
            self.take()
            node = ("or", node, self.logical_and())
        return node

    def logical_and(self) -> Any:
        node = self.logical_not()
        while self.peek() and self.peek()[1].upper() in {"AND", "&&"}:
            self.take()
            node = ("and", node, self.logical_not())
        return node

    def logical_not(self) -> Any:
        if self.peek() and self.peek()[1].upper() in {"NOT", "!"}:
            self.take()
            return ("not", self.logical_not())
        return self.comparison()

    def comparison(self) -> Any:
        node = self.additive()
        while self.peek() and self.peek()[1] in {">", "<", ">=", "<=", "==", "!="}:
            op = self.take()[1]
            node = ("cmp", op, node, self.additive())
        return node

    def additive(self) -> Any:
        node = self.multiplicative()
        while self.peek() and self.peek()[1] in {"+", "-"}:
            op = self.take()[1]
            node = ("bin", op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Any:
        node = self.unary()
        while self.peek() and self.peek()[1] in {"*", "/"}:
            op = self.take()[1]
            node = ("bin", op, node, self.unary())
        return node

    def unary(self) -> Any:
        if self.peek() and self.peek()[1] == "-":
            self.take()
            return ("neg", self.unary())
        return self.power()

    def power(self) -> Any:
        node = self.atom()
        if self.peek() and self.peek()[1] == "^":
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
            if self.peek() and self.peek()[1] == "(":
                function = value.upper()
                if function not in self.FUNCTIONS:
                    raise AlarmDefinitionError(
                        f"metric math function {value} is not evaluated by the rehearsal "
                        f"(supported: {', '.join(sorted(self.FUNCTIONS))})",
                        field="Expression",
                    )
                self.take("(")
                args = [self.logical_or()]
                while self.peek() and self.peek()[1] == ",":
                    self.take()
                    if function == "FILL" and self.peek() and self.peek()[1].upper() in {"REPEAT", "LINEAR"}:
                        raise AlarmDefinitionError(
                            "FILL with REPEAT/LINEAR is not evaluated by the rehearsal", field="Expression"
                        )
                    args.append(self.logical_or())
                self.take(")")
                return ("call", function, args)
            return ("id", value)
        raise AlarmDefinitionError(f"metric math {self.text!r}: unexpected {value!r}", field="Expression")


def parse_expression(text: str) -> Any:
    """AST of a metric math expression (AlarmDefinitionError on anything unsupported)."""
    return _Parser(text).parse()


def evaluate_expression(node: Any, values: dict[str, float | None]) -> float | None:  # noqa: C901 - metric math is one dispatch over its operators, as CloudWatch documents them
    """One period's value; None is a missing datapoint (it propagates, FILL replaces it)."""
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "id":
        if node[1] not in values:
            raise AlarmDefinitionError(f"metric math refers to unknown id {node[1]!r}", field="Expression")
        return values[node[1]]
    if kind == "neg":
        value = evaluate_expression(node[1], values)
        return None if value is None else -value
    if kind == "not":
        value = evaluate_expression(node[1], values)
        return None if value is None else float(not value)
    if kind in {"and", "or"}:
        left, right = evaluate_expression(node[1], values), evaluate_expression(node[2], values)
        if left is None or right is None:
            return None
        return float(bool(left) and bool(right)) if kind == "and" else float(bool(left) or bool(right))
    if kind == "cmp":
        left, right = evaluate_expression(node[2], values), evaluate_expression(node[3], values)
        if left is None or right is None:
            return None
        return float(
            {
                ">": left > right,
                "<": left < right,
                ">=": left >= right,
                "<=": left <= right,
                "==": left == right,
                "!=": left != right,
            }[node[1]]
        )
    if kind == "bin":
        left, right = evaluate_expression(node[2], values), evaluate_expression(node[3], values)
        if left is None or right is None:
            return None
        op = node[1]
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        if op == "/":
            return None if right == 0 else left / right  # CloudWatch drops the datapoint on division by zero
        return left**right
    if kind == "call":
        function, args = node[1], node[2]
        if function == "IF":
            condition = evaluate_expression(args[0], values)
            if condition is None:
                return None
            if condition:
                return evaluate_expression(args[1], values)
            return evaluate_expression(args[2], values) if len(args) > 2 else None
        if function == "FILL":
            value = evaluate_expression(args[0], values)
            return evaluate_expression(args[1], values) if value is None else value
        value = evaluate_expression(args[0], values)
        if value is None:
            return None
        return {"ABS": abs, "CEIL": math.ceil, "FLOOR": math.floor}[function](value)
    raise AlarmDefinitionError(f"cannot evaluate {node!r}", field="Expression")
