"""Export packages: a transfer plan executed — the processed data, and a signed manifest the recipient verifies.

Layout of a package folder::

    data.parquet     the processed samples (long form: path, t_ns, value), only the signals the plan kept
    manifest.json    canonical JSON, signed by the holder: the signed plan, each file's SHA-256, each processing
                     step with its parameters and effect, the re-identification risk report, the ledger event
                     of the package with a (cosigned) checkpoint and its inclusion proof

The manifest's core (everything but ``commitment``, ``checkpoint``, ``proof`` and ``signature``) is committed
to the ledger by its SHA-256 as the ``transfer.package`` event before the manifest is signed.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trustlane.analysis.holder import Holder
from trustlane.analysis.reports import disclose
from trustlane.canonical import canonical_json
from trustlane.catalog.home import master_key
from trustlane.crypto.envelope import derive_key
from trustlane.crypto.signed_json import sign_json
from trustlane.errors import UsageError
from trustlane.ingest.readback import Series, collect_series, decrypted_segments
from trustlane.privacy import base as processors
from trustlane.transfer.plan import LATITUDE, LONGITUDE, check_plan

PACKAGE_TYPE = "trustlane/transfer-package/v1"
PROOF_FIELDS = ("commitment", "checkpoint", "proof", "signature")


def manifest_core(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k not in PROOF_FIELDS}


def core_digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(manifest_core(manifest))).hexdigest()


def signed_part(manifest: dict[str, Any], digest: str | None = None) -> dict[str, Any]:
    return {
        "core_sha256": digest or core_digest(manifest),
        **{k: manifest[k] for k in ("commitment", "checkpoint", "proof")},
    }


def _read(holder: Holder, dataset_id: str, signals: list[str]) -> Series:
    plains = (p for _, p in decrypted_segments(holder.catalog, holder.vehicles, holder.blobs, dataset_id))
    return collect_series(plains, signals)


def _location_step(series: Series, name: str, settings: dict[str, Any]) -> dict[str, Any]:
    from trustlane.privacy.location import Track

    if LATITUDE not in series or LONGITUDE not in series:
        return {"rows_in": 0, "rows_out": 0, "note": "no positions in the data"}
    (t_lat, lat), (t_lon, lon) = series[LATITUDE], series[LONGITUDE]
    common, i_lat, i_lon = np.intersect1d(t_lat, t_lon, assume_unique=False, return_indices=True)
    valid = np.isfinite(lat[i_lat]) & np.isfinite(lon[i_lon])
    track = Track.of(common[valid], lat[i_lat][valid], lon[i_lon][valid])
    result = processors.get(name).operate(track, settings)
    series[LATITUDE] = (result.t_ns, result.lat)
    series[LONGITUDE] = (result.t_ns, result.lon)
    return {"rows_in": len(track), "rows_out": len(result)}


def _risk(series: Series) -> dict[str, Any]:
    """Re-identification risk of what leaves: trajectory uniqueness when positions leave, else none located."""
    if LATITUDE not in series:
        return {"positions": 0, "assessment": "no location leaves: trajectory re-identification does not apply"}
    t, lat = series[LATITUDE]
    _, lon = series[LONGITUDE]
    cells = {(round(float(a), 2), round(float(b), 2)) for a, b in zip(lat, lon, strict=True)}
    out: dict[str, Any] = {"positions": int(t.size), "distinct_cells_0_01deg": len(cells)}
    from trustlane.privacy.location import Track

    settings = {"points": 4, "cell_m": 1000.0, "bin_s": 3600.0, "seed": 0}
    report = processors.get("risk.report").operate({"trajectories": [Track.of(t, lat, lon)]}, settings)
    out["trajectory"] = report
    out["settings"] = settings
    out["note"] = (
        "uniqueness is measured among the trajectories of this package; with a single vehicle it is 1 by "
        "construction — the residual risk is linkage with outside knowledge, which the zones, trimming and "
        "coarsening above reduce"
    )
    return out


def run_plan(holder: Holder, plan: dict[str, Any], out: Path) -> dict[str, Any]:
    """Execute ``plan`` (signed by this node) into the package folder ``out``; returns the signed manifest."""
    body = check_plan(plan, holder.node.signer.verifier.vkey)
    decision = body["decision"]["decision"]
    if decision != "allow":
        reasons = "; ".join(body["decision"].get("reasons", [])) or decision
        missing = ", ".join(body["decision"].get("missing", []))
        raise UsageError(
            f"plan {body['id']}: the transfer is {decision}: {reasons}" + (f" (missing: {missing})" if missing else ""),
            hint="supply the missing facts or mechanisms and plan again; nothing was written",
        )
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty", hint="choose a new folder for the package")
    series = _read(holder, body["dataset"], list(body["signals"]["kept"]))
    steps: list[dict[str, Any]] = []
    recipient = body["recipient"]["party"]
    vehicle_alias = None
    for step in body["steps"]:
        name, settings = step["processor"], dict(step["settings"])
        if name.startswith("location."):
            effect = _location_step(series, name, settings)
            record = processors.get(name).parameters(settings)
        elif name == "identifiers.vin":
            key = derive_key(master_key(holder.node), f"transfer-recipient/{recipient}")
            full = {**settings, "key": key}
            vin = holder.vehicles.reveal_vin(body["vehicle"])
            vehicle_alias = processors.get(name).operate([vin], full)[0]
            record = processors.get(name).parameters(full)
            effect = {"identifiers": 1}
        elif name == "image.anonymise":
            record, effect = {"processor": name, "settings": settings}, {"images": 0, "note": step["reason"]}
        else:
            record = processors.get(name).parameters(settings)
            effect = {"note": "applied to aggregates only"}
        steps.append({**record, "signals": step["signals"], "reason": step["reason"], **effect})
    risk = _risk(series)
    threshold = body.get("risk_threshold")
    if threshold is not None and "trajectory" in risk:
        unique = float(risk["trajectory"]["uniqueness"]["fraction_unique"])
        if unique > float(threshold["max_unique_fraction"]):
            raise UsageError(
                f"plan {body['id']}: after processing, {unique:.0%} of trajectories are unique from "
                f"{risk['settings']['points']} points, above the plan's limit of "
                f"{threshold['max_unique_fraction']:.0%}",
                hint="coarsen further (plan with stricter processing) or send aggregates; nothing was written",
            )
    staging = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    staging.mkdir(parents=True)
    try:
        rows = []
        for path in sorted(series):
            t, v = series[path]
            rows.append(pa.table({"path": pa.array([path] * t.size, pa.string()), "t_ns": t, "value": v}))
        table = pa.concat_tables(rows) if rows else pa.table({"path": [], "t_ns": [], "value": []})
        pq.write_table(table, staging / "data.parquet", compression="zstd")
        data = (staging / "data.parquet").read_bytes()
        manifest: dict[str, Any] = {
            "type": PACKAGE_TYPE,
            "id": "pkg_" + secrets.token_hex(8),
            "created_ns": str(time.time_ns()),
            "holder": body["holder"],
            "plan": plan,
            "vehicle": vehicle_alias,
            "files": [
                {
                    "name": "data.parquet",
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data),
                    "rows": int(table.num_rows),
                    "signals": sorted(series),
                }
            ],
            "steps": steps,
            "risk": risk,
        }
        digest = core_digest(manifest)
        log = holder.node.log
        index = log.append_event(
            {
                "type": "transfer.package",
                "package": manifest["id"],
                "plan": body["id"],
                "dataset": body["dataset"],
                "vehicle": body["vehicle"],
                "from": body["from"],
                "to": body["to"],
                "recipient": recipient,
                "sensitive": bool(body.get("sensitive")),
                "created_ns": manifest["created_ns"],
                "core_sha256": digest,
            }
        ).index
        record_ = log.publish_checkpoint()
        disclosed = disclose(log, index)
        manifest["commitment"] = disclosed.to_json()
        manifest["checkpoint"] = log.signed_checkpoint(record_).text
        manifest["proof"] = [base64.b64encode(h).decode() for h in log.inclusion_proof(index, record_.size)]
        manifest["signature"] = sign_json(holder.node.signer, "transfer-package", signed_part(manifest, digest))
        (staging / "manifest.json").write_bytes(canonical_json(manifest))
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest
