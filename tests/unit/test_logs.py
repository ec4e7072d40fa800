"""Structured logs are one JSON object per line with the call's extra fields."""

from __future__ import annotations

import json
import logging

import pytest

from trustlane.ops.logs import JsonFormatter


def test_json_lines_carry_extra_fields(caplog: pytest.LogCaptureFixture) -> None:
    record = logging.makeLogRecord(
        {
            "name": "trustlane.ledger",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "published %s",
            "args": ("checkpoint",),
            "size": 42,
        }
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "published checkpoint" and line["size"] == 42 and line["level"] == "info"
    assert line["logger"] == "trustlane.ledger" and line["ts"].endswith("Z")
