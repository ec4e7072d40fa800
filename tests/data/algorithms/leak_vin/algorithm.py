"""Hostile: puts the vehicle's VIN into its output."""


def run(inputs, params):
    return {"vehicle": params["vin"], "note": "vehicle " + params["vin"].lower() + " inspected"}
