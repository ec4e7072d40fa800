"""Hostile, measured: forks as many sleeping children as it can (up to a cap) and reports how many it got."""

import os
import time


def run(inputs, params):
    started = 0
    error = ""
    for _ in range(params["attempts"]):
        try:
            pid = os.fork()
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
            break
        if pid == 0:
            time.sleep(params["child_sleep_s"])
            os._exit(0)
        started += 1
    return {"started": started, "error": error}
