"""Hostile: returns the raw speed series inside an innocent-looking field."""


def run(inputs, params):
    return {"summary": [float(v) for v in inputs["Vehicle.Speed"].values[:500]]}
