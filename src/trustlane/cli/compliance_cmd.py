"""`trustlane compliance`: decide a request under the rule packs, list the packs and rules, classify data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from trustlane.cli.common import HomeOption, JsonOption, emit_json, err, open_node
from trustlane.compliance.classify import classify_dataset, classify_signal
from trustlane.compliance.engine import evaluate
from trustlane.compliance.record import record_decision
from trustlane.compliance.request import MAX_REQUEST_BYTES, parse_request_json
from trustlane.compliance.ruleset import RuleSet, default_rules
from trustlane.compliance.vocabulary import JURISDICTIONS
from trustlane.config import CONFIG_FILE, resolve_home
from trustlane.errors import HomeError, UsageError

app = typer.Typer(help="Compliance decisions under the CN, EU and US rule packs.", no_args_is_help=True)

PackOption = Annotated[
    list[Path] | None,
    typer.Option("--pack", help="Rule pack file (repeatable) used instead of the shipped packs.", show_default=False),
]


def _rules(packs: list[Path] | None) -> RuleSet:
    return RuleSet.from_files(packs) if packs else default_rules()


def _read_request(path: Path) -> tuple[bytes, str]:
    if str(path) == "-":
        return sys.stdin.buffer.read(MAX_REQUEST_BYTES + 1), "stdin"
    if not path.is_file():
        raise UsageError(f"{path} is not a file", hint="give the request as a JSON file, or - for stdin")
    with path.open("rb") as f:
        return f.read(MAX_REQUEST_BYTES + 1), str(path)


@app.command("evaluate")
def evaluate_cmd(
    request_file: Annotated[Path, typer.Argument(metavar="REQUEST.json", help="The request (JSON), or - for stdin.")],
    packs: PackOption = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Decide a request: allow, deny or needs_info, with the rules, obligations and missing facts.

    The decision is recorded as a `compliance.decision` ledger event when a node home exists (--home,
    $TRUSTLANE_HOME or ./.trustlane); without one it is evaluated and reported as not recorded.
    """
    text, source = _read_request(request_file)
    request = parse_request_json(text, source)
    decision = evaluate(request, _rules(packs))
    path = resolve_home(home)
    ledger_index: int | None = None
    if (path / CONFIG_FILE).is_file():
        with open_node(home) as node:
            ledger_index = record_decision(node.log, request, decision).index
            node.log.publish_checkpoint()
    elif home is not None:
        raise HomeError(
            f"{path} is not a trustlane node home",
            hint="create it with `trustlane init --home ...`, or leave --home out to decide without recording",
        )
    out = decision.to_json()
    out["recorded"] = ledger_index is not None
    out["ledger_index"] = ledger_index
    if json_out:
        emit_json(out)
        return
    _print_decision(out)
    if ledger_index is None:
        err.print(f"not recorded: no node home at {path} (create one with `trustlane init`)", highlight=False)


def _print_decision(out: dict[str, Any]) -> None:
    print(f"decision: {out['decision']}")
    for reason in out["reasons"]:
        print(f"  because {reason}")
    if out["missing"]:
        print(f"missing facts: {', '.join(out['missing'])}")
    for o in out["obligations"]:
        print(f"  obligation {o['id']}: {o['text']}")
    for rule in out["rules"]:
        flag = "" if rule["confirmed"] else "  [text not confirmed]"
        print(f"  rule {rule['id']} ({rule['outcome']}): {rule['citation']}{flag}")
    print("packs: " + ", ".join(f"{p['id']} {p['version']} sha256:{p['digest'][:16]}" for p in out["packs"]))
    if out["ledger_index"] is not None:
        print(f"ledger index: {out['ledger_index']}")


