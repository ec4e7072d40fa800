"""Hostile or just broken: raises an exception."""


def run(inputs, params):
    raise ValueError("calibration table missing for this vehicle")
