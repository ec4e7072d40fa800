"""One error tree for trustlane.

Every error a user can cause or meet is a ``TrustlaneError``. Each carries a message saying what went
wrong, a hint saying what to do, and the process exit code the CLI uses::

    TrustlaneError (1)
    ├── UsageError (2)                 bad arguments or input files
    │   └── MalformedInput (2)         a note, checkpoint, proof, policy or JSON that does not parse
    ├── HomeError (3)                  missing, foreign or damaged node home / configuration
    ├── KeyMaterialError (4)                missing, unreadable or wrong key
    ├── StorageError (5)               database unreachable, corrupt or of another version
    ├── VerificationError (6)          a signature, proof or policy check failed
    │   ├── ProofError (6)             inclusion / consistency proof does not verify
    │   ├── SignatureError (6)         a signature is missing, unknown or invalid
    │   ├── QuorumError (6)            not enough witness cosignatures
    │   └── IntegrityError (7)         stored ledger state disagrees with itself (fsck)
    ├── ConflictError (8)              state moved on: witness old size mismatch, rollback, split view
    ├── RemoteError (9)                a peer (witness, node) could not be reached or answered badly
    └── AnalysisRefused (10)           an analysis was denied (10), failed (11) or blocked by the output gate (12)
"""

from __future__ import annotations

from typing import ClassVar


class TrustlaneError(Exception):
    """Base of every trustlane error; ``str(err)`` is the user-facing message."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """The message and, when known, what the user should do about it."""
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message


class UsageError(TrustlaneError):
    exit_code = 2


class MalformedInput(UsageError):
    exit_code = 2


class HomeError(TrustlaneError):
    exit_code = 3


class KeyMaterialError(TrustlaneError):
    exit_code = 4


class StorageError(TrustlaneError):
    exit_code = 5


class VerificationError(TrustlaneError):
    exit_code = 6


class ProofError(VerificationError):
    pass


class SignatureError(VerificationError):
    pass


class QuorumError(VerificationError):
    pass


class IntegrityError(VerificationError):
    exit_code = 7


class ConflictError(TrustlaneError):
    exit_code = 8


class RemoteError(TrustlaneError):
    exit_code = 9


class AnalysisRefused(TrustlaneError):
    """An analysis request ended without a report; ``status`` is denied, failed or blocked."""

    exit_code = 10
    _codes: ClassVar[dict[str, int]] = {"denied": 10, "failed": 11, "blocked": 12}

    def __init__(self, status: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.exit_code = self._codes.get(status, 10)


__all__ = [
    "AnalysisRefused",
    "ConflictError",
    "HomeError",
    "IntegrityError",
    "KeyMaterialError",
    "MalformedInput",
    "ProofError",
    "QuorumError",
    "RemoteError",
    "SignatureError",
    "StorageError",
    "TrustlaneError",
    "UsageError",
    "VerificationError",
]
