"""``trustlane accident report FILE --out DIR``: the holder-side report, computed in-process (no sandbox).

Reads the recording, stages it as a node would (:mod:`.inputs`), runs the same ``run()`` as the sandboxed
algorithm and writes ``report.json``, ``report.html`` and ``report.pdf``, each atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from trustlane.accident import algorithm_entry
from trustlane.accident.core.errors import SignalError
from trustlane.accident.core.liability import RuleError
from trustlane.accident.report.inputs import file_sha256, recording_inputs
from trustlane.accident.report.plots import all_figures
from trustlane.accident.report.render import render_accident_html, render_accident_pdf
from trustlane.errors import MalformedInput, UsageError

FILES = ("report.json", "report.html", "report.pdf")


def analyse_for_report(
    path: Path,
    *,
    case_id: str | None = None,
    vehicle: str | None = None,
    clock_source: str | None = None,
    rule_sets: list[str] | None = None,
) -> dict[str, Any]:
    """The report content for one recording file."""
    inputs, metadata, unit_findings = recording_inputs(path)
    params: dict[str, Any] = {
        "case_id": case_id or path.stem,
        "vehicle": vehicle,
        "clock_source": clock_source or metadata.get("clock_source"),
        "input_digests": {"file": path.name, "sha256": file_sha256(path)},
    }
    if rule_sets:
        params["rule_sets"] = rule_sets
    try:
        output = algorithm_entry.run(inputs, params)
    except SignalError as exc:
        raise MalformedInput(f"{path}: {exc.message}", hint=exc.hint) from None
    except RuleError as exc:
        raise UsageError(str(exc), hint="rule sets shipped: unece, china, cn-shenzhen") from None
    output["findings"] = [f.to_json() for f in unit_findings] + output["findings"]
    return output


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_report(output: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write the three report files into ``out`` (created if needed); returns their paths."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder", hint="give a folder for --out")
    out.mkdir(parents=True, exist_ok=True)
    figures = all_figures(output)
    text = json.dumps(output, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    html = render_accident_html(output, figures)
    paths = {name: out / name for name in FILES}
    _atomic_write(paths["report.json"], lambda p: p.write_text(text, encoding="utf-8"))
    _atomic_write(paths["report.html"], lambda p: p.write_text(html, encoding="utf-8"))
    _atomic_write(paths["report.pdf"], lambda p: render_accident_pdf(output, p, figures))
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return paths
