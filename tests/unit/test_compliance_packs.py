"""Rule packs: the shipped ones load and cite their laws; bad packs are refused with a clear message."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from trustlane.compliance import RuleSet, evaluate, parse_request
from trustlane.compliance.conditions import compile_condition
from trustlane.compliance.ruleset import SHIPPED_PACKS, default_rules, read_pack
from trustlane.compliance.vocabulary import Fact, FactType
from trustlane.errors import MalformedInput

PACKS = Path(__file__).resolve().parents[2] / "src/trustlane/compliance/packs"


def pack_data(name: str = "cn") -> dict[str, Any]:
    data = yaml.safe_load((PACKS / f"{name}.yaml").read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def load(data: dict[str, Any]) -> RuleSet:
    return RuleSet([(read_pack(yaml.safe_dump(data, allow_unicode=True), "test.yaml"), "test.yaml")])


def test_shipped_packs_load_with_citations_and_digests() -> None:
    rules = default_rules()
    assert [p.id for p in rules.packs] == list(SHIPPED_PACKS)
    assert rules.covered == {"CN", "EU", "US"}
    for ref in rules.packs:
        assert len(ref.digest) == 64
        for rule in rules.rules(ref.id):
            assert rule.citation and rule.spec.title
            assert rule.spec.confirmed or rule.spec.note  # what could not be confirmed is said
    cited = " ".join(r.citation for r in rules.rules())
    for expected in ("PIPL Art. 39", "(2024) Art. 5", "(2024) Art. 7", "(2024) Art. 8", "GDPR Art. 46", "§202.205(c)"):
        assert expected in cited


def test_digest_pins_the_content_not_the_formatting() -> None:
    data = pack_data()
    original = load(data).packs[0].digest
    assert load(data).packs[0].digest == original  # YAML re-dumped with other formatting
    assert original == next(p.digest for p in default_rules().packs if p.id == "cn")
    data["rules"][0]["note"] = "changed"
    assert load(data).packs[0].digest != original


def mutate(path: str, value: Any) -> dict[str, Any]:
    data = pack_data()
    target: Any = data
    *parents, last = path.split("/")
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is KeyError:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


def volume_rule_index() -> int:
    return next(i for i, r in enumerate(pack_data()["rules"]) if r["id"] == "cn.cac2024.volume-assessment")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("format", "trustlane-rule-pack/9", "format"),
        ("jurisdiction", "XX", "jurisdiction"),
        ("rules/0/effect", "maybe", "effect"),
        ("rules/0/colour", "blue", "unknown field"),
        ("rules/0/citation/law", "NOLAW", "does not define"),
        ("rules/0/when", {"nonsense_fact": True}, "unknown fact 'nonsense_fact'"),
        ("rules/0/when", {"persons": {"has": 3}}, "operator 'has'"),
        ("rules/0/when", {"categories": {"has": "spaceship"}}, "unknown value 'spaceship'"),
        ("rules/0/when", {"all": []}, "non-empty list"),
        ("rules/0/when", {"persons": {"gte": "$nothing"}}, "$nothing names no threshold"),
        ("rules/0/when", {"cross_border": "yes"}, "true or false"),
        ("rules/1/mechanisms", [], "lists the mechanisms"),
        ("rules/1/confirmed", False, None),  # already unconfirmed with a note: still valid
        ("rules/1/note", "", "says in its note"),
    ],
)
def test_bad_packs_are_refused(path: str, value: Any, message: str | None) -> None:
    data = mutate(path, value)
    if message is None:
        load(data)
        return
    with pytest.raises(MalformedInput) as info:
        load(data)
    assert message in info.value.diagnostics()
    assert info.value.exit_code == 2


def test_duplicate_rule_ids_and_duplicate_packs_are_refused() -> None:
    data = pack_data()
    data["rules"].append(data["rules"][0])
    with pytest.raises(MalformedInput, match="appears twice"):
        load(data)
    spec = read_pack((PACKS / "cn.yaml").read_text("utf-8"), "cn.yaml")
    with pytest.raises(Exception, match="already loaded"):
        RuleSet([(spec, "a"), (spec, "b")])


def test_thresholds_are_data() -> None:
    data = pack_data()
    data["rules"][volume_rule_index()]["thresholds"]["persons"] = 500_000
    request = parse_request(
        {
            "action": "transfer",
            "from": "CN",
            "to": "EU",
            "categories": ["vehicle-operation"],
            "persons": 600_000,
            "sensitive_persons": 0,
            "exporter": {"ciio": False},
            "important_data_notified": False,
            "mechanisms": ["cn_standard_contract"],
        }
    )
    assert evaluate(request).decision == "allow"
    assert evaluate(request, load(data)).decision == "deny"


# --- three-valued conditions ---------------------------------------------------------------------------------
VOCAB = {"a": Fact(FactType.BOOL, "a"), "b": Fact(FactType.BOOL, "b"), "n": Fact(FactType.INT, "n")}
TRUTH = st.sampled_from([True, False, None])


def kleene_and(values: list[bool | None]) -> bool | None:
    return False if False in values else (None if None in values else True)


def kleene_or(values: list[bool | None]) -> bool | None:
    return True if True in values else (None if None in values else False)


@given(TRUTH, TRUTH)
def test_all_any_not_follow_kleene_logic(a: bool | None, b: bool | None) -> None:
    facts = {"a": a, "b": b, "n": None}
    both = compile_condition({"all": [{"a": True}, {"b": True}]}, VOCAB, {}, "t").test(facts)
    either = compile_condition({"any": [{"a": True}, {"b": True}]}, VOCAB, {}, "t").test(facts)
    negated = compile_condition({"not": {"a": True}}, VOCAB, {}, "t").test(facts)
    assert both == kleene_and([a, b])
    assert either == kleene_or([a, b])
    assert negated == (None if a is None else not a)


@pytest.mark.parametrize(("op", "threshold"), list(itertools.product(["gte", "gt", "lte", "lt", "eq", "ne"], [0, 10])))
def test_integer_operators_at_the_boundary(op: str, threshold: int) -> None:
    test = compile_condition({"n": {op: "$t"}}, VOCAB, {"t": threshold}, "t").test
    expected = {
        "gte": lambda v: v >= threshold,
        "gt": lambda v: v > threshold,
        "lte": lambda v: v <= threshold,
        "lt": lambda v: v < threshold,
        "eq": lambda v: v == threshold,
        "ne": lambda v: v != threshold,
    }[op]
    for value in (threshold - 1, threshold, threshold + 1):
        assert test({"n": value}) == expected(value)
    assert test({"n": None}) is None
