"""Hostile: returns (or writes) far more than the output limit."""

import os


def run(inputs, params):
    size = params["bytes"]
    if params.get("write_directly"):
        with open(os.path.join(params.get("output_dir", "/sandbox/output"), "output.json"), "w") as handle:
            handle.write('{"blob": "' + "x" * size + '"}')
        os._exit(0)
    return {"blob": "x" * size}
