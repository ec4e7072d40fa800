"""`trustlane demo`: the closed loop end to end on loopback, through the same code paths users use.

1. nodes for an automaker (holder), an inspection agency, an insurer and a court, each with its own home and
   keys; the court runs a witness (`trustlane witness serve`) in its own process;
2. a fleet day from the scenario generator — a crash under L2 with a driver override, a crash under L3 after a
   takeover request, and a commute with GNSS positions — ingested at the holder as MDF4 and CSV, every segment
   committed and every checkpoint cosigned by the court;
3. the holder pins and approves the accident algorithm and grants the agency a contract per case; the holder's
   API runs in its own process (`trustlane serve`); the agency accepts and requests the analyses over HTTP;
   the holder runs them in the sandbox; the signed reports reach the agency and the insurer;
4. the insurer and the court verify the reports offline with public keys only;
5. a cross-border transfer of the commute from the CN holder to the EU insurer: the decision with citations,
   the processing it requires, the export package, and its offline verification;
6. an offline proof bundle of one ingest event, as anyone could ask for.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trustlane.analysis.contracts import Grant
from trustlane.analysis.holder import Holder
from trustlane.analysis.reports import report_bytes
from trustlane.analysis.verify import verify_report
from trustlane.canonical import canonical_json
from trustlane.client import NodeClient
from trustlane.crypto.keys import NOTE_KEY, write_private_key
from trustlane.crypto.note import Ed25519Signer, parse_vkey
from trustlane.errors import VerificationError
from trustlane.ingest.pipeline import IngestOptions, Ingestor
from trustlane.ingest.readers.samples import write_csv
from trustlane.ledger.policy import Policy
from trustlane.ledger.proofs import TlogProof
from trustlane.node import Node
from trustlane.ops.subprocess_server import free_port, trustlane_server

Step = Callable[[str], None]
S = 1_000_000_000
CASES = (("l2-override", "1HGCM82633A004352"), ("l3-takeover", "WVWZZZ1JZXW000001"))
COMMUTE_VIN = "1M8GDM9AXKP042788"
AGENCY, INSURER, COURT = "cn-inspection-agency", "eu-insurer", "court"


@dataclass
class DemoResult:
    workdir: Path
    events: int = 0
    checkpoint_size: int = 0
    cosigned_by: list[str] = field(default_factory=list)
    bundle: Path | None = None
    policy: Path | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)
    transfer: dict[str, Any] = field(default_factory=dict)
    holder_vkey: Path | None = None
    witness_vkey: Path | None = None
    isolated: bool = True
    console_token: str = ""
    seconds: float = 0.0


def _party_key(home: Path, name: str) -> Ed25519Signer:
    """A party's own identity, kept in its own node home."""
    signer = Ed25519Signer.generate(name)
    write_private_key(home / "keys" / "party.key", name, NOTE_KEY, signer.private_key)
    (home / "keys" / "party.vkey").write_text(signer.verifier.vkey + "\n")
    return signer


def commute(path: Path, seed: int) -> Path:
    """A commute with 1 Hz GNSS: parked at home, a drive across town, parked at work (CSV, VSS names)."""
    rng = np.random.default_rng(seed)
    t = 1_750_000_000 * S + np.arange(0, 1800 * S, S, dtype=np.int64)
    n, parked = t.size, 600
    ramp = np.linspace(0, 1, n - 2 * parked) ** 1.1
    home = (31.2304 + rng.uniform(-0.02, 0.02), 121.4737 + rng.uniform(-0.02, 0.02))
    lat = home[0] + 0.06 * np.concatenate([np.zeros(parked), ramp, np.ones(parked)]) + rng.normal(0, 2e-5, n)
    lon = home[1] + 0.09 * np.concatenate([np.zeros(parked), ramp, np.ones(parked)]) + rng.normal(0, 2e-5, n)
    speed = np.concatenate(
        [np.zeros(parked), np.clip(45 + 15 * np.sin(np.arange(n - 2 * parked) / 40), 0, None), np.zeros(parked)]
    )
    return write_csv(
        path,
        {
            "Vehicle.Speed": (t, np.round(speed, 2), "km/h"),
            "Vehicle.CurrentLocation.Latitude": (t, lat, "degrees"),
            "Vehicle.CurrentLocation.Longitude": (t, lon, "degrees"),
        },
    )


def _accident_algorithm(dest: Path) -> tuple[Path, str]:
    """The accident analysis package when it can be built, else the shipped driving summary."""
    try:
        build = importlib.import_module("trustlane.accident.package").build_algorithm_package
        return Path(build(dest / "accident-analysis")), "accident-analysis"
    except (ImportError, AttributeError):
        from trustlane.algorithms import builtin_path

        return builtin_path("driving-summary"), "driving-summary"


