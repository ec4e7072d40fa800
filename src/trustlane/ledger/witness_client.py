"""The log side of c2sp.org/tlog-witness: ask witnesses to cosign checkpoints.

:class:`WitnessClient` speaks add-checkpoint to one witness over HTTP (keep-alive) and returns only the
cosignatures that verify under the witness key it was configured with. :func:`request_cosignatures` asks
several witnesses at once for a log's checkpoint, recovers from a witness whose recorded size differs
from the log's belief (409 Conflict) by retrying once from the witness's size, and stores every verified
cosignature with the log.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import TracebackType

import httpx

from trustlane.crypto.cosignature import cosignature_timestamp
from trustlane.crypto.note import (
    SIG_TYPE_COSIGNATURE_ED25519,
    SignatureLine,
    Verifier,
    parse_signature_line,
)
from trustlane.errors import (
    ConflictError,
    KeyMaterialError,
    MalformedInput,
    RemoteError,
    SignatureError,
    TrustlaneError,
    UsageError,
)
from trustlane.ledger.checkpoint import HASH_SIZE, parse_signed_checkpoint
from trustlane.ledger.log import Log
from trustlane.storage.base import CheckpointRecord, CosignatureRecord, LedgerStore

logger = logging.getLogger("trustlane.witness")

MAX_PROOF_LINES = 63
MAX_RESPONSE_SIZE = 64 * 1024
SIZE_CONTENT_TYPE = "text/x.tlog.size"

_SIZE_BODY = re.compile(r"(0|[1-9][0-9]{0,19})\n?")

_STATUS_HINTS = {
    400: "the witness could not parse the request; check that log and witness speak c2sp.org/tlog-witness",
    403: "the witness does not accept the log's signature; give the witness operator the log's current vkey",
    404: "the witness is not configured for this log; ask its operator to add the log's vkey",
    413: "the request was too large for the witness",
    422: "the witness found the checkpoint inconsistent with one it cosigned before: the log may have "
    "forked or lost entries; investigate before retrying",
}


class WitnessConflict(ConflictError):
    """The witness answered 409: ``size`` is the size of the latest checkpoint it cosigned for the log."""

    def __init__(self, message: str, *, size: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.size = size


class WitnessResponseError(RemoteError):
    """A witness could not be reached or answered badly; ``status`` is the HTTP status, if any arrived."""

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


def format_add_checkpoint_request(old_size: int, proof: Sequence[bytes], checkpoint_text: str) -> bytes:
    """An add-checkpoint request body: ``old <size>``, the proof lines, a blank line, the checkpoint."""
    if old_size < 0:
        raise UsageError(f"old size {old_size} is negative", hint="pass the last size the witness cosigned")
    if len(proof) > MAX_PROOF_LINES:
        raise UsageError(
            f"consistency proof has {len(proof)} hashes; the witness protocol allows {MAX_PROOF_LINES}",
            hint="a consistency proof between trees of at most 2^64 leaves has at most 63 hashes",
        )
    for node in proof:
        if len(node) != HASH_SIZE:
            raise UsageError(
                f"consistency proof hash has {len(node)} bytes, not {HASH_SIZE}",
                hint="build the proof with Log.consistency_proof()",
            )
    lines = "".join(base64.b64encode(node).decode("ascii") + "\n" for node in proof)
    return f"old {old_size}\n{lines}\n{checkpoint_text}".encode()


class WitnessClient:
    """Requests cosignatures from one witness over HTTP (one keep-alive connection pool)."""

    def __init__(
        self,
        name: str,
        url: str,
        verifier: Verifier,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        if verifier.sig_type != SIG_TYPE_COSIGNATURE_ED25519:
            raise KeyMaterialError(
                f"witness {name!r} has a key of signature type 0x{verifier.sig_type:02x}, not 0x04",
                hint="configure the witness's Ed25519 cosignature vkey (type 0x04)",
            )
        if not timeout > 0:
            raise UsageError(f"witness timeout {timeout} is not positive", hint="use e.g. 5 seconds")
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise UsageError(f"witness {name!r} has an invalid URL {url!r}: {exc}") from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise UsageError(
                f"witness {name!r} URL {url!r} is not an http:// or https:// URL",
                hint="give the witness's submission prefix, e.g. https://witness.example/",
            )
        self.name = name
        self.url = url.rstrip("/")
        self.verifier = verifier
        self.timeout = timeout
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout, transport=transport)

    def close(self) -> None:
        """Close the connection pool (only when this client created it)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> WitnessClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WitnessClient({self.name!r}, {self.url!r})"

    def add_checkpoint(self, old_size: int, proof: Sequence[bytes], checkpoint_text: str) -> list[SignatureLine]:
        """Submit ``checkpoint_text`` with a proof from ``old_size``; return the verified cosignatures.

        Raises WitnessConflict (409, with the witness's size), SignatureError (no valid cosignature by
        ``verifier`` in a 200 answer) or WitnessResponseError (unreachable, timeout, any other status).
        """
        body_text = parse_signed_checkpoint(checkpoint_text).checkpoint.body()
        request = format_add_checkpoint_request(old_size, proof, checkpoint_text)
        status, content_type, data = self._post("/add-checkpoint", request)
        if status == 200:
            return self._verified_cosignatures(data, body_text)
        if status == 409:
            raise self._conflict(content_type, data, old_size)
        excerpt = data[:200].decode("utf-8", "replace").strip()
        raise WitnessResponseError(
            f"witness {self.name!r} at {self.url} answered HTTP {status}: {excerpt!r}",
            status=status,
            hint=_STATUS_HINTS.get(status, "check the witness's logs; retry later"),
        )

    def _post(self, path: str, content: bytes) -> tuple[int, str, bytes]:
        headers = {"content-type": "text/plain; charset=utf-8"}
        try:
            with self._client.stream(
                "POST", self.url + path, content=content, headers=headers, timeout=self.timeout
            ) as response:
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > MAX_RESPONSE_SIZE:
                        raise WitnessResponseError(
                            f"witness {self.name!r} at {self.url} sent more than {MAX_RESPONSE_SIZE} bytes",
                            status=response.status_code,
                            hint="check that the URL points at a c2sp.org/tlog-witness service",
                        )
                return response.status_code, response.headers.get("content-type", ""), bytes(data)
        except httpx.TimeoutException as exc:
            raise WitnessResponseError(
                f"witness {self.name!r} at {self.url} did not answer within {self.timeout} s",
                hint="check that the witness is up and reachable, or raise its timeout",
            ) from exc
        except httpx.HTTPError as exc:
            raise WitnessResponseError(
                f"could not reach witness {self.name!r} at {self.url}: {exc}",
                hint="check the witness URL, the network and that the witness is running",
            ) from exc

    def _conflict(self, content_type: str, data: bytes, old_size: int) -> TrustlaneError:
        media = content_type.split(";", 1)[0].strip().lower()
        text = data.decode("ascii", "replace")
        match = _SIZE_BODY.fullmatch(text)
        if media != SIZE_CONTENT_TYPE or match is None:
            return WitnessResponseError(
                f"witness {self.name!r} answered 409 without a {SIZE_CONTENT_TYPE} size "
                f"(content type {content_type!r}, body {text[:80]!r})",
                status=409,
                hint="the witness does not follow c2sp.org/tlog-witness; check its URL",
            )
        size = int(match.group(1))
        return WitnessConflict(
            f"witness {self.name!r} last cosigned size {size}, not the old size {old_size} sent",
            size=size,
            hint="resend with the witness's size as the old size (request_cosignatures does this)",
        )

    def _verified_cosignatures(self, data: bytes, body_text: str) -> list[SignatureLine]:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._bad_answer("is not UTF-8") from exc
        if not text.endswith("\n"):
            raise self._bad_answer("does not end with a newline")
        try:
            lines = [parse_signature_line(line) for line in text[:-1].split("\n")]
        except MalformedInput as exc:
            raise self._bad_answer(f"holds a line that is not a signature line ({exc.message})") from exc
        body = body_text.encode("utf-8")
        verified: list[SignatureLine] = []
        for line in lines:
            if not self.verifier.matches(line):
                continue  # cosignatures by keys we were not told to trust are ignored
            if not self.verifier.verify(body, line.signature):
                raise SignatureError(
                    f"cosignature by witness {self.name!r} (key ID {line.key_id.hex()}) does not verify",
                    hint="the witness or something between it and this log is misbehaving; "
                    "check the witness vkey configured for it",
                )
            if cosignature_timestamp(line) == 0:
                raise SignatureError(
                    f"cosignature by witness {self.name!r} has timestamp 0",
                    hint="c2sp.org/tlog-witness forbids untimestamped cosignatures; report it to the operator",
                )
            verified.append(line)
        if not verified:
            present = ", ".join(f"{line.name} ({line.key_id.hex()})" for line in lines)
            raise SignatureError(
                f"witness {self.name!r} answered without a cosignature by {self.verifier.vkey} "
                f"(signature lines by: {present})",
                hint="check that the witness vkey configured for it is current",
            )
        return verified

    def _bad_answer(self, problem: str) -> WitnessResponseError:
        return WitnessResponseError(
            f"the answer of witness {self.name!r} at {self.url} {problem}",
            status=200,
            hint="check that the URL points at a c2sp.org/tlog-witness service",
        )


