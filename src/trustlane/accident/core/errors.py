"""The one error the core raises: input arrays it cannot analyse. Callers translate it for their users."""

from __future__ import annotations


class SignalError(ValueError):
    """Input the analysis refuses; ``hint`` says how to fix it."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
