"""Hostile: spins on the CPU forever."""


def run(inputs, params):
    n = 0
    while True:
        n += 1