@app.command("rules")
def rules_cmd(
    packs: PackOption = None,
    jurisdiction: Annotated[
        str | None, typer.Option(help="Only packs of this jurisdiction (CN, EU, US) and the baseline.")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """List the rule packs (with digests) and their rules with citations, effects and confirmation."""
    if jurisdiction is not None and jurisdiction not in JURISDICTIONS:
        raise UsageError(f"unknown jurisdiction {jurisdiction!r}", hint=f"use one of {', '.join(JURISDICTIONS)}")
    ruleset = _rules(packs)
    listing: list[dict[str, Any]] = []
    for ref, spec in zip(ruleset.packs, ruleset.specs, strict=True):
        if jurisdiction is not None and ref.jurisdiction not in (jurisdiction, "*"):
            continue
        rules = ruleset.rules(ref.id)
        entry: dict[str, Any] = {**ref.to_json(), "title": ref.title}
        items: list[dict[str, Any]] = []
        for rule in rules:
            item = rule.to_json() | {
                "actions": list(rule.spec.actions or ("collect", "access", "analyze", "transfer")),
                "effective_from": rule.effective_from.isoformat(),
                "effective_to": rule.effective_to.isoformat() if rule.effective_to else None,
            }
            if rule.spec.effect == "require":
                item["mechanisms"] = sorted(rule.mechanisms)
            items.append(item)
        entry["rules"] = items
        entry["laws"] = {k: v.model_dump(mode="json") for k, v in spec.laws.items()}
        listing.append(entry)
    if json_out:
        emit_json({"packs": listing})
        return
    for entry in listing:
        print(f"{entry['id']} {entry['version']} ({entry['jurisdiction']}) sha256:{entry['digest']}")
        print(f"  {entry['title']}")
        for listed in entry["rules"]:
            flag = "" if listed["confirmed"] else "  [not confirmed]"
            print(f"  {listed['effect']:7} {listed['id']}: {listed['citation']}{flag}")


@app.command("classify")
def classify_cmd(
    signals: Annotated[list[str] | None, typer.Option("--signal", help="A VSS path (repeatable).")] = None,
    categories: Annotated[list[str] | None, typer.Option("--category", help="A catalog category (repeatable).")] = None,
    jurisdiction: Annotated[str | None, typer.Option(help="CN, EU or US (default: all three).")] = None,
    persons: Annotated[int | None, typer.Option(help="Natural persons the dataset concerns.")] = None,
    sensitive_persons: Annotated[int | None, typer.Option(help="Persons whose sensitive data it holds.")] = None,
    vehicles: Annotated[int | None, typer.Option(help="Vehicles the dataset comes from.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Legal classes of signals or categories under each jurisdiction, at signal and dataset level."""
    if jurisdiction is not None and jurisdiction not in JURISDICTIONS:
        raise UsageError(f"unknown jurisdiction {jurisdiction!r}", hint=f"use one of {', '.join(JURISDICTIONS)}")
    if not signals and not categories:
        raise UsageError("nothing to classify", hint="give --signal Vehicle.Speed or --category location")
    for name, value in (("persons", persons), ("sensitive-persons", sensitive_persons), ("vehicles", vehicles)):
        if value is not None and value < 0:
            raise UsageError(f"--{name} cannot be negative")
    wanted = (jurisdiction,) if jurisdiction else JURISDICTIONS
    result: dict[str, Any] = {"signals": [], "datasets": []}
    found = list(categories or [])
    for path in signals or []:
        classes = {j: [c.to_json() for c in classify_signal(path, j)] for j in wanted}
        found.extend(c["category"] for c in classes[wanted[0]])
        result["signals"].append({"path": path, "jurisdictions": classes})
    for j in wanted:
        if found:
            dataset = classify_dataset(
                found, j, persons=persons, sensitive_persons=sensitive_persons, vehicles=vehicles
            ).to_json()
            result["datasets"].append(dataset)
    if json_out:
        emit_json(result)
        return
    for s in result["signals"]:
        for j, entries in s["jurisdictions"].items():
            names = "; ".join(f"{e['category']}: {', '.join(e['classes'])}" for e in entries) or "no category"
            print(f"{s['path']} [{j}] {names}")
    for d in result["datasets"]:
        names = ", ".join(f"{k} ({', '.join(v)})" for k, v in d["classes"].items())
        print(f"dataset [{d['jurisdiction']}] {names}")
        for note in d["notes"]:
            print(f"  note: {note}")
