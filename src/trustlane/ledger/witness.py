"""A transparency log witness (c2sp.org/tlog-witness): the add-checkpoint rules and an HTTP front end.

:class:`Witness` holds the protocol logic and no HTTP: it parses an add-checkpoint request body, checks
it against the trusted log keys and the latest checkpoint it cosigned for that log, and on success
atomically records the new checkpoint and returns its timestamped Ed25519 cosignature (type 0x04). A
refusal is a :class:`WitnessRejection` carrying the HTTP status the spec prescribes.

:func:`create_witness_app` wraps a witness in a FastAPI application::

    POST /add-checkpoint          the request body of the spec; 200 with cosignature lines
    GET  /<sha256(origin)>/checkpoint
                                  the latest cosigned checkpoint of a log (monitoring prefix)
    GET  /vkey                    this witness's cosigner vkey
    GET  /healthz                 liveness
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from trustlane.crypto.cosignature import MAX_TIMESTAMP, CosignatureSigner
from trustlane.crypto.note import (
    SIG_TYPE_ED25519,
    Note,
    SignatureLine,
    Verifier,
    check_signatures,
    decode_text,
    strict_b64decode,
)
from trustlane.errors import (
    KeyMaterialError,
    MalformedInput,
    ProofError,
    SignatureError,
    TrustlaneError,
    UsageError,
)
from trustlane.ledger.checkpoint import HASH_SIZE, MAX_TREE_SIZE, SignedCheckpoint, parse_signed_checkpoint
from trustlane.ledger.merkle import EMPTY_ROOT, verify_consistency
from trustlane.storage.base import LedgerStore, WitnessState

log = logging.getLogger("trustlane.witness")

MAX_PROOF_LINES = 63
"""The most consistency proof lines an add-checkpoint request may carry."""

MAX_REQUEST_SIZE = 64 * 1024
"""The largest add-checkpoint request body accepted, in bytes (larger: 400, or 413 over HTTP)."""

SIZE_CONTENT_TYPE = "text/x.tlog.size"
"""Content type of a 409 Conflict answer, whose body is the witness's latest cosigned size."""

_OLD_LINE = re.compile(r"old (0|[1-9][0-9]{0,19})")
_ORIGIN_HASH = re.compile(r"[0-9a-f]{64}")

_HINTS = {
    400: "send 'old <size>', at most 63 base64 proof lines, a blank line and the signed checkpoint",
    403: "sign the checkpoint with the log key this witness trusts for its origin (check the log vkey "
    "configured at the witness)",
    404: "ask the witness operator to add the log's vkey, or check the checkpoint's origin line",
    409: "resend the checkpoint with the witness's size as the old size and a consistency proof from it",
    422: "the checkpoint is not consistent with what the witness cosigned before: the log may have "
    "forked or rolled back; do not retry blindly, investigate",
}
_EXIT_CODES = {400: 2, 403: 6, 404: 4, 409: 8, 422: 6}


class WitnessRejection(TrustlaneError):
    """The witness refused an add-checkpoint request; ``status`` is the HTTP status of the spec.

    ``size`` is set on 409 Conflict: the size of the latest checkpoint the witness cosigned for the log.
    """

    def __init__(self, status: int, message: str, *, size: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint if hint is not None else _HINTS.get(status))
        self.status = status
        self.size = size
        self.exit_code = _EXIT_CODES.get(status, TrustlaneError.exit_code)


