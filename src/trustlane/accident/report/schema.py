"""JSON Schema (draft 2020-12) of the accident report content that ``algorithm_entry.run`` returns."""

from __future__ import annotations

from typing import Any

_NS = {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$"}
_NS_REQUIRED = {"type": ["integer", "string"], "pattern": "^-?[0-9]+$"}


def restore_ns(value: Any, key: str = "") -> Any:
    """Nanosecond fields (``*_ns``) back to ints where the report carries them as decimal strings."""
    if isinstance(value, dict):
        return {k: restore_ns(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [restore_ns(v, key) for v in value]
    if key.endswith("_ns") and isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return value


_NUM = {"type": ["number", "null"]}
_STR = {"type": ["string", "null"]}
_SERIES = {"type": "array", "items": _NUM, "maxItems": 2000}
_BOUNDARY = {
    "type": "object",
    "required": ["after_ns", "by_ns", "source"],
    "properties": {"after_ns": _NS, "by_ns": _NS, "source": {"enum": ["status", "dssad"]}},
}
_SPAN = {"type": "object", "required": ["start", "end"], "properties": {"start": _BOUNDARY, "end": _BOUNDARY}}
_INTERVAL = {
    "type": "object",
    "required": ["state", "level", "start", "end"],
    "properties": {
        "state": {"enum": ["system", "driver", "transition", "mrm", "unknown"]},
        "level": _STR,
        "start": _BOUNDARY,
        "end": _BOUNDARY,
    },
}
_STATE_AT = {
    "type": "object",
    "required": ["t_ns", "state", "certain"],
    "properties": {
        "t_ns": _NS_REQUIRED,
        "state": {"enum": ["system", "driver", "transition", "mrm", "unknown", "changing"]},
        "certain": {"type": "boolean"},
    },
}
_CATEGORY = {"enum": ["full", "primary", "equal", "secondary", "none", None]}
_FINDING = {
    "type": "object",
    "required": ["code", "severity", "message"],
    "properties": {
        "code": {"type": "string"},
        "severity": {"enum": ["info", "warning", "error"]},
        "message": {"type": "string"},
    },
}
_EVENT = {
    "type": "object",
    "required": ["t0_ns", "contact_ns", "contact_sigma_ms", "delta_v_kmh", "max_delta_v_kmh", "direction"],
    "properties": {
        "t0_ns": _NS_REQUIRED,
        "contact_ns": _NS_REQUIRED,
        "contact_sigma_ms": {"type": "number"},
        "delta_v_kmh": {"type": "number"},
        "max_delta_v_kmh": {"type": "number"},
        "direction": {"enum": ["front", "rear", "left", "right"]},
    },
}

OUTPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "trustlane accident report content",
    "type": "object",
    "required": [
        "format",
        "case_id",
        "vehicle",
        "clock_source",
        "collision",
        "t0_ns",
        "contact_ns",
        "contact_sigma_ms",
        "events",
        "pre_crash",
        "pulse",
        "restraints",
        "automation",
        "pre_crash_control",
        "liability",
        "learned",
        "findings",
        "digests",
    ],
    "properties": {
        "format": {"const": "trustlane/accident-report/v1"},
        "case_id": _STR,
        "vehicle": _STR,
        "clock_source": _STR,
        "collision": {"type": "boolean"},
        "t0_ns": _NS,
        "contact_ns": _NS,
        "contact_sigma_ms": _NUM,
        "events": {"type": "array", "items": _EVENT, "maxItems": 100},
        "pre_crash": {
            "type": ["object", "null"],
            "required": ["window_s", "from_s", "signals", "flags", "missing"],
            "properties": {
                "window_s": {"type": "number"},
                "signals": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["unit", "statistic", "resolution", "segments"],
                        "properties": {
                            "segments": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["from_s", "to_s", "value"],
                                    "properties": {"from_s": {"type": "number"}, "to_s": {"type": "number"}},
                                },
                            }
                        },
                    },
                },
                "flags": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "array",
                        "maxItems": 100,
                        "items": {"type": "object", "required": ["from_s", "to_s"]},
                    },
                },
                "missing": {"type": "array", "items": {"type": "string"}},
            },
        },
        "pulse": {
            "type": ["object", "null"],
            "required": ["filter", "t_ms", "longitudinal_ms2", "lateral_ms2", "contact_ms"],
            "properties": {
                "t_ms": {"type": "array", "items": _NUM, "maxItems": 300},
                "longitudinal_ms2": {"type": "array", "items": _NUM, "maxItems": 300},
                "lateral_ms2": {"type": "array", "items": _NUM, "maxItems": 300},
                "delta_v_longitudinal_kmh": {"type": "array", "items": _NUM, "maxItems": 300},
                "delta_v_lateral_kmh": {"type": "array", "items": _NUM, "maxItems": 300},
            },
        },
        "restraints": {"type": ["object", "null"]},
        "automation": {
            "type": "object",
            "required": ["intervals", "transition_demands", "minimal_risk_manoeuvres", "warnings"],
            "properties": {
                "intervals": {"type": "array", "items": _INTERVAL},
                "transition_demands": {"type": "array", "items": _SPAN},
                "minimal_risk_manoeuvres": {"type": "array", "items": _SPAN},
                "driver_overrides": {"type": "array", "items": _SPAN},
                "hands_on_wheel": {"type": "array", "items": _SPAN},
                "warnings": {"type": "array", "items": _SPAN},
            },
        },
        "pre_crash_control": {
            "type": ["object", "null"],
            "required": ["from_ns", "to_ns", "at_start", "at_end", "intervals"],
            "properties": {
                "at_start": _STATE_AT,
                "at_end": _STATE_AT,
                "intervals": {"type": "array", "items": _INTERVAL},
            },
        },
        "liability": {
            "type": ["object", "null"],
            "required": ["non_binding", "statement", "indication", "reasoning", "cannot_establish"],
            "properties": {
                "non_binding": {"const": True},
                "indication": {
                    "type": "object",
                    "required": ["determinable", "system_side", "driver_side", "basis"],
                    "properties": {
                        "determinable": {"type": "boolean"},
                        "system_side": _CATEGORY,
                        "driver_side": _CATEGORY,
                        "basis": _STR,
                    },
                },
                "reasoning": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["step", "rule", "citation", "confirmed", "finding"],
                    },
                },
                "cannot_establish": {"type": "array", "items": {"type": "string"}},
            },
        },
        "learned": {"type": ["object", "null"]},
        "findings": {"type": "array", "items": _FINDING},
        "digests": {
            "type": "object",
            "required": ["inputs", "core", "rules", "model"],
            "properties": {"core": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}, "model": _STR},
        },
    },
}
