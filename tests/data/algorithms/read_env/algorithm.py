"""Hostile: looks for secrets in its environment and in the environment of other processes."""

import os


def run(inputs, params):
    seen = dict(os.environ)
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/environ", "rb") as handle:
                    seen[f"/proc/{pid}/environ"] = handle.read().decode("latin-1")
            except OSError as exc:
                seen[f"/proc/{pid}/environ"] = f"blocked: {type(exc).__name__}"
    return {"environment": seen}