@dataclass(frozen=True)
class AddCheckpointRequest:
    """A parsed add-checkpoint request body (signatures not yet verified)."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: SignedCheckpoint


def parse_add_checkpoint_request(body: bytes | str) -> AddCheckpointRequest:
    """Parse an add-checkpoint request body strictly; MalformedInput says what is wrong."""
    text = decode_text(body, "add-checkpoint request", MAX_REQUEST_SIZE)
    old_line, sep, rest = text.partition("\n")
    if not sep:
        raise MalformedInput(
            "add-checkpoint request has no complete first line",
            hint="the body starts with 'old <size>' and a newline",
        )
    match = _OLD_LINE.fullmatch(old_line)
    if match is None or int(match.group(1)) > MAX_TREE_SIZE:
        raise MalformedInput(
            f"add-checkpoint request does not start with 'old <size>': {old_line[:80]!r}",
            hint="the first line is 'old ' and the previous tree size in decimal without leading zeros",
        )
    proof: list[bytes] = []
    while True:
        line, sep, rest = rest.partition("\n")
        if not sep:
            raise MalformedInput(
                "add-checkpoint request has no blank line before the checkpoint",
                hint="end the consistency proof lines with an empty line, then append the checkpoint",
            )
        if not line:
            break
        if len(proof) == MAX_PROOF_LINES:
            raise MalformedInput(
                f"add-checkpoint request has more than {MAX_PROOF_LINES} consistency proof lines",
                hint="a consistency proof of a tree of at most 2^64 leaves has at most 63 hashes",
            )
        node = strict_b64decode(line, f"consistency proof line {len(proof) + 1}")
        if len(node) != HASH_SIZE:
            raise MalformedInput(
                f"consistency proof line {len(proof) + 1} decodes to {len(node)} bytes, not {HASH_SIZE}",
                hint="each proof line is one base64 SHA-256 hash",
            )
        proof.append(node)
    return AddCheckpointRequest(int(match.group(1)), tuple(proof), parse_signed_checkpoint(rest))


def origin_hash(origin: str) -> str:
    """The monitoring path component of a log: lowercase hex SHA-256 of its origin line."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()


class Witness:
    """Cosigns checkpoints of trusted logs that are consistent with what it cosigned before."""

    def __init__(
        self,
        store: LedgerStore,
        signer: CosignatureSigner,
        logs: Sequence[Verifier],
        clock: Callable[[], int] = lambda: int(time.time()),
    ) -> None:
        self._store = store
        self._signer = signer
        self._clock = clock
        self._logs: dict[str, list[Verifier]] = {}
        for verifier in logs:
            if verifier.sig_type != SIG_TYPE_ED25519:
                raise KeyMaterialError(
                    f"log key {verifier.name!r} has signature type 0x{verifier.sig_type:02x}, not 0x01",
                    hint="configure the witness with the logs' Ed25519 note vkeys, not cosignature keys",
                )
            keys = self._logs.setdefault(verifier.name, [])
            if verifier not in keys:
                keys.append(verifier)
        self._by_hash = {origin_hash(origin): origin for origin in self._logs}

    @property
    def name(self) -> str:
        """The cosigner name (key name of the cosignatures)."""
        return self._signer.name

    @property
    def verifier(self) -> Verifier:
        """The type-0x04 verifier of this witness's cosignatures."""
        return self._signer.verifier

    @property
    def origins(self) -> tuple[str, ...]:
        """The origins of the logs this witness cosigns."""
        return tuple(self._logs)

    def add_checkpoint(self, body: bytes | str) -> list[SignatureLine]:
        """Apply every add-checkpoint rule to ``body``; return our cosignature or raise WitnessRejection."""
        try:
            request = parse_add_checkpoint_request(body)
        except MalformedInput as exc:
            raise WitnessRejection(400, exc.message, hint=exc.hint) from exc
        signed = request.checkpoint
        checkpoint = signed.checkpoint
        origin, size, old = checkpoint.origin, checkpoint.size, request.old_size

        trusted = self._logs.get(origin)
        if trusted is None:
            raise WitnessRejection(404, f"this witness does not cosign checkpoints of log {origin!r}")
        try:
            verified = check_signatures(signed.note, trusted)
        except SignatureError as exc:
            raise WitnessRejection(403, f"checkpoint of {origin!r}: {exc.message}") from exc
        if not verified:
            raise WitnessRejection(
                403, f"checkpoint of {origin!r} carries no signature from a log key this witness trusts"
            )
        if old > size:
            raise WitnessRejection(400, f"old size {old} is larger than the checkpoint size {size}")

        state = self._store.witness_state(origin)
        stored_size = 0 if state is None else state.size
        stored_root = EMPTY_ROOT if state is None else state.root
        if old != stored_size:
            raise WitnessRejection(
                409,
                f"old size {old} is not the size of the latest checkpoint cosigned for {origin!r} ({stored_size})",
                size=stored_size,
            )
        if size == 0 and checkpoint.root != EMPTY_ROOT:
            self._suspicious(origin, old, size, "size 0 with a root other than the empty tree's")
        if old == 0 and request.proof:
            self._suspicious(origin, old, size, "a consistency proof from size 0 must be empty")
        if old == size and checkpoint.root != stored_root:
            self._suspicious(origin, old, size, f"a second, different root hash for tree size {size}")
        try:
            verify_consistency(old, size, request.proof, stored_root, checkpoint.root)
        except ProofError as exc:
            self._suspicious(origin, old, size, f"the consistency proof does not verify: {exc.message}")

        timestamp = self._clock()
        if not 0 < timestamp <= MAX_TIMESTAMP:
            raise UsageError(
                f"the witness clock reads {timestamp}, not a POSIX time in 1..2^63-1",
                hint="pass a clock returning whole seconds since the Unix epoch",
            )
        cosignature = self._signer.cosign(checkpoint.body(), timestamp)
        log_lines = tuple(line for line in signed.note.signatures if any(v.matches(line) for v in verified))
        note = Note(checkpoint.body(), (*log_lines, cosignature)).format()
        new = WitnessState(origin, size, checkpoint.root, note, time.time_ns())
        current = self._store.witness_advance(origin, old, new)
        if current is not None:
            raise WitnessRejection(
                409,
                f"the latest checkpoint cosigned for {origin!r} moved to size {current} while this request "
                f"(old size {old}) was checked",
                size=current,
            )
        log.info("cosigned checkpoint", extra={"origin": origin, "size": size, "old_size": old})
        return [cosignature]

    def latest(self, origin_hash_hex: str) -> str | None:
        """The latest cosigned checkpoint (log signature and our cosignature) of the log whose origin
        hashes to ``origin_hash_hex``; None when unknown or never cosigned."""
        if not _ORIGIN_HASH.fullmatch(origin_hash_hex):
            return None
        origin = self._by_hash.get(origin_hash_hex)
        if origin is None:
            return None
        state = self._store.witness_state(origin)
        return None if state is None else state.note

    def _suspicious(self, origin: str, old: int, size: int, problem: str) -> None:
        # A validly signed but inconsistent checkpoint may be evidence of log misbehaviour: keep a trace.
        log.warning("refused checkpoint of %r (old size %d, size %d): %s", origin, old, size, problem)
        raise WitnessRejection(422, f"checkpoint of {origin!r} at size {size} refused: {problem}")


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def rejection_response(exc: WitnessRejection) -> Response:
    """The HTTP answer for a refusal: 409 carries the size as ``text/x.tlog.size``, others a short text."""
    if exc.status == 409 and exc.size is not None:
        return Response(content=f"{exc.size}\n", status_code=409, headers={"content-type": SIZE_CONTENT_TYPE})
    return PlainTextResponse(f"{exc.message}\n", status_code=exc.status)


