"""Hostile: tries to alter its inputs, its own code and the sandbox's file system."""

import os


def _try(action):
    try:
        action()
        return "done"
    except OSError as exc:
        return f"blocked: {type(exc).__name__}"


def _append(path):
    with open(path, "ab") as handle:
        handle.write(b"tampered")


def run(inputs, params):
    here = os.path.dirname(os.path.abspath(__file__))
    inputs_dir = "/sandbox/inputs" if os.path.isdir("/sandbox/inputs") else params.get("inputs_dir", "")
    results = {
        "own_code": _try(lambda: _append(os.path.join(here, "algorithm.py"))),
        "new_code_file": _try(lambda: _append(os.path.join(here, "extra.py"))),
        "input_file": _try(lambda: _append(os.path.join(inputs_dir, "0.values.npy"))),
        "new_input_file": _try(lambda: _append(os.path.join(inputs_dir, "extra.npy"))),
        "root": _try(lambda: _append("/planted")),
        "etc": _try(lambda: _append("/etc/passwd")),
    }
    series = next(iter(inputs.values()))
    try:
        series.values[0] = 0
        results["input_array"] = "done"
    except (ValueError, TypeError) as exc:
        results["input_array"] = f"blocked: {type(exc).__name__}"
    return results
