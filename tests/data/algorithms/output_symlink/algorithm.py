"""Hostile: replaces its output file with a link to a host file, hoping the node reads it back."""

import os


def run(inputs, params):
    os.symlink(params["target"], os.path.join("/sandbox/output", "output.json"))
    os._exit(0)
