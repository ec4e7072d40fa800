"""Reports rendered for people: one self-contained HTML page (no scripts, no external resources)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

_env = Environment(
    loader=PackageLoader("trustlane.analysis", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(ns: Any) -> str:
    try:
        value = int(ns)
    except (TypeError, ValueError):
        return "—"
    return datetime.fromtimestamp(value / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_env.filters["when"] = _when
_env.filters["pretty"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def render_report_html(report: dict[str, Any], verification: dict[str, Any] | None = None) -> str:
    """The report as an HTML page; ``verification`` (from verify_report) adds a verified banner."""
    policy = report["contract"]["policy"]
    checkpoint_lines = str(report["checkpoint"]).split("\n")
    return _env.get_template("report.html.j2").render(
        r=report,
        policy=policy,
        checkpoint_size=checkpoint_lines[1] if len(checkpoint_lines) > 1 else "?",
        verification=verification,
    )
