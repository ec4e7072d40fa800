"""Render an accident report's content as self-contained HTML (images as data URIs) and as a PDF.

Both work on the output dict alone, so a node can render the output of a signed report, and the holder-side
``trustlane accident report`` renders what it computed in-process.
"""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from trustlane.accident.report.plots import all_figures
from trustlane.accident.report.schema import restore_ns

_TEMPLATE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Accident report {{ r.case_id or "" }}</title>
<style>
body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;font-size:90%}
.note{color:#555;font-size:90%}.warn{color:#a40}img{max-width:100%}
</style></head><body>
<h1>Accident report</h1>
<table>{% for k, v in summary %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
{% if r.events %}<h2>Collisions</h2><table><tr><th>#</th><th>T0 (UTC)</th><th>contact − T0</th><th>σ</th>
<th>ΔV</th><th>max ΔV</th><th>direction</th><th>trigger / lock</th></tr>
{% for e in r.events %}<tr><td>{{ loop.index }}</td><td>{{ utc(e.t0_ns) }}</td>
<td>{{ "%.2f"|format((e.contact_ns - e.t0_ns) / 1e6) }} ms</td><td>{{ "%.2f"|format(e.contact_sigma_ms) }} ms</td>
<td>{{ "%.1f"|format(e.delta_v_kmh) }} km/h</td><td>{{ "%.1f"|format(e.max_delta_v_kmh) }} km/h</td>
<td>{{ e.direction }}</td><td>{{ e.trigger }} / {{ e.lock }}</td></tr>{% endfor %}</table>{% endif %}
{% for title, uri in images %}<h2>{{ title }}</h2><img alt="{{ title }}" src="{{ uri }}">{% endfor %}
{% if r.pre_crash_control %}<h2>Who was in control, T0 − 10 s … T0</h2>
<table><tr><th>state</th><th>level</th><th>began (between)</th><th>ended (between)</th></tr>
{% for i in r.pre_crash_control.intervals %}<tr><td>{{ i.state }}</td><td>{{ i.level or "" }}</td>
<td>{{ rel(i.start.after_ns) }} … {{ rel(i.start.by_ns) }}</td>
<td>{{ rel(i.end.after_ns) }} … {{ rel(i.end.by_ns) }}</td></tr>
{% endfor %}</table>
<p>At T0 − 10 s: <b>{{ r.pre_crash_control.at_start.state }}</b>; at T0: <b>{{ r.pre_crash_control.at_end.state }}</b>
{% if not r.pre_crash_control.at_end.certain %}<span class="warn">(not certain from the samples)</span>{% endif %}.
Times relative to T0, in seconds; a change is known only to lie between two status samples.</p>{% endif %}
{% if r.automation.transition_demands %}<h2>Transition demands</h2><table>
<tr><th>start</th><th>type</th><th>outcome</th><th>latency (s)</th><th>channel</th></tr>
{% for d in r.automation.transition_demands %}<tr><td>{{ rel(d.start.by_ns) }}</td><td>{{ d.type }}</td>
<td>{{ d.outcome }}</td>
<td>{% if d.response %}{{ d.response.latency_s[0] }} … {{ d.response.latency_s[1] }}{% endif %}</td>
<td>{% if d.response %}{{ d.response.channel }}{% endif %}</td></tr>{% endfor %}</table>{% endif %}
{% if r.liability %}{% set L = r.liability %}<h2>Liability indication (non-binding)</h2>
<p class="note">{{ L.statement }}</p>
{% if L.indication.determinable %}<p>System side (automaker): <b>{{ L.indication.system_side }}</b>;
driver: <b>{{ L.indication.driver_side }}</b> (basis: {{ L.indication.basis }}).</p>
{% else %}<p class="warn">Not determinable from the data: {{ L.indication.reason }}</p>{% endif %}
<ol>{% for s in L.reasoning %}<li>{% if s.decisive %}<b>{% endif %}{{ s.finding }}{% if s.decisive %}</b>{% endif %}
— <i>{{ s.citation }}</i>: {{ s.rule_text }}</li>{% endfor %}</ol>
<h3>What the data cannot establish</h3><ul>{% for c in L.cannot_establish %}<li>{{ c }}</li>{% endfor %}</ul>
{% endif %}
{% if r.learned %}<h2>Learned-model cross-check</h2><table>{% for k, v in r.learned.items() %}
<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>{% endif %}
<h2>Data quality</h2><ul>{% for f in r.findings %}<li class="{{ 'warn' if f.severity != 'info' else '' }}">
{{ f.severity }}: {{ f.code }} — {{ f.message }}</li>{% else %}<li>no findings</li>{% endfor %}</ul>
<h2>Digests</h2><table>{% for k, v in r.digests.items() %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
</body></html>
"""
)


def utc(t_ns: int | None) -> str:
    if t_ns is None:
        return "—"
    stamp = datetime.fromtimestamp(t_ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp}.{t_ns % 1_000_000_000:09d} UTC"


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The headline facts as (label, text) rows, shared by HTML and PDF."""
    rows = [
        ("Case", str(report.get("case_id") or "—")),
        ("Vehicle (pseudonym)", str(report.get("vehicle") or "—")),
        ("Clock source", str(report.get("clock_source") or "not stated")),
        ("Collision", "yes" if report["collision"] else "none found"),
    ]
    if report["collision"]:
        first = report["events"][0]
        rows += [
            ("T0 (49 CFR 563 / GB 39732)", utc(report["t0_ns"])),
            ("Contact", f"{utc(report['contact_ns'])} ± {report['contact_sigma_ms']:.2f} ms"),
            ("ΔV / max ΔV", f"{first['delta_v_kmh']:.1f} km/h / {first['max_delta_v_kmh']:.1f} km/h"),
            ("Direction", str(first["direction"])),
        ]
        control = report.get("pre_crash_control") or {}
        if control:
            rows.append(("In control at T0", str(control["at_end"]["state"])))
        indication = (report.get("liability") or {}).get("indication") or {}
        if indication.get("determinable"):
            rows.append(
                (
                    "Liability indication (non-binding)",
                    f"system side {indication['system_side']}, driver {indication['driver_side']}",
                )
            )
        elif indication:
            rows.append(("Liability indication (non-binding)", "not determinable from the data"))
    return rows


def png_data_uri(fig: Figure) -> str:
    """A figure as a PNG data URI (for self-contained pages)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def render_accident_html(output: dict[str, Any], figures: list[tuple[str, Figure]] | None = None) -> str:
    output = restore_ns(output)
    """Self-contained HTML (no scripts, no external resources) of an accident report's content."""
    t0 = output.get("t0_ns")

    def rel(t_ns: int | None) -> str:
        return "—" if t_ns is None or t0 is None else f"{(t_ns - t0) / 1e9:+.2f}"

    made = figures if figures is not None else all_figures(output)
    images = [(title, png_data_uri(fig)) for title, fig in made]
    return _TEMPLATE.render(r=output, summary=summary_rows(output), images=images, utc=utc, rel=rel)


def _text_page(lines: list[str], title: str) -> Figure:
    fig = Figure(figsize=(8.27, 11.69))
    fig.text(0.06, 0.96, title, fontsize=14, weight="bold", va="top")
    # The lines come wrapped to 100 characters, which fit the page in 8 pt monospace; matplotlib's own
    # wrapping would measure the text word by word (about half a second) to change nothing.
    fig.text(0.06, 0.92, "\n".join(lines), fontsize=8, va="top", family="monospace")
    return fig


def _wrapped(text: str, width: int = 100) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [""]


def _summary_lines(output: dict[str, Any]) -> list[str]:
    lines = [w for k, v in summary_rows(output) for w in _wrapped(f"{k}: {v}")]
    liability = output.get("liability")
    if liability:
        lines += ["", "Liability indication — NON-BINDING", *_wrapped(liability["statement"])]
        for step in liability["reasoning"]:
            lines += _wrapped(f"{step['step']}. {step['finding']} [{step['citation']}]")
        lines += ["", "What the data cannot establish:"]
        lines += [w for item in liability["cannot_establish"] for w in _wrapped(f"- {item}")]
    lines += ["", "Data-quality findings:"]
    lines += [w for f in output["findings"] for w in _wrapped(f"- {f['severity']}: {f['code']}: {f['message']}")]
    return lines[:110]


def render_accident_pdf(output: dict[str, Any], path: Path, figures: list[tuple[str, Figure]] | None = None) -> None:
    output = restore_ns(output)
    """A PDF: a summary page (text), then one page per plot."""
    made = figures if figures is not None else all_figures(output)
    with PdfPages(path, metadata={"Title": f"Accident report {output.get('case_id') or ''}".strip()}) as pdf:
        pdf.savefig(_text_page(_summary_lines(output), "Accident report"))
        for _, fig in made:
            pdf.savefig(fig)
