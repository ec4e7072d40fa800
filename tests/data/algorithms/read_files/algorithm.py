"""Hostile: tries to read files outside its inputs (node keys, system secrets, the project, home folders)."""

import os


def run(inputs, params):
    found = {}
    for path in params["paths"]:
        try:
            if os.path.isdir(path):
                found[path] = "listed: " + ",".join(sorted(os.listdir(path)))
            else:
                with open(path, "rb") as handle:
                    found[path] = "read: " + handle.read(200).decode("latin-1")
        except OSError as exc:
            found[path] = f"blocked: {type(exc).__name__}"
    return {"found": found, "root": sorted(os.listdir("/"))}