def create_witness_app(witness: Witness, *, max_body: int = MAX_REQUEST_SIZE) -> FastAPI:
    """A FastAPI application serving ``witness`` (submission and monitoring prefix at the root)."""
    app = FastAPI(title="trustlane witness", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        try:
            body = await _read_body(request, max_body)
        except _TooLarge:
            return PlainTextResponse(f"request body exceeds {max_body} bytes\n", status_code=413)
        try:
            lines = await run_in_threadpool(witness.add_checkpoint, body)
        except WitnessRejection as exc:
            return rejection_response(exc)
        except TrustlaneError as exc:
            log.error("add-checkpoint failed: %s", exc.diagnostics())
            return PlainTextResponse("the witness failed to process the checkpoint\n", status_code=500)
        return PlainTextResponse("".join(line.format() for line in lines))

    @app.get("/healthz")
    async def healthz() -> Response:
        return PlainTextResponse("ok\n")

    @app.get("/vkey")
    async def vkey() -> Response:
        return PlainTextResponse(f"{witness.verifier.vkey}\n")

    @app.get("/{origin_hash_hex}/checkpoint")
    async def checkpoint(origin_hash_hex: str) -> Response:
        note = await run_in_threadpool(witness.latest, origin_hash_hex)
        if note is None:
            return PlainTextResponse("no checkpoint cosigned for this log\n", status_code=404)
        return PlainTextResponse(note)

    return app


__all__ = [
    "MAX_PROOF_LINES",
    "MAX_REQUEST_SIZE",
    "SIZE_CONTENT_TYPE",
    "AddCheckpointRequest",
    "Witness",
    "WitnessRejection",
    "create_witness_app",
    "origin_hash",
    "parse_add_checkpoint_request",
    "rejection_response",
]
