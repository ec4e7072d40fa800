"""Accident reports for people: plots (matplotlib, Agg), self-contained HTML and a PDF, from the report content.

* :mod:`.schema` — the JSON Schema of the content ``algorithm_entry.run`` returns.
* :mod:`.inputs` — a recording file read into the inputs ``run`` takes, as a node would stage them.
* :mod:`.plots`, :mod:`.render` — figures, HTML and PDF; :mod:`.local` — ``trustlane accident report``.
"""

from .render import render_accident_html, render_accident_pdf

__all__ = ["render_accident_html", "render_accident_pdf"]
