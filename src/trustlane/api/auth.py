"""Who is calling: EdDSA-signed JWTs made with a party's own key, or API tokens issued by the node.

A JWT carries ``iss`` (the party name), ``aud`` (this node's origin), ``iat``, ``exp`` (at most
:data:`MAX_JWT_LIFETIME_S` after ``iat``) and ``jti``. It is signed with the party's Ed25519 key (JWS
``EdDSA``) and checked against the vkey the node registered for that party.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from trustlane.analysis.parties import TOKEN_PREFIX, Party, PartyRegistry
from trustlane.crypto.note import Ed25519KeyHolder

MAX_JWT_LIFETIME_S = 600
CLOCK_SKEW_S = 60


class AuthenticationFailed(Exception):
    """The credentials are missing, malformed, expired or do not verify (HTTP 401)."""


@dataclass(frozen=True)
class Caller:
    party: Party
    method: str  # "jwt" | "token"


def make_jwt(holder: Ed25519KeyHolder, audience: str, lifetime_s: int = 300) -> str:
    """A JWT for ``holder`` (a party's key) to call the node whose origin is ``audience``."""
    now = int(time.time())
    claims = {"iss": holder.name, "aud": audience, "iat": now, "exp": now + lifetime_s, "jti": secrets.token_hex(8)}
    return jwt.encode(claims, holder.private_key, algorithm="EdDSA")


def authenticate(authorization: str | None, parties: PartyRegistry, audience: str) -> Caller:
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthenticationFailed("send Authorization: Bearer <EdDSA JWT or API token>")
    credential = authorization[len("Bearer ") :].strip()
    if credential.startswith(TOKEN_PREFIX):
        party = parties.party_for_token(credential)
        if party is None:
            raise AuthenticationFailed("the API token is unknown, revoked or expired")
        return Caller(party, "token")
    try:
        unverified = jwt.decode(credential, options={"verify_signature": False})
        header = jwt.get_unverified_header(credential)
    except jwt.PyJWTError as exc:
        raise AuthenticationFailed(f"the bearer credential is not a JWT ({exc})") from None
    if header.get("alg") != "EdDSA":
        raise AuthenticationFailed("only EdDSA (Ed25519) JWTs are accepted")
    name = unverified.get("iss")
    party = parties.get(name) if isinstance(name, str) else None
    if party is None or not party.active:
        raise AuthenticationFailed("the JWT's issuer is not an active party of this node")
    key = Ed25519PublicKey.from_public_bytes(party.verifier.public_key)
    try:
        claims = jwt.decode(
            credential,
            key,
            algorithms=["EdDSA"],
            audience=audience,
            leeway=CLOCK_SKEW_S,
            options={"require": ["iss", "aud", "iat", "exp", "jti"]},
        )
    except jwt.PyJWTError as exc:
        raise AuthenticationFailed(f"the JWT does not verify: {exc}") from None
    if int(claims["exp"]) - int(claims["iat"]) > MAX_JWT_LIFETIME_S:
        raise AuthenticationFailed(f"the JWT lives longer than {MAX_JWT_LIFETIME_S} s")
    return Caller(party, "jwt")
