"""Hostile: allocates and touches memory without end."""


def run(inputs, params):
    hoard = []
    for _ in range(params["chunks"]):
        hoard.append(b"x" * (64 * 1024 * 1024))
    return {"chunks": len(hoard)}
