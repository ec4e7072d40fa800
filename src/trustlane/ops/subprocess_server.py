"""Run a `trustlane` server command (`serve`, `witness serve`) in its own process on a free loopback port,
wait until it answers, and stop it on exit — as the demo and the benchmarks do."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from trustlane.errors import RemoteError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            detail = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RemoteError(f"a trustlane server exited at start: {detail.strip()[-500:]}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RemoteError(f"a trustlane server did not answer on {url} within {timeout:.0f} s")


@contextmanager
def trustlane_server(argv: list[str], url: str, env: dict[str, str], timeout: float = 30.0) -> Iterator[None]:
    """`python -m trustlane ARGV...` running until the block ends; ``url`` is polled until it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "trustlane", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    try:
        _wait_healthy(url, process, timeout)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
