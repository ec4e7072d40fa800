"""The decision record: allow, deny or needs_info, with the rules applied, obligations and missing facts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

from trustlane.compliance.classify import classify_dataset
from trustlane.compliance.request import Request
from trustlane.compliance.ruleset import CompiledRule, Obligation, PackRef

DECISIONS = ("allow", "deny", "needs_info")


class AppliedRule(NamedTuple):
    """A rule whose condition held (or could not be decided), and what came of it.

    outcome: permit, forbid, satisfied (a require rule whose mechanism is present), unmet (one whose mechanism is
    absent), oblige, or undetermined (with the request fields it needs).
    """

    rule: CompiledRule
    outcome: str
    needs: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out = self.rule.to_json()
        out["outcome"] = self.outcome
        if self.rule.spec.effect == "require":
            out["mechanisms"] = sorted(self.rule.mechanisms)
        if self.needs:
            out["needs"] = list(self.needs)
        return out


@dataclass(frozen=True)
class Decision:
    decision: str
    reasons: tuple[str, ...]
    obligations: tuple[Obligation, ...]
    rules: tuple[AppliedRule, ...]
    undetermined: tuple[AppliedRule, ...]
    missing: tuple[str, ...]
    required_mechanisms: tuple[tuple[str, tuple[str, ...]], ...]  # (rule id, any of these mechanisms)
    packs: tuple[PackRef, ...]
    at: date
    request: Request
    facts: dict[str, Any]

    @property
    def confirmed(self) -> bool:
        """True when every rule the decision rests on was checked against its text."""
        return all(a.rule.spec.confirmed for a in (*self.rules, *self.undetermined))

    def to_json(self) -> dict[str, Any]:
        request = self.request
        jurisdictions = dict.fromkeys((request.from_, request.to))
        unconfirmed = [a.rule.id for a in (*self.rules, *self.undetermined) if not a.rule.spec.confirmed]
        return {
            "decision": self.decision,
            "reasons": list(self.reasons),
            "obligations": [o.to_json() for o in self.obligations],
            "rules": [a.to_json() for a in self.rules],
            "undetermined": [a.to_json() for a in self.undetermined],
            "missing": list(self.missing),
            "required_mechanisms": [{"rule": r, "any_of": list(m)} for r, m in self.required_mechanisms],
            "confirmed": not unconfirmed,
            "unconfirmed_rules": unconfirmed,
            "packs": [p.to_json() for p in self.packs],
            "at": self.at.isoformat(),
            "facts": {k: sorted(v) if isinstance(v, frozenset) else v for k, v in self.facts.items()},
            "classification": [
                classify_dataset(
                    request.categories,
                    j,
                    persons=request.persons,
                    sensitive_persons=request.sensitive_persons,
                    vehicles=request.vehicles,
                ).to_json()
                for j in jurisdictions
            ],
            "request": request.to_json(),
        }


__all__ = ["DECISIONS", "AppliedRule", "Decision"]
