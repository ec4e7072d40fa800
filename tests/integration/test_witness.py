"""The witness (c2sp.org/tlog-witness) and the log's witness client, end to end on SQLite stores."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from trustlane.crypto.cosignature import CosignatureSigner, cosignature_timestamp
from trustlane.crypto.note import Ed25519Signer, Note, SignatureLine, Verifier, parse_note, verify_note
from trustlane.errors import (
    ConflictError,
    KeyMaterialError,
    QuorumError,
    RemoteError,
    SignatureError,
    TrustlaneError,
)
from trustlane.ledger.checkpoint import Checkpoint, parse_signed_checkpoint, sign_checkpoint
from trustlane.ledger.log import Log
from trustlane.ledger.merkle import EMPTY_ROOT
from trustlane.ledger.policy import Policy, verify_checkpoint_with_policy
from trustlane.ledger.witness import (
    MAX_REQUEST_SIZE,
    Witness,
    WitnessRejection,
    create_witness_app,
    origin_hash,
    parse_add_checkpoint_request,
)
from trustlane.ledger.witness_client import (
    WitnessClient,
    WitnessConflict,
    WitnessResponseError,
    format_add_checkpoint_request,
    request_cosignatures,
)
from trustlane.storage.base import CheckpointRecord, LedgerStore
from trustlane.storage.sqlite import SqliteStore

ORIGIN = "log.example/trustlane"
NOW = 1_700_000_000


class SyncASGITransport(httpx.BaseTransport):
    """Serves a synchronous httpx client from an ASGI app in-process (httpx's ASGITransport is async-only;
    starlette's TestClient now wants httpx2, whose Client is not an httpx.Client)."""

    def __init__(self, app: FastAPI) -> None:
        self._asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def exchange() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return asyncio.run(exchange())


def in_process_client(app: FastAPI) -> httpx.Client:
    return httpx.Client(transport=SyncASGITransport(app), base_url="http://testserver")


@dataclass
class Node:
    """One witness: its store, its logic, its HTTP app and a test client for the app."""

    store: SqliteStore
    signer: CosignatureSigner
    witness: Witness
    http: httpx.Client

    @property
    def verifier(self) -> Verifier:
        return self.signer.verifier

    def client(self, name: str | None = None) -> WitnessClient:
        return WitnessClient(name or self.signer.name, "http://testserver", self.verifier, client=self.http)

    def post(self, body: bytes) -> httpx.Response:
        return self.http.post("/add-checkpoint", content=body)


@dataclass
class World:
    tmp: Path
    log_signer: Ed25519Signer
    log: Log
    stores: list[LedgerStore]
    clients: list[httpx.Client]

    def new_log(self, name: str, signer: Ed25519Signer | None = None) -> Log:
        store = SqliteStore(self.tmp / f"{name}.db", create=True)
        self.stores.append(store)
        return Log(store, signer or self.log_signer)

    def new_witness(
        self,
        name: str = "witness.example/w1",
        *,
        db: str | None = None,
        signer: CosignatureSigner | None = None,
        clock: Callable[[], int] = lambda: NOW,
    ) -> Node:
        store = SqliteStore(self.tmp / f"{db or name.replace('/', '_')}.db", create=True)
        self.stores.append(store)
        signer = signer or CosignatureSigner.generate(name)
        witness = Witness(store, signer, [self.log_signer.verifier], clock=clock)
        http = in_process_client(create_witness_app(witness))
        self.clients.append(http)
        return Node(store, signer, witness, http)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    signer = Ed25519Signer.generate(ORIGIN)
    w = World(tmp_path, signer, Log(SqliteStore(tmp_path / "log.db", create=True), signer), [], [])
    w.stores.append(w.log.store)
    yield w
    for client in w.clients:
        client.close()
    for store in w.stores:
        store.close()


def grow(log: Log, n: int, tag: str = "e") -> CheckpointRecord:
    """Append ``n`` leaves and publish a checkpoint."""
    start = log.store.tree_size()
    log.append_many([f"{tag}-{i}".encode() for i in range(start, start + n)])
    return log.publish_checkpoint()


def body(log: Log, old: int, record: CheckpointRecord) -> bytes:
    return format_add_checkpoint_request(old, log.consistency_proof(old, record.size), record.note)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- request parsing and 400 ------------------------------------------------------------------------


def test_request_round_trip(world: World) -> None:
    grow(world.log, 3)
    record = grow(world.log, 4)
    request = parse_add_checkpoint_request(body(world.log, 3, record))
    assert request.old_size == 3
    assert list(request.proof) == world.log.consistency_proof(3, 7)
    assert request.checkpoint.text == record.note


def malformed_bodies(note: str, proof: list[bytes]) -> dict[str, bytes]:
    good_proof = "".join(b64(p) + "\n" for p in proof)
    return {
        "empty": b"",
        "no newline": b"old 0",
        "leading zero": f"old 03\n{good_proof}\n{note}".encode(),
        "negative": f"old -1\n\n{note}".encode(),
        "not old": f"new 0\n\n{note}".encode(),
        "two spaces": f"old  0\n\n{note}".encode(),
        "no blank line": f"old 3\n{good_proof}".encode(),
        "bad base64": f"old 3\n%%%%\n\n{note}".encode(),
        "short hash": f"old 3\n{b64(b'x' * 31)}\n\n{note}".encode(),
        "64 proof lines": f"old 3\n{(b64(b'x' * 32) + chr(10)) * 64}\n{note}".encode(),
        "not utf-8": b"old 0\n\n\xff\xfe",
        "unsigned checkpoint": f"old 0\n\n{note.split(chr(10) + chr(10))[0]}\n".encode(),
        "bad checkpoint": f"old 0\n\n{note.replace(ORIGIN + chr(10), ORIGIN + chr(10) + '07' + chr(10), 1)}".encode(),
        "huge old size": f"old {1 << 64}\n\n{note}".encode(),
    }


@pytest.mark.parametrize(
    "case",
    sorted(malformed_bodies("x\n\n— a AAAAAAAA\n", []).keys()),
)
def test_malformed_requests_are_400(world: World, case: str) -> None:
    grow(world.log, 3)
    record = grow(world.log, 4)
    node = world.new_witness()
    bad = malformed_bodies(record.note, world.log.consistency_proof(3, 7))[case]
    response = node.post(bad)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/plain")
    with pytest.raises(WitnessRejection) as info:
        node.witness.add_checkpoint(bad)
    assert info.value.status == 400
    assert info.value.hint


def test_old_size_above_checkpoint_size_is_400(world: World) -> None:
    record = grow(world.log, 4)
    node = world.new_witness()
    response = node.post(format_add_checkpoint_request(5, [], record.note))
    assert response.status_code == 400
    assert "larger than the checkpoint size" in response.text


def test_oversized_body_is_413(world: World) -> None:
    node = world.new_witness()
    response = node.post(b"old 0\n" + b"A" * (MAX_REQUEST_SIZE + 1))
    assert response.status_code == 413


# --- 403 and 404 --------------------------------------------------------------------------------------


def test_unknown_origin_is_404(world: World) -> None:
    other = world.new_log("other", Ed25519Signer.generate("other.example/log"))
    record = grow(other, 2)
    node = world.new_witness()
    response = node.post(body(other, 0, record))
    assert response.status_code == 404
    assert "other.example/log" in response.text


def test_checkpoint_signed_by_an_untrusted_key_is_403(world: World) -> None:
    impostor = world.new_log("impostor", Ed25519Signer.generate(ORIGIN))  # same name, other key
    record = grow(impostor, 2)
    node = world.new_witness()
    response = node.post(body(impostor, 0, record))
    assert response.status_code == 403
    assert "no signature from a log key this witness trusts" in response.text
    assert node.witness.latest(origin_hash(ORIGIN)) is None


def test_invalid_signature_by_the_trusted_key_is_403(world: World) -> None:
    record = grow(world.log, 2)
    note = parse_note(record.note)
    sig = note.signatures[0]
    forged = SignatureLine(sig.name, sig.key_id, bytes([sig.signature[0] ^ 1]) + sig.signature[1:])
    node = world.new_witness()
    response = node.post(format_add_checkpoint_request(0, [], Note(note.text, (forged,)).format()))
    assert response.status_code == 403
    assert "does not verify" in response.text
    # An altered tree head under a genuine signature fails the same way.
    root = parse_signed_checkpoint(record.note).checkpoint.root
    altered = record.note.replace(b64(root), b64(bytes(32)))
    assert node.post(format_add_checkpoint_request(0, [], altered)).status_code == 403


def test_unknown_signatures_are_ignored(world: World) -> None:
    record = grow(world.log, 2)
    stranger = CosignatureSigner.generate("stranger.example/w")
    signed = parse_signed_checkpoint(record.note)
    text = signed.with_cosignatures([stranger.cosign(signed.checkpoint.body(), 5)]).text
    node = world.new_witness()
    assert node.post(format_add_checkpoint_request(0, [], text)).status_code == 200
    stored = parse_note(node.witness.latest(origin_hash(ORIGIN)) or "")
    assert {s.name for s in stored.signatures} == {ORIGIN, node.signer.name}


# --- 409 ------------------------------------------------------------------------------------------------


def test_stale_old_size_is_409_with_the_stored_size(world: World) -> None:
    first = grow(world.log, 4)
    second = grow(world.log, 4)
    node = world.new_witness()
    # Never cosigned: the witness is at size 0.
    response = node.post(body(world.log, 4, second))
    assert response.status_code == 409
    assert response.headers["content-type"] == "text/x.tlog.size"
    assert response.text == "0\n"
    assert node.post(body(world.log, 0, first)).status_code == 200
    response = node.post(body(world.log, 0, second))
    assert response.status_code == 409
    assert response.headers["content-type"] == "text/x.tlog.size"
    assert response.text == "4\n"
    with pytest.raises(WitnessRejection) as info:
        node.witness.add_checkpoint(body(world.log, 0, second))
    assert (info.value.status, info.value.size) == (409, 4)
    assert isinstance(info.value, TrustlaneError)
    assert info.value.exit_code == ConflictError.exit_code


def test_rollback_is_refused(world: World) -> None:
    small = grow(world.log, 4)
    big = grow(world.log, 4)
    node = world.new_witness()
    assert node.post(body(world.log, 0, big)).status_code == 200
    # The honest old size (8) is larger than the rolled-back checkpoint: 400.
    assert node.post(format_add_checkpoint_request(8, [], small.note)).status_code == 400
    # Claiming the old size of the smaller tree: 409 with the real size.
    response = node.post(body(world.log, 4, small))
    assert (response.status_code, response.text) == (409, "8\n")
    assert parse_note(node.witness.latest(origin_hash(ORIGIN)) or "").text.split("\n")[1] == "8"


# --- 422 ------------------------------------------------------------------------------------------------


def test_bad_consistency_proof_is_422(world: World) -> None:
    first = grow(world.log, 5)
    record = grow(world.log, 6)
    node = world.new_witness()
    assert node.post(format_add_checkpoint_request(0, [], first.note)).status_code == 200
    proof = world.log.consistency_proof(5, 11)
    proof[0] = bytes([proof[0][0] ^ 1]) + proof[0][1:]
    response = node.post(format_add_checkpoint_request(5, proof, record.note))
    assert response.status_code == 422
    assert "consistency proof does not verify" in response.text
    # Missing or extra proof lines fail too.
    assert node.post(format_add_checkpoint_request(5, [], record.note)).status_code == 422
    extra = [*world.log.consistency_proof(5, 11), bytes(32)]
    assert node.post(format_add_checkpoint_request(5, extra, record.note)).status_code == 422
    assert node.post(body(world.log, 5, record)).status_code == 200


def test_proof_with_old_size_zero_is_422(world: World) -> None:
    record = grow(world.log, 4)
    node = world.new_witness()
    response = node.post(format_add_checkpoint_request(0, [bytes(32)], record.note))
    assert response.status_code == 422
    assert "must be empty" in response.text


def test_same_size_different_root_is_422(world: World) -> None:
    record = grow(world.log, 4)
    fork = world.new_log("fork")
    forked = grow(fork, 4, tag="fork")
    node = world.new_witness()
    assert node.post(body(world.log, 0, record)).status_code == 200
    response = node.post(format_add_checkpoint_request(4, [], forked.note))
    assert response.status_code == 422
    assert "different root hash" in response.text
    # The same checkpoint again is fine and is cosigned anew.
    assert node.post(format_add_checkpoint_request(4, [], record.note)).status_code == 200


def test_empty_tree_with_wrong_root_is_422(world: World) -> None:
    node = world.new_witness()
    bad = sign_checkpoint(Checkpoint(ORIGIN, 0, b"\x01" * 32), world.log_signer)
    response = node.post(format_add_checkpoint_request(0, [], bad.text))
    assert response.status_code == 422
    assert "empty tree" in response.text
    good = sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT), world.log_signer)
    assert node.post(format_add_checkpoint_request(0, [], good.text)).status_code == 200


