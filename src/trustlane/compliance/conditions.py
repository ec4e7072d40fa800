"""Rule conditions: a small operator language, compiled once into closures with three-valued results.

A condition is a mapping with one key::

    {all: [c, ...]}   {any: [c, ...]}   {not: c}
    {FACT: VALUE}                       shorthand for {FACT: {eq: VALUE}} (not for set facts)
    {FACT: {OP: OPERAND}}

Operators by fact type: bool ``eq ne``; str ``eq ne in not_in``; int ``eq ne gte gt lte lt``; set ``has has_any
has_all has_none``. An int operand may be ``$name``, one of the rule's thresholds.

A compiled condition returns True, False or None (not known: a fact it needed is absent), combined by Kleene's
rules: ``all`` is False once any part is False, ``any`` True once any part is True, otherwise None if any part
is None. So a missing fact matters only where it could change the answer.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from trustlane.compliance.vocabulary import Fact, FactType
from trustlane.errors import MalformedInput

Facts = Mapping[str, Any]
Test = Callable[[Facts], bool | None]

_INT_OPS: dict[str, Callable[[int, int], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
}
_OPERATORS = {
    FactType.BOOL: ("eq", "ne"),
    FactType.STR: ("eq", "ne", "in", "not_in"),
    FactType.INT: tuple(_INT_OPS),
    FactType.SET: ("has", "has_any", "has_all", "has_none"),
}


@dataclass(frozen=True)
class Compiled:
    test: Test
    facts: frozenset[str]  # every fact the condition reads


def always(_: Facts) -> bool | None:
    return True


def compile_condition(
    raw: object, vocabulary: Mapping[str, Fact], thresholds: Mapping[str, int], where: str
) -> Compiled:
    """Compile ``raw``; a malformed condition raises MalformedInput naming ``where`` and the fix."""
    if raw is None:
        return Compiled(always, frozenset())
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise MalformedInput(
            f"{where}: a condition is a mapping with one key (all, any, not or a fact), got {raw!r}",
            hint="e.g. {cross_border: true} or {all: [{personal: true}, {persons: {gte: 100000}}]}",
        )
    ((key, value),) = raw.items()
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise MalformedInput(f"{where}.{key}: needs a non-empty list of conditions")
        parts = [compile_condition(v, vocabulary, thresholds, f"{where}.{key}[{i}]") for i, v in enumerate(value)]
        tests = tuple(p.test for p in parts)
        used = frozenset().union(*(p.facts for p in parts))
        return Compiled(_all(tests) if key == "all" else _any(tests), used)
    if key == "not":
        inner = compile_condition(value, vocabulary, thresholds, f"{where}.not")
        return Compiled(_not(inner.test), inner.facts)
    if not isinstance(key, str) or key not in vocabulary:
        raise MalformedInput(
            f"{where}: unknown fact {key!r}", hint=f"facts a rule may test: {', '.join(sorted(vocabulary))}"
        )
    fact = vocabulary[key]
    if isinstance(value, Mapping):
        if len(value) != 1:
            raise MalformedInput(f"{where}.{key}: give exactly one operator, got {sorted(map(str, value))}")
        ((op, operand),) = value.items()
    elif fact.type is FactType.SET:
        raise MalformedInput(f"{where}.{key}: a set fact needs an operator", hint="has, has_any, has_all or has_none")
    else:
        op, operand = "eq", value
    if op not in _OPERATORS[fact.type]:
        raise MalformedInput(
            f"{where}.{key}: operator {op!r} does not apply to a {fact.type.value} fact",
            hint=f"use one of {', '.join(_OPERATORS[fact.type])}",
        )
    return Compiled(_leaf(key, fact, str(op), operand, thresholds, f"{where}.{key}.{op}"), frozenset({key}))


def _leaf(name: str, fact: Fact, op: str, operand: object, thresholds: Mapping[str, int], where: str) -> Test:
    if fact.type is FactType.BOOL:
        if not isinstance(operand, bool):
            raise MalformedInput(f"{where}: expects true or false, got {operand!r}")
        return _equals(name, operand, op == "eq")
    if fact.type is FactType.INT:
        return _compare(name, _INT_OPS[op], _int_operand(operand, thresholds, where))
    if fact.type is FactType.STR:
        if op in ("in", "not_in"):
            return _member(name, frozenset(_strings(operand, fact, where, many=True)), op == "in")
        (single,) = _strings(operand, fact, where, many=False)
        return _equals(name, single, op == "eq")
    values = frozenset(_strings(operand, fact, where, many=op != "has"))
    if op in ("has", "has_any"):
        return _overlaps(name, values, True)
    if op == "has_none":
        return _overlaps(name, values, False)
    return _compare(name, operator.ge, values)  # has_all: present ⊇ wanted


def _int_operand(operand: object, thresholds: Mapping[str, int], where: str) -> int:
    if isinstance(operand, str) and operand.startswith("$"):
        if operand[1:] not in thresholds:
            raise MalformedInput(
                f"{where}: {operand} names no threshold of this rule",
                hint=f"the rule's thresholds: {', '.join(thresholds) or 'none'}",
            )
        return thresholds[operand[1:]]
    if isinstance(operand, bool) or not isinstance(operand, int):
        raise MalformedInput(f"{where}: expects an integer or $threshold, got {operand!r}")
    return operand


def _strings(operand: object, fact: Fact, where: str, *, many: bool) -> tuple[str, ...]:
    items = operand if many and isinstance(operand, list) else [operand]
    if many and not isinstance(operand, list):
        raise MalformedInput(f"{where}: expects a list, got {operand!r}")
    if not items:
        raise MalformedInput(f"{where}: the list is empty")
    for item in items:
        if not isinstance(item, str) or (fact.values and item not in fact.values):
            raise MalformedInput(f"{where}: unknown value {item!r}", hint=f"known values: {', '.join(fact.values)}")
    return tuple(str(i) for i in items)


# Each leaf is one closure with the test inlined: a decision runs a few hundred of them.
def _compare(name: str, fn: Callable[[Any, Any], bool], operand: object) -> Test:
    def test(facts: Facts) -> bool | None:
        value = facts[name]
        return None if value is None else fn(value, operand)

    return test


def _equals(name: str, operand: object, equal: bool) -> Test:
    def test(facts: Facts) -> bool | None:
        value = facts[name]
        return None if value is None else (value == operand) is equal

    return test


def _member(name: str, operand: frozenset[str], inside: bool) -> Test:
    def test(facts: Facts) -> bool | None:
        value = facts[name]
        return None if value is None else (value in operand) is inside

    return test


def _overlaps(name: str, operand: frozenset[str], overlap: bool) -> Test:
    def test(facts: Facts) -> bool | None:
        value = facts[name]
        return None if value is None else value.isdisjoint(operand) is not overlap

    return test


def _all(tests: tuple[Test, ...]) -> Test:
    def test(facts: Facts) -> bool | None:
        unknown = False
        for t in tests:
            result = t(facts)
            if result is False:
                return False
            if result is None:
                unknown = True
        return None if unknown else True

    return test


def _any(tests: tuple[Test, ...]) -> Test:
    def test(facts: Facts) -> bool | None:
        unknown = False
        for t in tests:
            result = t(facts)
            if result is True:
                return True
            if result is None:
                unknown = True
        return None if unknown else False

    return test


def _not(inner: Test) -> Test:
    def test(facts: Facts) -> bool | None:
        result = inner(facts)
        return None if result is None else not result

    return test


__all__ = ["Compiled", "Facts", "Test", "always", "compile_condition"]
