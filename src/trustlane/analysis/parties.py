"""Parties of a node: who may ask for what. Each has a role and an Ed25519 identity.

A party added without ``--vkey`` is *local*: its private key is made and kept in the node home
(``parties/NAME.key``, 0600) so the node's own CLI can act as it (tests, demos, a holder's staff). A party
added with a vkey is *remote*: it signs its own requests and API tokens, and the node only verifies.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from trustlane.catalog import tables as t
from trustlane.catalog.db import CatalogDB
from trustlane.crypto.keys import NOTE_KEY, read_private_key, write_private_key
from trustlane.crypto.note import SIG_TYPE_ED25519, Ed25519Signer, Verifier, parse_vkey
from trustlane.errors import ConflictError, KeyMaterialError, UsageError
from trustlane.ledger.log import Log

ROLES = ("holder", "agency", "insurer", "court", "regulator", "user", "witness")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
PARTY_KEY_DIR = "parties"
TOKEN_PREFIX = "tlt_"  # noqa: S105 - a prefix marking API tokens, not a secret
DEFAULT_TOKEN_DAYS = 30


def check_party_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UsageError(
            f"party name {str(name)[:80]!r} is not allowed",
            hint="use 1 to 63 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter "
            "or digit (e.g. cn-inspection-agency)",
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}", hint=f"choose one of: {', '.join(ROLES)}")
    return role


@dataclass(frozen=True)
class Party:
    name: str
    role: str
    vkey: str
    key_held: bool
    created_ns: int
    ledger_index: int
    revoked_ns: int | None = None

    @property
    def verifier(self) -> Verifier:
        return parse_vkey(self.vkey)

    @property
    def active(self) -> bool:
        return self.revoked_ns is None

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "role": self.role,
            "vkey": self.vkey,
            "local": self.key_held,
            "created": _iso(self.created_ns),
            "ledger_index": self.ledger_index,
            "revoked": None if self.revoked_ns is None else _iso(self.revoked_ns),
        }


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _party(row: object) -> Party:
    r = row._mapping  # type: ignore[attr-defined]
    return Party(
        name=r["name"],
        role=r["role"],
        vkey=r["vkey"],
        key_held=bool(r["key_held"]),
        created_ns=int(r["created_ns"]),
        ledger_index=int(r["ledger_index"]),
        revoked_ns=None if r["revoked_ns"] is None else int(r["revoked_ns"]),
    )


@dataclass(frozen=True)
class IssuedToken:
    token: str
    party: str
    expires_ns: int


class PartyRegistry:
    """Parties and their API tokens, kept in the node's catalog; every change is a ledger event."""

    def __init__(self, home: Path, catalog: CatalogDB, log: Log, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._home = home
        self._catalog = catalog
        self._log = log
        self._clock_ns = clock_ns

    def key_path(self, name: str) -> Path:
        return self._home / PARTY_KEY_DIR / f"{check_party_name(name)}.key"

    # --- parties --------------------------------------------------------------------------------------
    def add(self, name: str, role: str, vkey: str | None = None) -> Party:
        """Add a party; without ``vkey`` a key pair is made and kept in the node home."""
        check_party_name(name)
        check_role(role)
        signer: Ed25519Signer | None = None
        if vkey is None:
            signer = Ed25519Signer.generate(name)
            verifier = signer.verifier
        else:
            verifier = parse_vkey(vkey)
            if verifier.sig_type != SIG_TYPE_ED25519:
                raise KeyMaterialError(f"the key for {name} is not an Ed25519 signing key (type 0x01)")
            if verifier.name != name:
                raise KeyMaterialError(
                    f"the vkey names {verifier.name!r}, not the party {name!r}",
                    hint=f"make the party's key under its own name, e.g. `trustlane party keygen {name}`",
                )
        with self._catalog.write() as w:
            if w.conn.execute(select(t.parties.c.name).where(t.parties.c.name == name)).first() is not None:
                raise ConflictError(f"a party named {name!r} already exists", hint="pick another name")
            taken = w.conn.execute(select(t.parties.c.name).where(t.parties.c.vkey == verifier.vkey)).first()
            if taken is not None:
                raise ConflictError(f"this key already belongs to party {taken[0]!r}", hint="each party needs its own")
            if signer is not None:  # written before the row commits: a committed local party always has its key
                write_private_key(self.key_path(name), name, NOTE_KEY, signer.private_key)
            index = self._log.append_event(
                {"type": "party.added", "party": name, "role": role, "vkey": verifier.vkey}
            ).index
            now = self._clock_ns()
            w.conn.execute(
                t.parties.insert().values(
                    name=name,
                    role=role,
                    vkey=verifier.vkey,
                    key_held=signer is not None,
                    created_ns=now,
                    ledger_index=index,
                    revoked_ns=None,
                )
            )
        return Party(name, role, verifier.vkey, signer is not None, now, index)

    def get(self, name: str) -> Party | None:
        with self._catalog.read() as conn:
            row = conn.execute(select(t.parties).where(t.parties.c.name == name)).first()
        return None if row is None else _party(row)

    def require(self, name: str) -> Party:
        party = self.get(name)
        if party is None:
            raise UsageError(f"no party named {name!r} on this node", hint="list them with `trustlane party list`")
        return party

    def require_active(self, name: str) -> Party:
        party = self.require(name)
        if not party.active:
            raise UsageError(f"party {name!r} was revoked on {_iso(party.revoked_ns or 0)}")
        return party

    def by_role(self, role: str) -> list[Party]:
        return [p for p in self.all() if p.role == role]

    def all(self) -> list[Party]:
        with self._catalog.read() as conn:
            return [_party(r) for r in conn.execute(select(t.parties).order_by(t.parties.c.name))]

    def revoke(self, name: str, reason: str) -> Party:
        with self._catalog.write() as w:
            row = w.conn.execute(select(t.parties).where(t.parties.c.name == name).with_for_update()).first()
            if row is None:
                raise UsageError(f"no party named {name!r} on this node")
            if row._mapping["revoked_ns"] is not None:
                raise ConflictError(f"party {name!r} is already revoked")
            self._log.append_event({"type": "party.revoked", "party": name, "reason": reason})
            w.conn.execute(t.parties.update().where(t.parties.c.name == name).values(revoked_ns=self._clock_ns()))
            w.conn.execute(
                t.api_tokens.update().where(t.api_tokens.c.party == name).values(revoked_ns=self._clock_ns())
            )
        return self.require(name)

    def signer(self, name: str) -> Ed25519Signer:
        """The private key of a local party; a clear error for a remote one."""
        party = self.require_active(name)
        if not party.key_held:
            raise KeyMaterialError(
                f"party {name!r} is remote: this node does not hold its private key",
                hint=f"{name} acts through the API with its own key (`--node URL --key FILE`)",
            )
        key_name, key = read_private_key(self.key_path(name), NOTE_KEY)
        signer = Ed25519Signer(key_name, key)
        if signer.verifier.vkey != party.vkey:
            raise KeyMaterialError(f"{self.key_path(name)} is not the key registered for party {name!r}")
        return signer

    # --- API tokens ---------------------------------------------------------------------------------------
    def issue_token(self, name: str, label: str = "", days: int = DEFAULT_TOKEN_DAYS) -> IssuedToken:
        """A bearer token for scripts; only its SHA-256 is stored, so it is shown once."""
        party = self.require_active(name)
        if not 1 <= days <= 366:
            raise UsageError(f"a token may live 1 to 366 days, not {days}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock_ns()
        expires = now + days * 86_400 * 10**9
        with self._catalog.write() as w:
            w.conn.execute(
                t.api_tokens.insert().values(
                    token_sha256=hashlib.sha256(token.encode()).hexdigest(),
                    party=party.name,
                    label=label[:200],
                    created_ns=now,
                    expires_ns=expires,
                    revoked_ns=None,
                )
            )
        return IssuedToken(token, party.name, expires)

    def party_for_token(self, token: str) -> Party | None:
        """The active party a live token belongs to, else None."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._catalog.read() as conn:
            row = conn.execute(select(t.api_tokens).where(t.api_tokens.c.token_sha256 == digest)).first()
        if row is None:
            return None
        r = row._mapping
        if r["revoked_ns"] is not None or int(r["expires_ns"]) <= self._clock_ns():
            return None
        party = self.get(str(r["party"]))
        return party if party is not None and party.active else None
