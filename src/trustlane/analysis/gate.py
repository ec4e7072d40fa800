"""The output gate: what an algorithm returns leaves the node only if it is small, typed and free of raw data.

:func:`check_output` lists every problem (an empty list passes), each starting with the JSON path it concerns:

* the output must be plain JSON (dict/list/str/finite numbers/bool/null) of at most ``max_bytes`` (compact UTF-8);
* it must satisfy the algorithm's declared output schema (JSON Schema draft 2020-12);
* no numeric array may hold more than :data:`MAX_NUMERIC_ARRAY` numbers;
* no sequence of numbers may reproduce :data:`MIN_RUN` or more consecutive samples of an input series (values or
  timestamps), exactly, rounded to any decimal precision, under a common unit conversion or scaling, or relative
  to the series' first sample. Sequences are read from lists, from columns of lists of lists and lists of objects,
  from numbers written inside strings, and from base64, hex or byte lists decoded as packed float/int arrays;
* no string (value or key) may hold a VIN-like token (ISO 3779), one of the node's identifiers (case- and
  spacing-insensitive, also inside longer strings and decoded blobs) or a licence-plate-like string.

The reasons for the thresholds are in docs/SANDBOX.md ("Output gate").
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
from jsonschema.validators import Draft202012Validator

from trustlane.analysis.sandbox import InputSeries

MAX_NUMERIC_ARRAY = 2000
MIN_RUN = 8
MIN_DISTINCT = 3
MAX_SCHEMA_PROBLEMS = 20
MAX_DEPTH = 64
_BLOCK = MIN_RUN // 2
_MAX_ANCHOR_CANDIDATES = 500_000
_RELATIVE_SLACK = 5e-16  # about 3 ulp: float arithmetic of conversions and int64 -> float64
_FLOAT32_SLACK = 1.2e-7
_MIN_BLOB_CHARS = 4 * MIN_RUN
_NUMBER_IN_TEXT = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")
_HEX = re.compile(r"^(?:0x)?[0-9a-fA-F]+$")
_VIN = re.compile(r"(?<![A-Z0-9])[A-HJ-NPR-Z0-9]{17}(?![A-Z0-9])")
_PLATES = (
    ("French/Italian", re.compile(r"(?<![A-Z0-9])[A-Z]{2}[- ]\d{3}[- ]?[A-Z]{2}(?![A-Z0-9])")),
    ("German", re.compile(r"(?<![A-Z0-9])[A-ZÄÖÜ]{1,3}[- ][A-Z]{1,2}[- ]\d{1,4}[EH]?(?![A-Z0-9])")),
    ("British", re.compile(r"(?<![A-Z0-9])[A-Z]{2}\d{2} ?[A-Z]{3}(?![A-Z0-9])")),
    ("Spanish", re.compile(r"(?<![A-Z0-9])\d{4}[- ]?[B-DF-HJ-NP-TV-Z]{3}(?![A-Z0-9])")),
    ("Dutch", re.compile(r"(?<![A-Z0-9])(?:[A-Z]{2}-\d{2,3}-[A-Z]{1,2}|\d{1,2}-[A-Z]{2,3}-\d{1,3})(?![A-Z0-9])")),
)
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
# (name, scale, offset): the output holds scale * x + offset. Unit conversions common in vehicle data.
_TRANSFORMS: tuple[tuple[str, float, float], ...] = (
    ("exact or rounded", 1.0, 0.0),
    ("negated", -1.0, 0.0),
    ("x3.6 (m/s to km/h)", 3.6, 0.0),
    ("/3.6 (km/h to m/s)", 1 / 3.6, 0.0),
    ("km to miles", 0.621371192, 0.0),
    ("miles to km", 1.609344, 0.0),
    ("m/s to mph", 2.236936292, 0.0),
    ("Celsius to Fahrenheit", 1.8, 32.0),
    ("Celsius to kelvin", 1.0, 273.15),
    ("kelvin to Celsius", 1.0, -273.15),
    *((f"scaled by 1e{e}", 10.0**e, 0.0) for e in (-9, -6, -3, -2, -1, 1, 2, 3, 6, 9)),
)


def json_path(parts: Iterable[str | int]) -> str:
    """``$.a[3].b``-style path; keys that are not identifiers are quoted."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "*":
            out += "[*]"
        elif part.isidentifier():
            out += f".{part}"
        else:
            out += "[" + json.dumps(part) + "]"
    return out


