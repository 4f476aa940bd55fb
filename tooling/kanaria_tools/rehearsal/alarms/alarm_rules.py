"""Composite alarm rules: a parser of AlarmRule (ALARM/OK/INSUFFICIENT_DATA(name or ARN), TRUE, FALSE, AND,
OR, NOT, parentheses) and its evaluation against the children's states."""

from __future__ import annotations

import re
from typing import Any

from kanaria_tools.rehearsal.alarms.errors import AlarmDefinitionError

_RULE_TOKEN = re.compile(
    r'\s*(?:(ALARM|OK|INSUFFICIENT_DATA)\s*\(\s*("(?:[^"\\]|\\.)*"|[^()\s]+)\s*\)|(TRUE|FALSE|AND|OR|NOT)\b|([()]))'
)


def _rule_tokens(rule: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(rule):
        if rule[position:].strip() == "":
            break
        match = _RULE_TOKEN.match(rule, position)
        if not match:
            raise AlarmDefinitionError(f"cannot parse alarm rule {rule!r} at {rule[position:]!r}", field="AlarmRule")
        state, target, word, paren = match.groups()
        if state:
            target = target.strip('"')
            name = target.split(":alarm:", 1)[1] if ":alarm:" in target else target
            tokens.append(("state", f"{state}|{name}"))
        elif word:
            tokens.append(("word", word))
        else:
            tokens.append(("paren", paren))
        position = match.end()
    return tokens


class _RuleParser:
    """Recursive descent over AlarmRule: OR > AND > NOT > a state, TRUE/FALSE or a parenthesised rule."""

    def __init__(self, rule: str):
        self.rule = rule
        self.tokens = _rule_tokens(rule)
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise AlarmDefinitionError(f"alarm rule {self.rule!r} ends early", field="AlarmRule")
        self.position += 1
        return self.tokens[self.position - 1]

    def parse(self) -> Any:
        node = self.disjunction()
        extra = self.peek()
        if extra is not None:
            raise AlarmDefinitionError(f"alarm rule {self.rule!r}: unexpected {extra[1]!r}", field="AlarmRule")
        return node

    def disjunction(self) -> Any:
        node = self.conjunction()
        while self.peek() == ("word", "OR"):
            self.take()
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self) -> Any:
        node = self.negation()
        while self.peek() == ("word", "AND"):
            self.take()
            node = ("and", node, self.negation())
        return node

    def negation(self) -> Any:
        if self.peek() == ("word", "NOT"):
            self.take()
            return ("not", self.negation())
        return self.primary()

    def primary(self) -> Any:
        kind, value = self.take()
        if kind == "state":
            state, name = value.split("|", 1)
            return ("state", state, name)
        if kind == "word" and value in {"TRUE", "FALSE"}:
            return ("const", value == "TRUE")
        if (kind, value) == ("paren", "("):
            node = self.disjunction()
            if self.take() != ("paren", ")"):
                raise AlarmDefinitionError(f"alarm rule {self.rule!r}: missing ')'", field="AlarmRule")
            return node
        raise AlarmDefinitionError(f"alarm rule {self.rule!r}: unexpected {value!r}", field="AlarmRule")


def parse_rule(rule: str) -> Any:
    """AST of an AlarmRule."""
    return _RuleParser(rule).parse()


def rule_children(node: Any) -> set[str]:
    """Alarm names a rule refers to."""
    if node[0] == "state":
        return {node[2]}
    if node[0] == "const":
        return set()
    return set().union(*(rule_children(child) for child in node[1:]))


def evaluate_rule(node: Any, states: dict[str, str]) -> bool:
    """True when the rule holds for the children's current states."""
    kind = node[0]
    if kind == "state":
        return states.get(node[2], "INSUFFICIENT_DATA") == node[1]
    if kind == "const":
        return bool(node[1])
    if kind == "not":
        return not evaluate_rule(node[1], states)
    if kind == "and":
        return evaluate_rule(node[1], states) and evaluate_rule(node[2], states)
    return evaluate_rule(node[1], states) or evaluate_rule(node[2], states)
