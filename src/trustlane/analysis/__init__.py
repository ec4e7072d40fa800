"""Trusted analysis: hash-pinned algorithm packages, the sandbox that runs them and the gate on their output."""