# --- structure ------------------------------------------------------------------------------------------------------


def _json_problems(node: object, path: list[str | int], depth: int = 0) -> Iterator[str]:
    if depth > MAX_DEPTH:
        yield f"{json_path(path)}: nested deeper than {MAX_DEPTH} levels"
    elif isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                yield f"{json_path(path)}: has a key of type {type(key).__name__}; JSON keys are strings"
            else:
                yield from _json_problems(value, [*path, key], depth + 1)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _json_problems(value, [*path, index], depth + 1)
    elif isinstance(node, float):
        if not math.isfinite(node):
            yield f"{json_path(path)}: {node} is not a JSON number"
    elif node is not None and not isinstance(node, str | int | bool):
        yield f"{json_path(path)}: a {type(node).__name__} is not JSON"


def _schema_problems(output: object, schema: Mapping[str, Any]) -> list[str]:
    validator = Draft202012Validator(schema)
    problems: list[str] = []
    for error in sorted(validator.iter_errors(output), key=lambda e: [str(p) for p in e.absolute_path]):
        if len(problems) == MAX_SCHEMA_PROBLEMS:
            problems.append(f"$: more than {MAX_SCHEMA_PROBLEMS} schema problems; the rest are not listed")
            break
        expected = error.validator_value
        shown = json.dumps(expected) if isinstance(expected, str | int | float | bool) else ""
        if isinstance(expected, list) and len(json.dumps(expected)) <= 80:
            shown = json.dumps(expected)
        detail = f" ({error.validator} {shown})" if shown else f" ({error.validator})"
        problems.append(f"{json_path(list(error.absolute_path))}: does not match the output schema{detail}")
    return problems


# --- number sequences -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sequence:
    path: str
    values: np.ndarray[Any, np.dtype[np.float64]]
    tolerance: np.ndarray[Any, np.dtype[np.float64]]
    origin: str = ""


def _half_unit(text: str) -> float:
    """Half a unit of the last significant digit of a number as written: "12.35" -> 0.005, "1200" -> 50."""
    try:
        exponent = Decimal(text).normalize().as_tuple().exponent
    except InvalidOperation:
        return 0.0
    return 0.5 * 10.0 ** int(exponent) if isinstance(exponent, int) else 0.0


def _as_text(number: int | float) -> str:
    return str(number) if isinstance(number, int) else repr(number)


def _sequence(path: str, numbers: list[int | float], origin: str = "", slack: float = 0.0) -> _Sequence:
    values = np.array([float(n) for n in numbers], dtype=np.float64)
    half = np.array([_half_unit(_as_text(n)) for n in numbers], dtype=np.float64)
    tolerance = np.maximum(half, np.abs(values) * slack)
    return _Sequence(path, values, tolerance, origin)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _packed_arrays(raw: bytes, path: str, origin: str) -> Iterator[_Sequence]:
    for dtype, slack in (("<f8", 0.0), ("<f4", _FLOAT32_SLACK), ("<i8", 0.0), ("<i4", 0.0), ("<i2", 0.0),
                         (">f8", 0.0), (">f4", _FLOAT32_SLACK)):  # fmt: skip
        size = np.dtype(dtype).itemsize
        if len(raw) < size * MIN_RUN:
            continue
        array = np.frombuffer(raw[: len(raw) - len(raw) % size], dtype=dtype).astype(np.float64)
        finite = array[np.isfinite(array)]
        if len(finite) >= MIN_RUN:
            yield _sequence(path, finite.tolist(), f"{origin} as {dtype}", slack)