def test_forked_log_is_refused(world: World) -> None:
    grow(world.log, 4)
    record = grow(world.log, 4)
    fork = world.new_log("fork")  # same key, different history
    grow(fork, 4, tag="fork")
    forked = grow(fork, 6, tag="fork")
    node = world.new_witness()
    assert node.post(body(world.log, 0, record)).status_code == 200
    # The fork proves consistency with its own size-8 tree, not the one the witness cosigned.
    response = node.post(body(fork, 8, forked))
    assert response.status_code == 422
    # Starting over from zero is a 409: the witness remembers size 8.
    assert node.post(body(fork, 0, forked)).status_code == 409


# --- success, monitoring, restart ------------------------------------------------------------------------


def test_cosigns_a_growing_log(world: World) -> None:
    node = world.new_witness()
    client = node.client()
    old = 0
    for n in (1, 1, 2, 5, 8, 13, 1, 30):
        record = grow(world.log, n)
        lines = client.add_checkpoint(old, world.log.consistency_proof(old, record.size), record.note)
        assert [line.name for line in lines] == [node.signer.name]
        assert cosignature_timestamp(lines[0]) == NOW
        body_text = parse_signed_checkpoint(record.note).checkpoint.body()
        assert node.verifier.verify(body_text.encode(), lines[0].signature)
        latest = node.witness.latest(origin_hash(ORIGIN))
        assert latest is not None
        assert verify_note(parse_note(latest), [world.log_signer.verifier, node.verifier]) == [
            world.log_signer.verifier,
            node.verifier,
        ]
        old = record.size
    response = node.http.get(f"/{origin_hash(ORIGIN)}/checkpoint")
    assert response.status_code == 200
    policy = Policy.simple(world.log_signer.verifier, [("w1", node.verifier)], 1)
    assert verify_checkpoint_with_policy(response.text, policy).checkpoint.size == old


