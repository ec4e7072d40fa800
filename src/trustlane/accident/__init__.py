"""Accident analysis: when a collision happened, how hard, from which side.

* :mod:`.core` — the analysis itself (filters, delta-V, regulatory time zero, pulse fits); numpy and scipy only,
  so it can run as a self-contained, hash-pinned algorithm where trustlane is not importable.
* :mod:`.load` — reads CSV, Parquet and MDF4 recordings into the arrays the core takes.
* :mod:`.analyse` — one file in, one JSON-ready result out (what ``trustlane accident detect`` prints).
* :mod:`.generator` — realistic synthetic recordings with ground truth (``trustlane sample generate``).
"""