@dataclass(frozen=True)
class _Attempt:
    witness: WitnessClient
    old_size: int
    retried: bool


def _last_cosigned(store: LedgerStore, witnesses: Sequence[WitnessClient], limit: int) -> dict[str, int]:
    """For each witness, the largest size <= ``limit`` it is known to have cosigned (0 when none)."""
    last = {w.name: 0 for w in witnesses}
    keys = {(w.verifier.name, w.verifier.key_id): w.name for w in witnesses}
    for record in store.cosignatures():
        name = keys.get((record.witness, record.key_id))
        if name is not None and last[name] < record.size <= limit:
            last[name] = record.size
    return last


def request_cosignatures(log: Log, record: CheckpointRecord, witnesses: Sequence[WitnessClient]) -> dict[str, str]:
    """Ask ``witnesses`` concurrently to cosign ``record``; store what verifies; report per witness.

    Each witness is sent a consistency proof from the largest size the log holds its cosignature for (0
    when none). On 409 Conflict with a size between 0 and ``record.size`` the request is repeated once
    from that size. The result maps each witness name to ``"ok"`` or the reason it did not cosign; a
    failing witness is logged and reported, never raised. Store access (proofs, cosignatures) stays in
    the calling thread; only the HTTP exchanges run in worker threads, one per witness.
    """
    names = [w.name for w in witnesses]
    if len(set(names)) != len(names):
        raise UsageError(f"witness names are not unique: {', '.join(names)}", hint="give each witness its own name")
    if not witnesses:
        return {}
    results: dict[str, str] = {}
    last = _last_cosigned(log.store, witnesses, record.size)

    def fail(witness: WitnessClient, exc: BaseException) -> None:
        reason = exc.message if isinstance(exc, TrustlaneError) else f"{type(exc).__name__}: {exc}"
        logger.warning("witness %s did not cosign checkpoint %d: %s", witness.name, record.size, reason)
        results[witness.name] = reason

    def store(witness: WitnessClient, lines: Sequence[SignatureLine]) -> None:
        cosignatures = [
            CosignatureRecord(record.size, line.name, line.key_id, line.format(), cosignature_timestamp(line))
            for line in lines
        ]
        try:
            log.store.add_cosignatures(cosignatures)
        except TrustlaneError as exc:
            fail(witness, exc)
            return
        results[witness.name] = "ok"

    with ThreadPoolExecutor(max_workers=len(witnesses), thread_name_prefix="trustlane-witness") as pool:
        pending: dict[Future[list[SignatureLine]], _Attempt] = {}

        def submit(witness: WitnessClient, old_size: int, retried: bool) -> None:
            try:
                proof = log.consistency_proof(old_size, record.size)
            except TrustlaneError as exc:
                fail(witness, exc)
                return
            future = pool.submit(witness.add_checkpoint, old_size, proof, record.note)
            pending[future] = _Attempt(witness, old_size, retried)

        for witness in witnesses:
            submit(witness, last[witness.name], False)
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                attempt = pending.pop(future)
                witness = attempt.witness
                try:
                    lines = future.result()
                except WitnessConflict as exc:
                    if not attempt.retried and exc.size != attempt.old_size and exc.size <= record.size:
                        logger.info(
                            "witness %s is at size %d, not %d; retrying from there",
                            witness.name,
                            exc.size,
                            attempt.old_size,
                        )
                        submit(witness, exc.size, True)
                    elif exc.size > record.size:
                        fail(
                            witness,
                            ConflictError(
                                f"witness {witness.name!r} has cosigned size {exc.size}, beyond this "
                                f"checkpoint (size {record.size})"
                            ),
                        )
                    else:
                        fail(witness, exc)
                except Exception as exc:  # one witness failing must not stop the others
                    fail(witness, exc)
                else:
                    store(witness, lines)
    return {name: results[name] for name in names}


__all__ = [
    "MAX_PROOF_LINES",
    "SIZE_CONTENT_TYPE",
    "WitnessClient",
    "WitnessConflict",
    "WitnessResponseError",
    "format_add_checkpoint_request",
    "request_cosignatures",
]