def test_monitoring_vkey_and_health_endpoints(world: World) -> None:
    node = world.new_witness()
    assert node.http.get(f"/{origin_hash(ORIGIN)}/checkpoint").status_code == 404  # never cosigned
    assert node.http.get(f"/{origin_hash('other')}/checkpoint").status_code == 404
    assert node.http.get(f"/{origin_hash(ORIGIN).upper()}/checkpoint").status_code == 404
    assert node.http.get("/not-a-hash/checkpoint").status_code == 404
    assert node.http.get("/healthz").text == "ok\n"
    assert node.http.get("/vkey").text == node.verifier.vkey + "\n"
    assert node.http.get("/add-checkpoint").status_code == 405


def test_state_survives_a_restart(world: World) -> None:
    record = grow(world.log, 4)
    node = world.new_witness(db="w1")
    assert node.post(body(world.log, 0, record)).status_code == 200
    before = node.witness.latest(origin_hash(ORIGIN))
    node.store.close()
    store = SqliteStore(world.tmp / "w1.db")
    world.stores.append(store)
    restarted = Witness(store, node.signer, [world.log_signer.verifier], clock=lambda: NOW + 60)
    assert restarted.latest(origin_hash(ORIGIN)) == before
    with pytest.raises(WitnessRejection) as info:
        restarted.add_checkpoint(body(world.log, 0, record))
    assert (info.value.status, info.value.size) == (409, 4)
    bigger = grow(world.log, 3)
    (line,) = restarted.add_checkpoint(body(world.log, 4, bigger))
    assert cosignature_timestamp(line) == NOW + 60


