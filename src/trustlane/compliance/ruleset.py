"""Rule sets: packs loaded, validated and compiled into per-(origin, action) tables of closures.

Compiling happens once per pack set, so deciding is a walk over a short tuple of precompiled rules.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from trustlane.compliance.conditions import Test, compile_condition
from trustlane.compliance.model import LawSpec, ObligationSpec, PackSpec, RuleSpec, parse_pack
from trustlane.compliance.vocabulary import ACTIONS, ANY_JURISDICTION, JURISDICTIONS, facts
from trustlane.errors import MalformedInput, UsageError
from trustlane.ingest.categories import default_categories
from trustlane.ingest.yamlsrc import load_yaml

SHIPPED_PACKS = ("baseline", "cn", "eu", "us")
MAX_PACK_BYTES = 1 << 20


@dataclass(frozen=True)
class PackRef:
    """A pack as a decision names it: its digest pins the exact rules applied."""

    id: str
    version: str
    jurisdiction: str
    title: str
    digest: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "version": self.version, "jurisdiction": self.jurisdiction, "digest": self.digest}


@dataclass(frozen=True)
class Obligation:
    id: str
    text: str
    rule: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "text": self.text, "rule": self.rule}


@dataclass(frozen=True, eq=False)
class CompiledRule:
    spec: RuleSpec
    pack: PackRef
    citation: str
    see_also: tuple[str, ...]
    test: Test
    facts: frozenset[str]
    fact_sources: tuple[tuple[str, str], ...]  # (fact, request field a user gives when it is unknown)
    effective_from: date
    effective_to: date | None
    mechanisms: frozenset[str]
    obligations: tuple[Obligation, ...]
    mechanism_obligations: dict[str, tuple[Obligation, ...]]

    @property
    def id(self) -> str:
        return self.spec.id

    def in_effect(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.spec.id,
            "pack": self.pack.id,
            "effect": self.spec.effect,
            "title": self.spec.title,
            "citation": self.citation,
            "see_also": list(self.see_also),
            "confirmed": self.spec.confirmed,
        }
        if self.spec.note:
            out["note"] = " ".join(self.spec.note.split())
        if self.spec.thresholds:
            out["thresholds"] = dict(self.spec.thresholds)
        return out


def _cite(laws: dict[str, LawSpec], law: str, article: str) -> str:
    return f"{laws[law].name} {article}"


def _obligations(specs: Iterable[ObligationSpec], rule: str) -> tuple[Obligation, ...]:
    return tuple(Obligation(o.id, " ".join(o.text.split()), rule) for o in specs)


def compile_pack(spec: PackSpec, source: str) -> tuple[PackRef, list[CompiledRule]]:
    ref = PackRef(spec.id, spec.version, spec.jurisdiction, spec.title, spec.digest())
    vocabulary = facts(tuple(c.id for c in default_categories().categories))
    compiled = []
    for index, rule in enumerate(spec.rules):
        condition = compile_condition(
            rule.when, vocabulary, rule.thresholds, f"{source}: rules[{index}] ({rule.id}).when"
        )
        law = spec.laws[rule.citation.law]
        effective = rule.effective
        compiled.append(
            CompiledRule(
                spec=rule,
                pack=ref,
                citation=_cite(spec.laws, rule.citation.law, rule.citation.article),
                see_also=tuple(_cite(spec.laws, c.law, c.article) for c in rule.see_also),
                test=condition.test,
                facts=condition.facts,
                fact_sources=tuple((f, vocabulary[f].source) for f in sorted(condition.facts) if vocabulary[f].source),
                effective_from=(effective.from_ if effective and effective.from_ else law.in_force),
                effective_to=effective.to if effective else None,
                mechanisms=frozenset(rule.mechanisms),
                obligations=_obligations(rule.obligations, rule.id),
                mechanism_obligations={m: _obligations(o, rule.id) for m, o in rule.mechanism_obligations.items()},
            )
        )
    return ref, compiled


def read_pack(text: str, source: str) -> PackSpec:
    if len(text.encode("utf-8")) > MAX_PACK_BYTES:
        raise MalformedInput(f"{source}: larger than {MAX_PACK_BYTES} bytes; is this a rule pack?")
    return parse_pack(load_yaml(text, source=source), source)


class RuleSet:
    """Compiled packs. ``rules_for(origin, action)`` is the table the engine walks (origin pack, then baseline)."""

    def __init__(self, packs: Sequence[tuple[PackSpec, str]] = ()) -> None:
        refs: list[PackRef] = []
        self._by_pack: dict[str, tuple[CompiledRule, ...]] = {}
        by_key: dict[tuple[str, str], list[CompiledRule]] = {}
        for spec, source in packs:
            if any(r.id == spec.id for r in refs):
                raise UsageError(
                    f"{source}: a pack with id {spec.id!r} is already loaded", hint="give each pack its own id"
                )
            ref, rules = compile_pack(spec, source)
            refs.append(ref)
            self._by_pack[ref.id] = tuple(rules)
            for rule in rules:
                for action in rule.spec.actions or ACTIONS:
                    by_key.setdefault((spec.jurisdiction, action), []).append(rule)
        self.specs = tuple(spec for spec, _ in packs)
        self.packs = tuple(refs)
        self.covered = frozenset(r.jurisdiction for r in refs if r.jurisdiction != ANY_JURISDICTION)
        self._table = {
            (origin, action): tuple(by_key.get((origin, action), ()))
            + tuple(by_key.get((ANY_JURISDICTION, action), ()))
            for origin in JURISDICTIONS
            for action in ACTIONS
        }
        self._subsets: dict[tuple[str, ...], RuleSet] = {}
        self._in_effect: dict[tuple[str, str, date], tuple[CompiledRule, ...]] = {}

    @classmethod
    def empty(cls) -> RuleSet:
        return cls(())

    @classmethod
    def shipped(cls) -> RuleSet:
        root = resources.files("trustlane.compliance").joinpath("packs")
        packs = []
        for name in SHIPPED_PACKS:
            source = f"trustlane/compliance/packs/{name}.yaml"
            packs.append((read_pack(root.joinpath(f"{name}.yaml").read_text("utf-8"), source), source))
        return cls(packs)

    @classmethod
    def from_files(cls, paths: Sequence[Path]) -> RuleSet:
        packs = []
        for path in paths:
            try:
                text = path.read_text("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"cannot read rule pack {path}: {exc}", hint="check the path") from None
            packs.append((read_pack(text, str(path)), str(path)))
        return cls(packs)

    def rules_for(self, origin: str, action: str, day: date | None = None) -> tuple[CompiledRule, ...]:
        """The rules for ``origin`` and ``action`` (those in effect on ``day`` when given), origin pack first."""
        rules = self._table[(origin, action)]
        if day is None:
            return rules
        key = (origin, action, day)
        cached = self._in_effect.get(key)
        if cached is None:
            if len(self._in_effect) > 4096:  # a long-running process moves on day by day
                self._in_effect.clear()
            cached = self._in_effect[key] = tuple(r for r in rules if r.in_effect(day))
        return cached

    def select(self, ids: tuple[str, ...]) -> tuple[RuleSet, tuple[str, ...]]:
        """The packs named ``ids`` (cached) and the ids no loaded pack has."""
        known = {s.id for s in self.specs}
        unknown = tuple(i for i in ids if i not in known)
        key = tuple(sorted(set(ids) & known))
        subset = self._subsets.get(key)
        if subset is None:
            chosen = [(s, f"pack {s.id}") for s in self.specs if s.id in key]
            subset = self._subsets[key] = RuleSet(chosen)
        return subset, unknown

    def rules(self, pack: str | None = None) -> list[CompiledRule]:
        """Every compiled rule in pack order, or those of one pack."""
        return [r for pid, rules in self._by_pack.items() if pack in (None, pid) for r in rules]


@functools.cache
def default_rules() -> RuleSet:
    """The shipped packs, compiled once per process."""
    return RuleSet.shipped()


__all__ = [
    "SHIPPED_PACKS",
    "CompiledRule",
    "Obligation",
    "PackRef",
    "RuleSet",
    "compile_pack",
    "default_rules",
    "read_pack",
]
