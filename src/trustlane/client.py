"""A client for a remote trustlane node, acting as one party with its own Ed25519 key."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from trustlane.analysis.contracts import acceptance_body
from trustlane.analysis.service import request_body, sign_request
from trustlane.api.auth import make_jwt
from trustlane.crypto.keys import NOTE_KEY, read_private_key
from trustlane.crypto.note import Ed25519Signer
from trustlane.crypto.signed_json import sign_json
from trustlane.errors import RemoteError, UsageError

TIMEOUT_S = 300.0  # an analysis runs inside the request


class NodeClient:
    def __init__(self, url: str, signer: Ed25519Signer | None = None, token: str | None = None) -> None:
        if signer is None and token is None:
            raise UsageError("a node client needs the party's key or an API token")
        self.url = url.rstrip("/")
        self.signer = signer
        self.token = token
        self._http = httpx.Client(base_url=self.url, timeout=TIMEOUT_S)
        self._origin: str | None = None

    @classmethod
    def for_party(cls, url: str, party: str, *, key: Path | None = None, home: Path | None = None) -> NodeClient:
        """A client signing as ``party`` with ``key``, or with the party's key kept in a local node home."""
        if key is None:
            from trustlane.config import resolve_home

            key = resolve_home(home) / "parties" / f"{party}.key"
            if not key.is_file():
                raise UsageError(f"no key for {party}", hint="pass --key FILE with the party's private key")
        name, private = read_private_key(key, NOTE_KEY)
        if name != party:
            raise UsageError(f"{key} is the key of {name!r}, not {party!r}")
        return cls(url, signer=Ed25519Signer(name, private))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- plumbing ----------------------------------------------------------------------------------------
    @property
    def origin(self) -> str:
        if self._origin is None:
            self._origin = str(self.keys()["origin"])
        return self._origin

    def _auth(self) -> dict[str, str]:
        if self.token is not None:
            return {"Authorization": f"Bearer {self.token}"}
        assert self.signer is not None
        return {"Authorization": f"Bearer {make_jwt(self.signer, self.origin)}"}

    def _call(self, method: str, path: str, *, auth: bool = True, json: Any = None) -> Any:
        try:
            response = self._http.request(method, path, headers=self._auth() if auth else None, json=json)
        except httpx.HTTPError as exc:
            raise RemoteError(
                f"node {self.url} cannot be reached: {exc}", hint="check --node and that it runs"
            ) from None
        if response.status_code >= 400:
            try:
                detail = response.json()
                message = detail.get("error") or detail.get("detail") or response.text
            except ValueError:
                message = response.text
            raise RemoteError(f"node {self.url} answered {response.status_code} to {method} {path}: {message}")
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    # --- API -----------------------------------------------------------------------------------------------
    def keys(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/keys", auth=False)
        return result

    def me(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/me")
        return result

    def contracts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/contracts")
        return result

    def contract(self, contract_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/contracts/{contract_id}")
        return result

    def accept(self, contract_id: str) -> dict[str, Any]:
        """Sign and send the acceptance of an offered contract."""
        if self.signer is None:
            raise UsageError("accepting a contract needs the party's key, not a token")
        import time

        digest = self.contract(contract_id)["status"]["policy_sha256"]
        body = acceptance_body(contract_id, digest, self.signer.name, time.time_ns())
        signed = {**body, "signature": sign_json(self.signer, "contract-acceptance", body)}
        result: dict[str, Any] = self._call("POST", f"/v1/contracts/{contract_id}/accept", json=signed)
        return result

    def run_analysis(
        self, contract_id: str, params: dict[str, Any], algorithm: str | None = None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if self.signer is None:
            raise UsageError("an analysis request must be signed with the party's key, not a token")
        request = sign_request(self.signer, request_body(contract_id, self.signer.name, algorithm, params))
        result = self._call("POST", "/v1/analyses", json=request)
        report = result.pop("report_json", None)
        return result, report

    def reports(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/reports")
        return result

    def report(self, report_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/reports/{report_id}")
        return result

    def audit(self, kind: str, value: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/audit?kind={kind}&id={value}")
        return result