def run_demo(workdir: Path, seed: int, step: Step) -> DemoResult:
    from trustlane.accident.generator.recording import generate
    from trustlane.accident.generator.writer import write as write_recording
    from trustlane.analysis.sandbox import sandbox_problem
    from trustlane.transfer.package import run_plan
    from trustlane.transfer.plan import PlanRequest, build_plan
    from trustlane.transfer.verify import verify_package

    began = time.monotonic()
    result = DemoResult(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    homes = {name: workdir / name for name in ("holder", "agency", "insurer", "court")}
    env = {k: v for k, v in os.environ.items() if k != "TRUSTLANE_HOME"}
    problem = sandbox_problem()
    if problem is not None:
        result.isolated = False
        env["TRUSTLANE_DEV_ALLOW_UNISOLATED"] = "1"
        step(f"WARNING no sandbox here ({problem}); the demo runs algorithms UNISOLATED — install bubblewrap")

    step("creating the holder, agency, insurer and court nodes, each with its own keys")
    holder_node = Node.init(homes["holder"], origin=f"holder.trustlane.example/demo-{seed}")
    signers = {}
    for role, name in (("agency", AGENCY), ("insurer", INSURER), ("court", COURT)):
        with Node.init(homes[role], origin=f"{role}.trustlane.example/demo-{seed}") as node:
            if role == "court":
                node.trust_log(holder_node.log_verifier.vkey)
                witness_vkey = node.cosigner.verifier.vkey
        signers[role] = _party_key(homes[role], name)
    result.holder_vkey = workdir / "holder.vkey"
    result.holder_vkey.write_text(holder_node.log_verifier.vkey + "\n")
    result.witness_vkey = workdir / "court-witness.vkey"
    result.witness_vkey.write_text(witness_vkey + "\n")

    witness_port = free_port()
    witness_url = f"http://127.0.0.1:{witness_port}"
    step(f"the court's witness listens on {witness_url}")
    witness_args = ["witness", "serve", "--home", str(homes["court"]), "--port", str(witness_port)]
    with trustlane_server(witness_args, witness_url, env):
        holder_node.add_witness(COURT, witness_url, witness_vkey)
        data = workdir / "fleet"
        step("generating a fleet day: an L2 crash, an L3 crash, a commute with GNSS")
        files: dict[str, tuple[Path, str]] = {}
        for scenario, vin in CASES:
            recording = generate(scenario, seed, 60.0)
            written = write_recording(recording, data, ("mdf4",))
            files[scenario] = (data / written["mdf4"], vin)
        files["commute"] = (commute(data / "commute.csv", seed), COMMUTE_VIN)

        with Holder(holder_node) as holder:
            step("ingesting at the holder: classified, encrypted, committed, cosigned by the court")
            ingestor = Ingestor(holder_node.log, holder.catalog, holder.vehicles, holder.blobs)
            datasets: dict[str, str] = {}
            for label, (path, vin) in files.items():
                holder.vehicles.register(vin)
                datasets[label] = ingestor.ingest([path], vin, IngestOptions())[0]["dataset"]
            record = holder_node.log.publish_checkpoint()
            result.checkpoint_size = record.size
            result.cosigned_by = [c.witness for c in holder_node.store.cosignatures(record.size)]
            if not result.cosigned_by:
                raise VerificationError("the court's witness did not cosign the holder's checkpoint")

            package_dir, algorithm = _accident_algorithm(workdir / "algorithms")
            step(f"pinning and approving the {algorithm} algorithm; granting the agency one contract per case")
            holder.algorithms.register(package_dir, algorithm, "1.0.0")
            holder.algorithms.approve(algorithm, "1.0.0", holder_node.signer, "holder")
            for role, name in (("agency", AGENCY), ("insurer", INSURER), ("court", COURT)):
                holder.parties.add(name, role, signers[role].verifier.vkey)
            holder.parties.add("oem-staff", "holder")  # the holder's own people, for the console
            result.console_token = holder.parties.issue_token("oem-staff", "demo console", days=7).token
            contracts = {
                scenario: holder.contracts.grant(
                    Grant(
                        AGENCY,
                        [datasets[scenario]],
                        [f"{algorithm}@1.0.0"],
                        "accident-liability",
                        max_runs=3,
                        recipients=(INSURER, COURT),
                    )
                ).id
                for scenario, _ in CASES
            }
            result.events = holder_node.store.tree_size()
            _ingest_bundle(holder_node, holder, datasets["l3-takeover"], witness_vkey, workdir, result)
        holder_node.close()

        api_port = free_port()
        api_url = f"http://127.0.0.1:{api_port}"
        step(f"the holder's API listens on {api_url}; the agency asks for the analyses over HTTP")
        serve_args = ["serve", "--home", str(homes["holder"]), "--port", str(api_port)]
        with trustlane_server(serve_args, api_url + "/health", env):
            reports_dir = homes["agency"] / "reports"
            reports_dir.mkdir()
            with NodeClient(api_url, signer=signers["agency"]) as agency:
                for scenario, _ in CASES:
                    agency.accept(contracts[scenario])
                    outcome, report = agency.run_analysis(contracts[scenario], {"case_id": f"demo-{seed}-{scenario}"})
                    if report is None:
                        raise VerificationError(
                            f"the {scenario} analysis ended {outcome['status']}: {outcome['reason']}"
                        )
                    path = reports_dir / f"{scenario}.json"
                    path.write_bytes(report_bytes(report))
                    _render(report, path)
                    result.reports.append({"case": scenario, "report": report["id"], "file": str(path)})
            step("the insurer fetches the reports; insurer and court verify them offline")
            with NodeClient(api_url, signer=signers["insurer"]) as insurer:
                for entry in result.reports:
                    fetched = report_bytes(insurer.report(entry["report"]))
                    (homes["insurer"] / f"{entry['case']}.json").write_bytes(fetched)
                    for verifier in ("insurer", "court"):
                        verified = verify_report(fetched, holder_node.log_verifier.vkey, [witness_vkey], 1)
                        entry[f"verified_by_{verifier}"] = verified.checks
                    entry["output"] = json.loads(fetched)["output"]

        step("planning the commute's transfer from CN to the EU insurer: decision, processing, package")
        with Node.open(homes["holder"]) as node, Holder(node) as holder:
            plan = build_plan(
                holder,
                PlanRequest(
                    datasets["commute"],
                    "EU",
                    INSURER,
                    "usage-based insurance pricing",
                    "CN",
                    ciio=False,
                    important_data_notified=False,
                ),
            )
            plan_path = workdir / "transfer-plan.json"
            plan_path.write_bytes(canonical_json(plan))
            if plan["decision"]["decision"] != "allow":
                raise VerificationError(f"the demo transfer was not allowed: {plan['decision']['reasons']}")
            package = homes["insurer"] / "transfer-package"
            run_plan(holder, plan, package)
        verified_package = verify_package(package, holder_node.log_verifier.vkey, [witness_vkey], 1)
        result.transfer = {
            "plan": str(plan_path),
            "package": str(package),
            "decision": plan["decision"]["decision"],
            "rules": [f"{r['id']} ({r.get('citation')})" for r in plan["decision"]["rules"]],
            "steps": verified_package["steps"],
        }
    result.seconds = time.monotonic() - began
    return result


def _render(report: dict[str, Any], path: Path) -> None:
    """HTML (and PDF, for accident reports) beside the signed JSON."""
    from trustlane.analysis.render import render_report_html

    path.with_suffix(".html").write_text(render_report_html(report), encoding="utf-8")
    try:
        render_pdf = importlib.import_module("trustlane.accident.report").render_accident_pdf
    except (ImportError, AttributeError):
        return
    render_pdf(report["output"], path.with_suffix(".pdf"))


def _ingest_bundle(
    node: Node, holder: Holder, dataset: str, witness_vkey: str, workdir: Path, result: DemoResult
) -> None:
    """An offline proof bundle of one ingest event and the trust policy, as a court could ask for."""
    record = node.log.publish_checkpoint()
    signed = node.log.signed_checkpoint(record)
    segment = holder.catalog.segments(dataset_id=dataset)[0]
    entry = node.store.entry(segment.ledger_index)
    secret = node.store.event_secret(segment.ledger_index)
    assert entry is not None and secret is not None and secret.event and secret.salt
    path = tuple(node.log.inclusion_proof(segment.ledger_index, record.size))
    bundle = TlogProof(segment.ledger_index, path, signed.text, extra=entry.data)
    policy = Policy.simple(node.log_verifier, [(COURT, parse_vkey(witness_vkey))], 1)
    result.bundle = workdir / "event.tlog-proof"
    result.policy = workdir / "trust.policy"
    result.bundle.write_text(bundle.format())
    result.policy.write_text(policy.format())
    (workdir / "event.json").write_text(
        json.dumps({"event": json.loads(secret.event), "salt": secret.salt.hex()}, indent=2)
    )


def clean(workdir: Path) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
