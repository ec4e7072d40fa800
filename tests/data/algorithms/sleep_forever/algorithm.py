"""Hostile: sleeps forever, with children that sleep too (they must not outlive the run)."""

import os
import time


def run(inputs, params):
    for _ in range(params.get("children", 0)):
        if os.fork() == 0:
            os.setsid()
            time.sleep(3600)
            os._exit(0)
    time.sleep(3600)
    return {}