def _decode_blob(text: str) -> bytes | None:
    stripped = "".join(text.split())
    if len(stripped) < _MIN_BLOB_CHARS:
        return None
    if _HEX.match(stripped):
        digits = stripped[2:] if stripped.startswith("0x") else stripped
        if len(digits) % 2 == 0:
            return bytes.fromhex(digits)
    if _BASE64.match(stripped):
        padded = stripped + "=" * (-len(stripped) % 4)
        try:
            return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


def _string_sequences(text: str, path: str) -> Iterator[_Sequence]:
    found = _NUMBER_IN_TEXT.findall(text)
    if len(found) >= MIN_RUN:
        numbers: list[int | float] = [float(n) if any(c in n for c in ".eE") else int(n) for n in found]
        half = [_half_unit(n) for n in found]
        seq = _sequence(path, numbers, "numbers in text")
        yield _Sequence(path, seq.values, np.maximum(seq.tolerance, np.array(half)), "numbers in text")
    blob = _decode_blob(text)
    if blob is not None:
        yield from _packed_arrays(blob, path, "decoded text")
        decoded = blob.decode("utf-8", "ignore")
        found = _NUMBER_IN_TEXT.findall(decoded)
        if len(found) >= MIN_RUN:
            yield _sequence(path, [float(n) for n in found], "numbers in decoded text")


def _list_sequences(items: list[Any], parts: list[str | int]) -> Iterator[_Sequence]:
    path = json_path(parts)
    numbers = [v for v in items if _is_number(v)]
    if numbers:
        yield _sequence(path, numbers)
        if len(numbers) >= 8 * MIN_RUN and all(isinstance(v, int) and 0 <= v <= 255 for v in numbers):
            yield from _packed_arrays(bytes(numbers), path, "byte list")
    rows = [v for v in items if isinstance(v, list)]
    if len(rows) >= MIN_RUN:
        width = max(len(r) for r in rows)
        for column in range(min(width, 64)):
            cells = [r[column] for r in rows if len(r) > column and _is_number(r[column])]
            if len(cells) >= MIN_RUN:
                yield _sequence(json_path([*parts, "*", column]), cells)
    records = [v for v in items if isinstance(v, dict)]
    if len(records) >= MIN_RUN:
        keys = {k for r in records for k in r}
        for key in sorted(keys)[:256]:
            cells = [r[key] for r in records if _is_number(r.get(key))]
            if len(cells) >= MIN_RUN:
                yield _sequence(json_path([*parts, "*", key]), cells)


class _Key(str):
    """A dict key met while walking: it can carry data too, but its path is its object's (it may be a VIN)."""


def _walk(node: object, parts: list[str | int]) -> Iterator[tuple[list[str | int], object]]:
    yield parts, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield parts, _Key(key)
            yield from _walk(value, [*parts, key])
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, [*parts, index])


# --- matching against the inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    label: str
    values: np.ndarray[Any, np.dtype[np.float64]]
    order: np.ndarray[Any, np.dtype[np.intp]]
    sorted_values: np.ndarray[Any, np.dtype[np.float64]]

    @classmethod
    def of(cls, label: str, array: np.ndarray[Any, Any]) -> _Target:
        values = np.asarray(array, dtype=np.float64)
        order = np.argsort(values, kind="stable")
        return cls(label, values, order, values[order])


def _targets(inputs: Mapping[str, InputSeries]) -> list[_Target]:
    targets = []
    for name, series in inputs.items():
        if len(series.values) >= MIN_RUN:
            targets.append(_Target.of(f"input {name!r}", series.values))
            targets.append(_Target.of(f"the timestamps of input {name!r}", series.t_ns))
    return targets


def _agreeing(
    x: np.ndarray[Any, Any], c: np.ndarray[Any, Any], tol: np.ndarray[Any, Any], i: int, j: int, step: int
) -> int:
    """How many positions i, i+step, ... agree with j, j+step, ... before the first disagreement (vectorised)."""
    count, chunk = 0, 16
    while True:
        if step > 0:
            n = min(chunk, len(c) - i - count, len(x) - j - count)
            ci, xi = slice(i + count, i + count + n), slice(j + count, j + count + n)
        else:
            n = min(chunk, i - count + 1, j - count + 1)
            ci, xi = slice(i - count - n + 1, i - count + 1), slice(j - count - n + 1, j - count + 1)
        if n <= 0:
            return count
        ok = np.abs(x[xi] - c[ci]) <= tol[ci]
        if step < 0:
            ok = ok[::-1]
        if not ok.all():
            return count + int(np.argmin(ok))
        count += n
        chunk *= 4


