"""A report as the console shows it: the result without its plots, the plots as images, and how to verify it.

Later analyses carry plots in ``output.plots`` as ``{name: data URI}``. Only base64 PNG, JPEG and SVG images
are shown, as ``<img>`` (an SVG shown that way runs no script); anything else is listed as not shown.
"""

from __future__ import annotations

import base64
import binascii
import re
import shlex
from dataclasses import dataclass
from typing import Any

from trustlane.node import Node

_IMAGE_URI = re.compile(r"data:image/(png|jpeg|svg\+xml);base64,([A-Za-z0-9+/]+={0,2})")
MAX_PLOT_CHARS = 8 << 20


@dataclass(frozen=True)
class Plot:
    name: str
    uri: str | None  # None: not a displayable image
    problem: str | None = None


def _plot(name: str, value: Any) -> Plot:
    if not isinstance(value, str):
        return Plot(name, None, "not a data URI")
    if len(value) > MAX_PLOT_CHARS:
        return Plot(name, None, f"larger than {MAX_PLOT_CHARS} characters")
    match = _IMAGE_URI.fullmatch(value)
    if match is None:
        return Plot(name, None, "not a base64 PNG, JPEG or SVG data URI")
    try:
        base64.b64decode(match.group(2), validate=True)
    except binascii.Error:
        return Plot(name, None, "its base64 does not decode")
    return Plot(name, value)


ACCIDENT_FORMAT = "trustlane/accident-report/v1"


def _accident_plots(output: dict[str, Any]) -> list[Plot]:
    """Accident reports carry figures' data, not images: the node draws them (pulse, pre-crash, automation)."""
    from trustlane.accident.report.plots import all_figures
    from trustlane.accident.report.render import png_data_uri

    return [_plot(name, png_data_uri(figure)) for name, figure in all_figures(output)]


def split_output(output: Any) -> tuple[Any, list[Plot]]:
    """(the output without ``plots``, the plots)."""
    if isinstance(output, dict) and output.get("format") == ACCIDENT_FORMAT:
        return output, _accident_plots(output)
    if not isinstance(output, dict) or not isinstance(output.get("plots"), dict):
        return output, []
    rest = {k: v for k, v in output.items() if k != "plots"}
    return rest, [_plot(str(name), value) for name, value in sorted(output["plots"].items())]


def flat_result(output: Any) -> list[tuple[str, Any]] | None:
    """Scalar fields as rows when the output is a flat object; None when it needs the JSON view."""
    if not isinstance(output, dict) or not all(isinstance(v, str | int | float | bool) for v in output.values()):
        return None
    return sorted(output.items())


def verify_command(node: Node, report_id: str) -> str:
    """The offline check a recipient runs on the downloaded file, with this node's keys spelled out."""
    parts = ["trustlane", "report", "verify", f"{report_id}.json", "--trust", node.log_verifier.vkey]
    for witness in node.config.witnesses:
        parts += ["--witness", witness.vkey]
    return shlex.join(parts)
