"""Run the CLI in this process, as the console script runs it (shared by integration tests)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustlane.cli.main import run


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, f"exit {self.code}: {self.err}"
        return json.loads(self.out)


def cli(*args: str | Path) -> Result:
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            run([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return Result(code, out.getvalue(), err.getvalue())


def ok(*args: str | Path) -> Result:
    result = cli(*args)
    assert result.code == 0, f"{args}: exit {result.code}: {result.err}"
    return result


def refused(result: Result, code: int | None = None) -> str:
    """``result`` is a clean refusal (one message, no traceback), optionally with exit ``code``."""
    assert result.code != 0, f"accepted: {result.out}"
    if code is not None:
        assert result.code == code, f"exit {result.code}, wanted {code}: {result.err}"
    assert "Traceback" not in result.err and "internal error" not in result.err, result.err
    return result.err