def test_witness_rejects_cosignature_keys_as_log_keys(world: World) -> None:
    store = SqliteStore(world.tmp / "bad.db", create=True)
    world.stores.append(store)
    signer = CosignatureSigner.generate("w")
    with pytest.raises(KeyMaterialError):
        Witness(store, signer, [signer.verifier])


# --- concurrency ------------------------------------------------------------------------------------------


def test_racing_requests_from_the_same_old_size_one_wins(world: World) -> None:
    """Both requests pass every check before either persists: the atomic advance decides."""
    small = grow(world.log, 4)
    big = grow(world.log, 4)
    barrier = threading.Barrier(2, timeout=10)

    def clock() -> int:
        barrier.wait()  # both requests are past the checks, about to persist
        return NOW

    node = world.new_witness(clock=clock)
    outcomes: dict[int, object] = {}

    def submit(record: CheckpointRecord) -> None:
        try:
            outcomes[record.size] = node.witness.add_checkpoint(body(world.log, 0, record))
        except WitnessRejection as exc:
            outcomes[record.size] = exc

    threads = [threading.Thread(target=submit, args=(r,)) for r in (small, big)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [size for size, out in outcomes.items() if isinstance(out, list)]
    losers = [out for out in outcomes.values() if isinstance(out, WitnessRejection)]
    assert len(winners) == 1
    assert len(losers) == 1
    assert (losers[0].status, losers[0].size) == (409, winners[0])
    latest = node.witness.latest(origin_hash(ORIGIN))
    assert latest is not None
    assert parse_signed_checkpoint(latest).checkpoint.size == winners[0]


def test_racing_http_requests_exactly_one_200(world: World) -> None:
    records = [grow(world.log, 1) for _ in range(8)]
    node = world.new_witness()
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(len(records), timeout=10)

    def submit(record: CheckpointRecord) -> None:
        payload = body(world.log, 0, record)
        start.wait()
        status = node.post(payload).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=submit, args=(r,)) for r in records]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [409] * (len(records) - 1)


