"""The VSS catalog trustlane names signals with: the shipped COVESA VSS subset plus the trustlane overlay.

``data/vss.csv`` is generated from COVESA VSS by ``scripts/make_vss_subset.py`` (MPL-2.0, see
``data/VSS-LICENSE``); ``data/overlay.csv`` adds the signals VSS lacks (``docs/VSS-OVERLAY.md``). Both have
the columns ``path,type,datatype,unit,min,max,allowed,description``; lines starting with ``#`` are comments.

Signals no mapping names are kept under ``Vendor.<namespace>.<source name>`` (:func:`vendor_path`).
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources

from trustlane.errors import MalformedInput

NODE_TYPES = frozenset({"branch", "sensor", "actuator", "attribute"})
COLUMNS = ("path", "type", "datatype", "unit", "min", "max", "allowed", "description")
VENDOR_ROOT = "Vendor"

_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")
_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9_]+")
_NAME_SEPARATORS = re.compile(r"[./:\\]+")


@dataclass(frozen=True)
class VssNode:
    """One catalog node. ``allowed`` lists the permitted values of an enumerated string signal."""

    path: str
    type: str
    datatype: str | None
    unit: str | None
    min: float | None
    max: float | None
    allowed: tuple[str, ...]
    description: str
    overlay: bool = False

    @property
    def is_branch(self) -> bool:
        return self.type == "branch"

    @property
    def parent(self) -> str | None:
        return self.path.rsplit(".", 1)[0] if "." in self.path else None


def parse_catalog_csv(text: str, *, source: str, overlay: bool = False) -> list[VssNode]:
    """Parse a catalog CSV (``#`` comment lines allowed); errors name ``source`` and the line."""
    lines = text.splitlines(keepends=True)
    body_start = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    reader = csv.reader(io.StringIO("".join(lines[body_start:])))
    header = next(reader, None)
    if header is None or tuple(header) != COLUMNS:
        raise MalformedInput(
            f"{source}:{body_start + 1}: header is {header}, expected {','.join(COLUMNS)}",
            hint="regenerate the subset with scripts/make_vss_subset.py, or fix the overlay header",
        )
    nodes: list[VssNode] = []
    for row in reader:
        where = f"{source}:{body_start + reader.line_num}"
        if len(row) != len(COLUMNS):
            raise MalformedInput(
                f"{where}: {len(row)} fields, expected {len(COLUMNS)}", hint="quote fields with commas"
            )
        nodes.append(_node(dict(zip(COLUMNS, row, strict=True)), where, overlay))
    return nodes


def _node(row: dict[str, str], where: str, overlay: bool) -> VssNode:
    path = row["path"]
    if not _PATH.fullmatch(path):
        raise MalformedInput(f"{where}: {path!r} is not a dotted VSS path", hint="use names like Vehicle.Speed")
    if row["type"] not in NODE_TYPES:
        raise MalformedInput(f"{where}: {path}: type {row['type']!r} is not one of {sorted(NODE_TYPES)}")
    is_branch = row["type"] == "branch"
    if is_branch == bool(row["datatype"]):
        raise MalformedInput(
            f"{where}: {path}: a {row['type']} {'must not' if is_branch else 'must'} have a datatype",
            hint="branches group signals; sensors, actuators and attributes carry a datatype",
        )
    return VssNode(
        path=path,
        type=row["type"],
        datatype=row["datatype"] or None,
        unit=row["unit"] or None,
        min=_number(row["min"], where, "min"),
        max=_number(row["max"], where, "max"),
        allowed=tuple(row["allowed"].split("|")) if row["allowed"] else (),
        description=row["description"],
        overlay=overlay,
    )


def _number(text: str, where: str, column: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise MalformedInput(f"{where}: {column} {text!r} is not a number") from None


class VssCatalog:
    """VSS nodes by path, with the overlay merged in. Immutable once built."""

    def __init__(self, nodes: Iterable[VssNode]) -> None:
        self._nodes: dict[str, VssNode] = {}
        for node in nodes:
            if node.path in self._nodes:
                first = self._nodes[node.path]
                if node.overlay and not first.overlay:
                    raise MalformedInput(
                        f"overlay defines {node.path}, which VSS already has",
                        hint="remove it from overlay.csv: trustlane uses the VSS node where one exists",
                    )
                raise MalformedInput(f"{node.path} is defined twice")
            self._nodes[node.path] = node
        for node in self._nodes.values():
            parent = node.parent
            if parent is None:
                continue
            found = self._nodes.get(parent)
            if found is None or not found.is_branch:
                raise MalformedInput(
                    f"{node.path}: its parent {parent} is {'missing' if found is None else 'not a branch'}",
                    hint="add the parent branch (overlay.csv) or include it in the subset (make_vss_subset.py)",
                )

    @classmethod
    def load(cls) -> VssCatalog:
        """The catalog shipped inside the package (VSS subset + overlay)."""
        data = resources.files("trustlane.ingest") / "data"
        vss = parse_catalog_csv((data / "vss.csv").read_text("utf-8"), source="vss.csv")
        extra = parse_catalog_csv((data / "overlay.csv").read_text("utf-8"), source="overlay.csv", overlay=True)
        return cls([*vss, *extra])

    def lookup(self, path: str) -> VssNode | None:
        return self._nodes.get(path)

    def require(self, path: str, *, where: str = "") -> VssNode:
        """The node at ``path``; a :class:`MalformedInput` naming close matches when there is none."""
        node = self._nodes.get(path)
        if node is None:
            close = difflib.get_close_matches(path, self._nodes, n=3, cutoff=0.75)
            prefix = f"{where}: " if where else ""
            raise MalformedInput(
                f"{prefix}{path} is not in the VSS catalog or the trustlane overlay",
                hint=f"did you mean {' or '.join(close)}?" if close else "see docs/VSS-OVERLAY.md for overlay paths",
            )
        return node

    def is_branch(self, path: str) -> bool:
        node = self._nodes.get(path)
        return node is not None and node.is_branch

    def is_leaf(self, path: str) -> bool:
        node = self._nodes.get(path)
        return node is not None and not node.is_branch

    def unit(self, path: str) -> str | None:
        """The VSS unit of a leaf, ``None`` for unitless signals and unknown paths."""
        node = self._nodes.get(path)
        return node.unit if node else None

    def children(self, path: str) -> tuple[VssNode, ...]:
        return tuple(n for n in self._nodes.values() if n.parent == path)

    def __contains__(self, path: object) -> bool:
        return path in self._nodes

    def __iter__(self) -> Iterator[VssNode]:
        return iter(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)


@functools.cache
def default_catalog() -> VssCatalog:
    """The shipped catalog, loaded once per process."""
    return VssCatalog.load()


def sanitise_segment(name: str) -> str:
    """A VSS-safe name segment: runs of other characters become ``_``; a leading digit gets a ``_``."""
    segment = _BAD_NAME_CHARS.sub("_", name)
    if not segment:
        return "_"
    return f"_{segment}" if segment[0].isdigit() else segment


def vendor_path(namespace: str, source_name: str) -> str:
    """``Vendor.<namespace>.<source name>`` for a signal no mapping names.

    ``.``, ``/``, ``:`` and ``\\`` in the source name become path separators (``MSG.SIGNAL`` stays two
    levels, ``/imu/accel.x`` becomes ``imu.accel.x``); other characters outside ``[A-Za-z0-9_]`` become ``_``.
    """
    if not namespace.strip():
        raise MalformedInput("the vendor namespace is empty", hint="set vendor: in the mapping file")
    parts = [sanitise_segment(p) for p in _NAME_SEPARATORS.split(source_name) if p]
    if not parts:
        raise MalformedInput(f"source name {source_name!r} has no characters to name a signal with")
    return ".".join([VENDOR_ROOT, sanitise_segment(namespace.strip()), *parts])


__all__ = [
    "VENDOR_ROOT",
    "VssCatalog",
    "VssNode",
    "default_catalog",
    "parse_catalog_csv",
    "sanitise_segment",
    "vendor_path",
]
