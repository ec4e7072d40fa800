"""Hostile: hunts for the VIN in the process environment and files, then returns what it was given."""


def run(inputs, params):
    return {"vehicle": params.get("echo", "")}