# --- the client against misbehaving witnesses ----------------------------------------------------------


def mock_client(world: World, handler: Callable[[httpx.Request], httpx.Response]) -> WitnessClient:
    verifier = CosignatureSigner.generate("witness.example/mock").verifier
    return WitnessClient("mock", "http://mock.example/", verifier, transport=httpx.MockTransport(handler))


def test_client_maps_statuses_to_errors(world: World) -> None:
    record = grow(world.log, 2)
    answers = {
        500: httpx.Response(500, text="boom"),
        404: httpx.Response(404, text="unknown log"),
        422: httpx.Response(422, text="fork!"),
    }
    for status, answer in answers.items():
        client = mock_client(world, lambda _req, a=answer: a)  # type: ignore[misc]
        with pytest.raises(WitnessResponseError) as info:
            client.add_checkpoint(0, [], record.note)
        assert info.value.status == status
        assert str(status) in info.value.message
        assert info.value.hint
    # A 409 without the size content type is not a usable conflict.
    client = mock_client(world, lambda _req: httpx.Response(409, text="3\n"))
    with pytest.raises(WitnessResponseError):
        client.add_checkpoint(0, [], record.note)
    client = mock_client(
        world, lambda _req: httpx.Response(409, content=b"3\n", headers={"content-type": "text/x.tlog.size"})
    )
    with pytest.raises(WitnessConflict) as conflict:
        client.add_checkpoint(0, [], record.note)
    assert conflict.value.size == 3
    assert isinstance(conflict.value, ConflictError)


