"""``evaluate(request) -> Decision``: walk the precompiled rules of the request's origin and action.

Precedence, failing closed:

1. a forbid rule that holds, or a require rule that holds while none of its mechanisms is in the request,
   denies (naming the mechanisms);
2. otherwise a rule that cannot be decided for want of a fact, and could change the outcome, gives needs_info
   with the request fields to supply;
3. otherwise the request is allowed only if a permit rule holds or a require rule is satisfied; with no such
   rule it is denied. An empty rule set, or one without a pack for the origin, denies.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from trustlane.compliance.decision import AppliedRule, Decision
from trustlane.compliance.facts import build_facts
from trustlane.compliance.request import Request
from trustlane.compliance.ruleset import CompiledRule, Obligation, RuleSet, default_rules


def _today() -> date:
    return datetime.now(UTC).date()


def evaluate(request: Request, rules: RuleSet | None = None, *, at: date | None = None) -> Decision:
    """Decide ``request`` under ``rules`` (default: shipped packs) on day ``at`` (default: request.at, else today)."""
    ruleset = rules if rules is not None else default_rules()
    day = at or (date.fromisoformat(request.at) if request.at else _today())
    facts = build_facts(request)
    if request.rule_packs is not None:
        ruleset, unknown = ruleset.select(request.rule_packs)
        if unknown:
            return _refuse(
                request, ruleset, day, facts, f"unknown rule pack(s) {', '.join(unknown)}: an unknown rule set denies"
            )
    if not ruleset.packs:
        return _refuse(request, ruleset, day, facts, "no rule pack is loaded: an empty rule set denies")
    if request.from_ not in ruleset.covered:
        return _refuse(
            request,
            ruleset,
            day,
            facts,
            f"no rule pack for {request.from_} is loaded: data under unknown rules are denied",
        )

    applied: list[AppliedRule] = []
    undetermined: list[AppliedRule] = []
    reasons: list[str] = []
    obligations: dict[str, Obligation] = {}
    required: list[tuple[str, tuple[str, ...]]] = []
    mechanisms = facts["mechanisms"]
    permitted = denied = False
    for rule in ruleset.rules_for(request.from_, request.action, day):
        holds = rule.test(facts)
        if holds is False:
            continue
        effect = rule.spec.effect
        if holds is None:
            satisfied = effect == "require" and not mechanisms.isdisjoint(rule.mechanisms)
            if not satisfied:
                undetermined.append(AppliedRule(rule, "undetermined"))
            continue
        for o in rule.obligations:
            obligations.setdefault(o.id, o)
        if effect == "permit":
            permitted = True
            applied.append(AppliedRule(rule, "permit"))
        elif effect == "forbid":
            denied = True
            applied.append(AppliedRule(rule, "forbid"))
            reasons.append(f"{rule.id} ({rule.citation}) forbids this: {rule.spec.title}")
        elif effect == "oblige":
            applied.append(AppliedRule(rule, "oblige"))
        else:
            present = sorted(mechanisms & rule.mechanisms)
            if present:
                permitted = True
                applied.append(AppliedRule(rule, "satisfied"))
                for m in present:
                    for o in rule.mechanism_obligations.get(m, ()):
                        obligations.setdefault(o.id, o)
            else:
                denied = True
                wanted = tuple(sorted(rule.mechanisms))
                required.append((rule.id, wanted))
                applied.append(AppliedRule(rule, "unmet"))
                given = f"; the request's {', '.join(sorted(mechanisms))} do not satisfy it" if mechanisms else ""
                reasons.append(
                    f"{rule.id} ({rule.citation}) requires {' or '.join(wanted)}, "
                    f"which mechanisms does not list{given}: {rule.spec.title}"
                )

    missing: tuple[str, ...] = ()
    if denied:
        decision = "deny"
    else:
        undetermined = [_with_needs(u.rule, facts) for u in undetermined]
        relevant = [u for u in undetermined if u.rule.spec.effect != "permit" or not permitted]
        if relevant:
            decision = "needs_info"
            missing = tuple(dict.fromkeys(n for u in relevant for n in u.needs))
            reasons.extend(f"{u.rule.id} ({u.rule.citation}) needs {', '.join(u.needs)}" for u in relevant)
        elif permitted:
            decision = "allow"
        else:
            decision = "deny"
            reasons.append(f"no rule permits {request.action} of these data from {request.from_}: fail closed")
    return Decision(
        decision=decision,
        reasons=tuple(reasons),
        obligations=tuple(obligations.values()),
        rules=tuple(applied),
        undetermined=tuple(undetermined),
        missing=missing,
        required_mechanisms=tuple(required),
        packs=ruleset.packs,
        at=day,
        request=request,
        facts=facts,
    )


def _with_needs(rule: CompiledRule, facts: dict[str, Any]) -> AppliedRule:
    """An undetermined rule with the request fields that would decide it (its unknown facts' sources)."""
    needs = tuple(dict.fromkeys(source for fact, source in rule.fact_sources if facts[fact] is None))
    return AppliedRule(rule, "undetermined", needs)


def _refuse(request: Request, ruleset: RuleSet, day: date, facts: dict[str, object], reason: str) -> Decision:
    return Decision("deny", (reason,), (), (), (), (), (), ruleset.packs, day, request, dict(facts))


__all__ = ["evaluate"]