def _extend(
    x: np.ndarray[Any, Any], c: np.ndarray[Any, Any], tol: np.ndarray[Any, Any], i: int, j: int
) -> tuple[int, int]:
    """The longest run around output index i / input index j where they agree: (first output index, length)."""
    left = _agreeing(x, c, tol, i - 1, j - 1, -1) if i > 0 and j > 0 else 0
    right = _agreeing(x, c, tol, i, j, 1)
    return i - left, left + right


def _informative(run: np.ndarray[Any, Any], tol: np.ndarray[Any, Any]) -> bool:
    """A run says something about the data only with >= MIN_DISTINCT values and not as an even progression.

    Even progressions (0, 1, 2, ... or bin edges) match any evenly sampled time axis or ramp and carry no data.
    """
    if len(np.unique(run)) < MIN_DISTINCT:
        return False
    bends = np.abs(np.diff(run, n=2))
    local = np.maximum(np.maximum(tol[:-2], tol[1:-1]), tol[2:])
    return bool((bends > 1.5 * local).any())  # at least one bend of a whole rounding unit


def _find_run(c: np.ndarray[Any, Any], tol: np.ndarray[Any, Any], target: _Target) -> tuple[int, int, int] | None:
    """(output index, input index, length) of a run of >= MIN_RUN informative matching samples, or None."""
    x, xs = target.values, target.sorted_values
    lo = np.searchsorted(xs, c - tol, side="left")
    hi = np.searchsorted(xs, c + tol, side="right")
    counts = hi - lo
    blocks = len(c) // _BLOCK
    shaped = c[: blocks * _BLOCK].reshape(blocks, _BLOCK)
    # A block must match somewhere and must not be flat: flat stretches match every plateau of the input, and an
    # informative run (see _informative) almost always holds a block that is not flat.
    usable = counts[: blocks * _BLOCK].reshape(blocks, _BLOCK).all(axis=1) & (shaped != shaped[:, :1]).any(axis=1)
    covered: dict[int, int] = {}
    # Aligned blocks of half a run: any run of MIN_RUN matching numbers covers at least one whole block.
    for start in (np.flatnonzero(usable) * _BLOCK).tolist():
        block_counts = counts[start : start + _BLOCK]
        anchor = int(np.argmin(block_counts))
        if block_counts[anchor] > _MAX_ANCHOR_CANDIDATES:
            continue
        i = start + anchor
        starts = target.order[lo[i] : hi[i]] - anchor
        starts = starts[(starts >= 0) & (starts + _BLOCK <= len(x))]
        for offset in range(_BLOCK):
            if not len(starts):
                break
            keep = np.abs(x[starts + offset] - c[start + offset]) <= tol[start + offset]
            starts = starts[keep]
        for j in starts[:64].tolist():
            diagonal = int(j) - start
            if covered.get(diagonal, -1) >= start + _BLOCK:
                continue  # this alignment was followed through already
            first, length = _extend(x, c, tol, start, int(j))
            covered[diagonal] = first + length
            if length >= MIN_RUN and _informative(c[first : first + length], tol[first : first + length]):
                return first, int(j) - (start - first), length
    return None