def test_client_verifies_cosignatures(world: World) -> None:
    record = grow(world.log, 2)
    body_text = parse_signed_checkpoint(record.note).checkpoint.body()
    signer = CosignatureSigner.generate("witness.example/mock")
    other = CosignatureSigner.generate("witness.example/other")

    def client_answering(text: str) -> WitnessClient:
        transport = httpx.MockTransport(lambda _req: httpx.Response(200, text=text))
        return WitnessClient("mock", "http://mock.example", signer.verifier, transport=transport)

    good = signer.cosign(body_text, NOW)
    extra = other.cosign(body_text, NOW)
    assert client_answering(extra.format() + good.format()).add_checkpoint(0, [], record.note) == [good]
    with pytest.raises(SignatureError, match="without a cosignature"):
        client_answering(extra.format()).add_checkpoint(0, [], record.note)
    wrong = signer.cosign(body_text.replace(ORIGIN, ORIGIN + "x"), NOW)
    with pytest.raises(SignatureError, match="does not verify"):
        client_answering(wrong.format()).add_checkpoint(0, [], record.note)
    with pytest.raises(SignatureError, match="timestamp 0"):
        client_answering(signer.cosign(body_text, 0).format()).add_checkpoint(0, [], record.note)
    with pytest.raises(RemoteError):
        client_answering("hello\n").add_checkpoint(0, [], record.note)
    with pytest.raises(RemoteError):
        client_answering(good.format().rstrip("\n")).add_checkpoint(0, [], record.note)


def test_client_network_errors_are_remote_errors(world: World) -> None:
    record = grow(world.log, 2)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(RemoteError, match="could not reach") as info:
        mock_client(world, refuse).add_checkpoint(0, [], record.note)
    assert info.value.hint
    with pytest.raises(RemoteError, match="did not answer within"):
        mock_client(world, slow).add_checkpoint(0, [], record.note)


# --- request_cosignatures ------------------------------------------------------------------------------


def policy_for(world: World, nodes: list[Node], k: int) -> Policy:
    return Policy.simple(world.log_signer.verifier, [(n.signer.name, n.verifier) for n in nodes], k)


def test_request_cosignatures_reaches_quorum(world: World) -> None:
    w1, w2 = world.new_witness("witness.example/w1"), world.new_witness("witness.example/w2")
    clients = [w1.client("w1"), w2.client("w2")]
    for n in (3, 5, 1):
        record = grow(world.log, n)
        assert request_cosignatures(world.log, record, clients) == {"w1": "ok", "w2": "ok"}
        signed = world.log.signed_checkpoint(record)
        verify_checkpoint_with_policy(signed.text, policy_for(world, [w1, w2], 2))
    stored = world.log.store.cosignatures(record.size)
    assert {c.witness for c in stored} == {"witness.example/w1", "witness.example/w2"}
    assert all(c.timestamp == NOW for c in stored)
    # Earlier checkpoints keep their cosignatures; each witness was asked from its last size.
    assert {c.size for c in world.log.store.cosignatures()} == {3, 8, 9}


def test_request_cosignatures_recovers_when_a_witness_is_ahead_of_the_log_belief(world: World) -> None:
    w1, w2 = world.new_witness("witness.example/w1"), world.new_witness("witness.example/w2")
    first = grow(world.log, 4)
    # w2 cosigned size 4 through another channel: the log does not know, so it sends old 0 and gets 409 4.
    w2.client().add_checkpoint(0, [], first.note)
    record = grow(world.log, 5)
    assert request_cosignatures(world.log, record, [w1.client("w1"), w2.client("w2")]) == {
        "w1": "ok",
        "w2": "ok",
    }
    verify_checkpoint_with_policy(world.log.signed_checkpoint(record).text, policy_for(world, [w1, w2], 2))