def _raw_data_problems(sequences: list[_Sequence], targets: list[_Target]) -> list[str]:
    problems = []
    for seq in sequences:
        if len(seq.values) < MIN_RUN:
            continue
        for target in targets:
            hit = None
            for label, scale, offset in _TRANSFORMS:
                for relative in (False, True):
                    base = float(target.values[0]) if relative else 0.0
                    c = (seq.values - offset) / scale + base
                    tol = seq.tolerance / abs(scale) + abs(c) * _RELATIVE_SLACK
                    found = _find_run(c, tol, target)
                    if found is not None:
                        hit = (found, label + (", relative to the first sample" if relative else ""))
                        break
                if hit:
                    break
            if hit:
                (first, j, length), how = hit
                where = f" ({seq.origin})" if seq.origin else ""
                problems.append(
                    f"{seq.path}: {length} numbers{where} from position {first} reproduce consecutive samples "
                    f"{j}..{j + length - 1} of {target.label} ({how}); return aggregates, not raw data"
                )
                break
    return problems


# --- identifiers ----------------------------------------------------------------------------------------------------


def _vin_check_digit_ok(vin: str) -> bool:
    total = sum(_VIN_VALUES[ch] * weight for ch, weight in zip(vin, _VIN_WEIGHTS, strict=True))
    expected = "X" if total % 11 == 10 else str(total % 11)
    return vin[8] == expected


def _identifier_problems(text: str, path: str, identifiers: list[str]) -> list[str]:
    problems = []
    upper = text.upper()
    squeezed = re.sub(r"[^A-Z0-9]", "", upper)
    for vin in _VIN.findall(upper):
        if any(ch.isdigit() for ch in vin) and any(ch.isalpha() for ch in vin):
            kind = "valid check digit" if _vin_check_digit_ok(vin) else "check digit not valid"
            problems.append(f"{path}: holds a VIN-like identifier (ISO 3779, {kind}); use the vehicle's pseudonym")
            break
    for identifier in identifiers:
        if identifier in upper or identifier in squeezed:
            problems.append(f"{path}: holds the identifier of a vehicle in this analysis; use its pseudonym")
            break
    for country, pattern in _PLATES:
        if pattern.search(text):
            problems.append(f"{path}: holds a {country} licence-plate-like string; plates may not leave the node")
            break
    return problems


def _normal_identifiers(identifiers: Iterable[str]) -> list[str]:
    normal = {re.sub(r"[^A-Z0-9]", "", "".join(i.split()).upper()) for i in identifiers}
    return sorted(i for i in normal if len(i) >= 4)


# --- the gate -------------------------------------------------------------------------------------------------------


def check_output(
    output: object,
    schema: Mapping[str, Any],
    inputs: Mapping[str, InputSeries],
    *,
    max_bytes: int,
    identifiers: Iterable[str] = (),
) -> list[str]:
    """Every reason ``output`` may not leave the node (empty: it passes). Each names the JSON path concerned."""
    structural = list(_json_problems(output, []))
    if structural:
        return structural
    size = len(json.dumps(output, ensure_ascii=False, separators=(",", ":")).encode())
    if size > max_bytes:
        return [f"$: the output is {size} bytes, over the limit of {max_bytes} bytes"]
    problems = _schema_problems(output, schema)
    known = _normal_identifiers(identifiers)
    sequences: list[_Sequence] = []
    for parts, node in _walk(output, []):
        path = json_path(parts) + (" (a key)" if isinstance(node, _Key) else "")
        if isinstance(node, list):
            count = sum(1 for v in node if _is_number(v))
            if count > MAX_NUMERIC_ARRAY:
                problems.append(f"{path}: an array of {count} numbers exceeds the cap of {MAX_NUMERIC_ARRAY}")
            sequences.extend(_list_sequences(node, parts))
        elif isinstance(node, str):
            problems.extend(_identifier_problems(node, path, known))
            blob = _decode_blob(node)
            if blob is not None:
                decoded = blob.decode("utf-8", "ignore")
                problems.extend(
                    p.replace(": holds", ": (decoded) holds", 1) for p in _identifier_problems(decoded, path, known)
                )
            for seq in _string_sequences(node, path):
                if len(seq.values) > MAX_NUMERIC_ARRAY:
                    problems.append(
                        f"{path}: carries {len(seq.values)} numbers ({seq.origin}), over the cap of {MAX_NUMERIC_ARRAY}"
                    )
                sequences.append(seq)
    problems.extend(_raw_data_problems(sequences, _targets(inputs)))
    return list(dict.fromkeys(problems))