def test_request_cosignatures_recovers_when_a_witness_is_behind_the_log_belief(world: World) -> None:
    w1 = world.new_witness("witness.example/w1")
    record = grow(world.log, 4)
    assert request_cosignatures(world.log, record, [w1.client("w1")]) == {"w1": "ok"}
    # The witness lost its state (restored from an old backup): same key, empty store.
    reborn = world.new_witness("witness.example/w1", db="reborn", signer=w1.signer)
    record = grow(world.log, 4)
    assert request_cosignatures(world.log, record, [reborn.client("w1")]) == {"w1": "ok"}
    assert [c.size for c in world.log.store.cosignatures()] == [4, 8]


def test_request_cosignatures_reports_failures_without_raising(world: World) -> None:
    w1, w2 = world.new_witness("witness.example/w1"), world.new_witness("witness.example/w2")
    old = grow(world.log, 4)
    newer = grow(world.log, 4)
    w2.client().add_checkpoint(0, world.log.consistency_proof(0, 8), newer.note)  # w2 is beyond `old`

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    down = WitnessClient(
        "down", "http://down.example", CosignatureSigner.generate("d").verifier, transport=httpx.MockTransport(refuse)
    )
    report = request_cosignatures(world.log, old, [w1.client("w1"), w2.client("w2"), down])
    assert report["w1"] == "ok"
    assert "beyond this checkpoint" in report["w2"]
    assert "could not reach" in report["down"]
    with pytest.raises(QuorumError):
        verify_checkpoint_with_policy(world.log.signed_checkpoint(old).text, policy_for(world, [w1, w2], 2))
    verify_checkpoint_with_policy(world.log.signed_checkpoint(old).text, policy_for(world, [w1, w2], 1))


def test_a_forking_log_gets_no_cosignature(world: World) -> None:
    w1 = world.new_witness("witness.example/w1")
    assert request_cosignatures(world.log, grow(world.log, 4), [w1.client("w1")]) == {"w1": "ok"}
    fork = world.new_log("fork")
    record = grow(fork, 6, tag="fork")
    report = request_cosignatures(fork, record, [w1.client("w1")])
    assert "refused" in report["w1"]  # 409 from 0 to 4, then the proof from 4 fails: 422
    assert fork.store.cosignatures() == []


def test_witnesses_are_queried_concurrently(world: World) -> None:
    record = grow(world.log, 3)
    nodes = [world.new_witness(f"witness.example/slow{i}") for i in range(4)]

    def slow_transport(node: Node) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            time.sleep(0.4)
            try:
                lines = node.witness.add_checkpoint(request.content)
            except WitnessRejection as exc:
                return httpx.Response(exc.status, text=exc.message)
            return httpx.Response(200, text="".join(line.format() for line in lines))

        return httpx.MockTransport(handler)

    clients = [
        WitnessClient(f"s{i}", "http://slow.example", n.verifier, transport=slow_transport(n))
        for i, n in enumerate(nodes)
    ]
    started = time.monotonic()
    assert set(request_cosignatures(world.log, record, clients).values()) == {"ok"}
    assert time.monotonic() - started < 1.2  # four 0.4 s witnesses in sequence would take 1.6 s
    for client in clients:
        client.close()


# --- over a real socket ----------------------------------------------------------------------------------


@pytest.fixture
def served_witness(world: World) -> Iterator[tuple[Node, str]]:
    node = world.new_witness("witness.example/net")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_witness_app(node.witness), log_level="warning", lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield node, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_over_http(world: World, served_witness: tuple[Node, str]) -> None:
    node, url = served_witness
    with WitnessClient("net", url + "/", node.verifier, timeout=5.0) as client:
        for n in (2, 3, 7):
            record = grow(world.log, n)
            assert request_cosignatures(world.log, record, [client]) == {"net": "ok"}
        with pytest.raises(WitnessConflict) as info:
            client.add_checkpoint(0, [], record.note)
        assert info.value.size == 12
    policy = Policy.simple(world.log_signer.verifier, [("net", node.verifier)], 1)
    verify_checkpoint_with_policy(world.log.signed_checkpoint(record).text, policy)
    monitored = httpx.get(f"{url}/{origin_hash(ORIGIN)}/checkpoint", timeout=5)
    assert monitored.status_code == 200
    assert verify_checkpoint_with_policy(monitored.text, policy).checkpoint.size == 12
