"""Transparency log trust policies (c2sp.org/tlog-policy) and checkpoint verification under them.

A policy names the trusted logs, the trusted witnesses and a quorum rule over (nested) witness groups::

    log <vkey> [<url>]
    witness <name> <vkey> [<url>]
    group <name> all|any|<k> <name>...
    quorum <name>|none

Logs use Ed25519 note keys (type 0x01), witnesses timestamped Ed25519 cosignature keys (type 0x04).
Non-ASCII text must be UTF-8 (the spec only recommends it); names are compared as exact strings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from trustlane.crypto.note import (
    SIG_TYPE_COSIGNATURE_ED25519,
    SIG_TYPE_ED25519,
    Verifier,
    check_signatures,
    decode_text,
    parse_vkey,
)
from trustlane.errors import KeyMaterialError, MalformedInput, QuorumError, SignatureError
from trustlane.ledger.checkpoint import SignedCheckpoint, parse_signed_checkpoint

NONE = "none"
MAX_POLICY_SIZE = 1 << 20
MAX_LOGS = 256
MAX_WITNESSES = 256
MAX_GROUPS = 256

_FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_FIELD_SEP = re.compile(r"[ \t]+")
_NOT_IN_TOKEN = re.compile(r"[\x00-\x20\x7f]")
_THRESHOLD = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True)
class Group:
    """A witness group: it witnesses a checkpoint when at least ``threshold`` of its members do."""

    name: str
    threshold: int
    members: tuple[str, ...]

    def threshold_text(self) -> str:
        """The threshold as written in a policy file: ``all``, ``any`` or a number."""
        if self.threshold == len(self.members):
            return "all"
        if self.threshold == 1:
            return "any"
        return str(self.threshold)


class _Builder:
    """Checks policy definitions one at a time, in file order; every check of the spec lives here."""

    def __init__(self) -> None:
        self.logs: list[Verifier] = []
        self.log_urls: dict[str, str] = {}
        self.witnesses: dict[str, Verifier] = {}
        self.witness_urls: dict[str, str] = {}
        self.groups: dict[str, Group] = {}
        self.quorum: str | None = None
        self.has_quorum = False
        self._members: set[str] = set()

    def add_log(self, verifier: Verifier, url: str | None = None) -> None:
        if verifier.sig_type != SIG_TYPE_ED25519:
            raise MalformedInput(
                f"log key {verifier.name!r} has signature type 0x{verifier.sig_type:02x}, not 0x01",
                hint="log lines need the log's Ed25519 note vkey; witness keys (0x04) go on witness lines",
            )
        if any(log.public_key == verifier.public_key for log in self.logs):
            raise MalformedInput(
                f"log key {verifier.name!r} is listed twice",
                hint="remove the duplicate log line (same public key)",
            )
        if len(self.logs) >= MAX_LOGS:
            raise MalformedInput(f"policy lists more than {MAX_LOGS} logs", hint="remove unused logs")
        if url is not None:
            _check_token(url, "log URL")
            self.log_urls[verifier.vkey] = url
        self.logs.append(verifier)

    def add_witness(self, name: str, verifier: Verifier, url: str | None = None) -> None:
        self._check_new_name(name, "witness")
        if verifier.sig_type != SIG_TYPE_COSIGNATURE_ED25519:
            raise MalformedInput(
                f"witness {name!r} has a key of signature type 0x{verifier.sig_type:02x}, not 0x04",
                hint="witness lines need the witness's Ed25519 cosignature vkey (type 0x04)",
            )
        for other, known in self.witnesses.items():
            if known.public_key == verifier.public_key:
                raise MalformedInput(
                    f"witness {name!r} has the same public key as witness {other!r}",
                    hint="remove the duplicate witness line; each witness key may be listed once",
                )
        if len(self.witnesses) >= MAX_WITNESSES:
            raise MalformedInput(f"policy lists more than {MAX_WITNESSES} witnesses", hint="remove unused witnesses")
        if url is not None:
            _check_token(url, "witness URL")
            self.witness_urls[name] = url
        self.witnesses[name] = verifier

    def add_group(self, name: str, threshold: int, members: Sequence[str]) -> None:
        self._check_new_name(name, "group")
        if not members:
            raise MalformedInput(f"group {name!r} has no members", hint="list at least one member")
        seen: set[str] = set()
        for member in members:
            if member == NONE:
                raise MalformedInput(
                    f"group {name!r} lists 'none' as a member",
                    hint="'none' may only be used on the quorum line",
                )
            if member not in self.witnesses and member not in self.groups:
                raise MalformedInput(
                    f"group {name!r} lists {member!r}, which is not defined on an earlier line",
                    hint="define each witness or group before the group that uses it",
                )
            if member in seen or member in self._members:
                raise MalformedInput(
                    f"{member!r} is listed as a group member more than once",
                    hint="each witness or group may be a member of one group, once",
                )
            seen.add(member)
        if not 1 <= threshold <= len(members):
            raise MalformedInput(
                f"group {name!r} needs {threshold} of {len(members)} members; 1 <= k <= n must hold",
                hint="use a threshold between 1 and the number of members, or 'all' / 'any'",
            )
        if len(self.groups) >= MAX_GROUPS:
            raise MalformedInput(f"policy defines more than {MAX_GROUPS} groups", hint="simplify the quorum")
        self._members |= seen
        self.groups[name] = Group(name, threshold, tuple(members))

    def set_quorum(self, name: str | None) -> None:
        if self.has_quorum:
            raise MalformedInput("policy has more than one quorum line", hint="keep exactly one quorum line")
        if name is not None and name not in self.witnesses and name not in self.groups:
            raise MalformedInput(
                f"quorum {name!r} is not a witness or group defined on an earlier line",
                hint="define the witness or group before the quorum line, or use 'quorum none'",
            )
        self.quorum = name
        self.has_quorum = True

    def build(self) -> Policy:
        if not self.has_quorum:
            raise MalformedInput(
                "policy has no quorum line",
                hint="add 'quorum <witness or group name>', or 'quorum none' to require no cosignatures",
            )
        return Policy(
            tuple(self.logs),
            dict(self.witnesses),
            dict(self.groups),
            self.quorum,
            dict(self.log_urls),
            dict(self.witness_urls),
        )

    def _check_new_name(self, name: str, kind: str) -> None:
        _check_token(name, f"{kind} name")
        if name == NONE:
            raise MalformedInput(f"a {kind} may not be named 'none'", hint="'none' is reserved for 'quorum none'")
        if name in self.witnesses or name in self.groups:
            raise MalformedInput(
                f"{kind} name {name!r} is already defined",
                hint="witnesses and groups share one namespace; give each a distinct name",
            )


@dataclass(frozen=True)
class Policy:
    """Trusted logs, trusted witnesses and the quorum of witnesses a checkpoint needs.

    ``quorum`` is a witness or group name, or None for ``quorum none``. ``log_urls`` is keyed by vkey,
    ``witness_urls`` by witness name. Construction validates the policy like ``parse_policy`` does.
    """

    logs: tuple[Verifier, ...]
    witnesses: dict[str, Verifier]
    groups: dict[str, Group]
    quorum: str | None
    log_urls: dict[str, str] = field(default_factory=dict)
    witness_urls: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check = _Builder()
        for log in self.logs:
            check.add_log(log, self.log_urls.get(log.vkey))
        for name, witness in self.witnesses.items():
            check.add_witness(name, witness, self.witness_urls.get(name))
        for name, group in self.groups.items():
            if group.name != name:
                raise MalformedInput(
                    f"group {group.name!r} is filed under {name!r}", hint="key groups by their own name"
                )
            check.add_group(name, group.threshold, group.members)
        check.set_quorum(self.quorum)

    @classmethod
    def simple(cls, log: Verifier, witnesses: Sequence[tuple[str, Verifier]], k: int) -> Policy:
        """A policy trusting ``log`` and requiring cosignatures from ``k`` of ``witnesses`` (0: none)."""
        builder = _Builder()
        builder.add_log(log)
        for name, verifier in witnesses:
            builder.add_witness(name, verifier)
        if k == 0:
            builder.set_quorum(None)
        else:
            group = "quorum"
            while group in builder.witnesses:
                group += "-group"
            builder.add_group(group, k, [name for name, _ in witnesses])
            builder.set_quorum(group)
        return builder.build()

    def format(self) -> str:
        """The policy as a policy file."""
        lines = [_join("log", log.vkey, self.log_urls.get(log.vkey)) for log in self.logs]
        lines += [
            _join("witness", name, verifier.vkey, self.witness_urls.get(name))
            for name, verifier in self.witnesses.items()
        ]
        lines += [_join("group", group.name, group.threshold_text(), *group.members) for group in self.groups.values()]
        lines.append(_join("quorum", self.quorum or NONE))
        return "".join(f"{line}\n" for line in lines)

    def logs_for_origin(self, origin: str) -> tuple[Verifier, ...]:
        """The trusted log keys for ``origin`` (the key name is the origin); empty when none."""
        return tuple(log for log in self.logs if log.name == origin)

    def log_for_origin(self, origin: str) -> Verifier:
        """The (first) trusted log key for ``origin``; KeyMaterialError when the policy has none."""
        return self.require_logs_for_origin(origin)[0]

    def require_logs_for_origin(self, origin: str) -> tuple[Verifier, ...]:
        """The trusted log keys for ``origin``; KeyMaterialError when the policy has none."""
        logs = self.logs_for_origin(origin)
        if not logs:
            known = ", ".join(log.name for log in self.logs) or "none"
            raise KeyMaterialError(
                f"the policy trusts no log with origin {origin!r} (trusted logs: {known})",
                hint="add a 'log <vkey>' line for this log to the policy, "
                "or check that the checkpoint comes from the log you expect",
            )
        return logs

    def quorum_satisfied(self, cosigned_by: set[str]) -> bool:
        """Whether cosignatures from the witnesses named in ``cosigned_by`` meet the quorum."""
        return self.quorum is None or self._witnessed(self.quorum, cosigned_by)

    def describe_quorum(self) -> str:
        """The quorum rule in words, e.g. ``X-and-Y = all of [X = 2 of [X1, X2, X3], Y1]``."""
        return NONE if self.quorum is None else self._describe(self.quorum)

    def _witnessed(self, name: str, cosigned_by: set[str]) -> bool:
        group = self.groups.get(name)
        if group is None:
            return name in cosigned_by
        count = sum(1 for member in group.members if self._witnessed(member, cosigned_by))
        return count >= group.threshold

    def _describe(self, name: str) -> str:
        group = self.groups.get(name)
        if group is None:
            return name
        inner = ", ".join(self._describe(member) for member in group.members)
        return f"{name} = {group.threshold_text()} of [{inner}]"


def _check_token(value: str, what: str) -> None:
    if not value or _NOT_IN_TOKEN.search(value):
        raise MalformedInput(
            f"{what} {value!r} is empty or contains whitespace or control characters",
            hint="names and URLs in a policy are single words without spaces or tabs",
        )


def _join(*fields: str | None) -> str:
    return " ".join(f for f in fields if f is not None)


def parse_policy(text: str | bytes) -> Policy:
    """Parse a policy file; every error names the offending line."""
    text = decode_text(text, "policy", MAX_POLICY_SIZE)
    builder = _Builder()
    for lineno, line in enumerate(text.split("\n"), start=1):
        try:
            _parse_line(builder, line)
        except (MalformedInput, KeyMaterialError) as exc:
            raise MalformedInput(f"policy line {lineno}: {exc.message}", hint=exc.hint) from exc
    return builder.build()


def _parse_line(builder: _Builder, line: str) -> None:
    bad = _FORBIDDEN.search(line)
    if bad:
        raise MalformedInput(
            f"control character U+{ord(bad.group()):04X} is not allowed",
            hint="policy files may contain tabs and newlines but no other control characters "
            "(save with Unix line endings)",
        )
    stripped = line.strip(" \t")
    if not stripped or stripped.startswith("#"):
        return
    keyword, *args = _FIELD_SEP.split(stripped)
    if keyword == "log" and len(args) in (1, 2):
        builder.add_log(parse_vkey(args[0]), args[1] if len(args) == 2 else None)
    elif keyword == "witness" and len(args) in (2, 3):
        builder.add_witness(args[0], parse_vkey(args[1]), args[2] if len(args) == 3 else None)
    elif keyword == "group" and len(args) >= 3:
        members = args[2:]
        builder.add_group(args[0], _parse_threshold(args[1], len(members)), members)
    elif keyword == "quorum" and len(args) == 1:
        builder.set_quorum(None if args[0] == NONE else args[0])
    elif keyword in ("log", "witness", "group", "quorum"):
        raise MalformedInput(f"'{keyword}' line has the wrong number of fields", hint=_SYNTAX)
    else:
        raise MalformedInput(f"unknown keyword {keyword[:40]!r}", hint=_SYNTAX)


_SYNTAX = (
    "lines are 'log <vkey> [url]', 'witness <name> <vkey> [url]', "
    "'group <name> all|any|<k> <member>...', 'quorum <name>|none', blank, or '#' comments"
)


def _parse_threshold(text: str, members: int) -> int:
    if text == "all":
        return members
    if text == "any":
        return 1
    if not _THRESHOLD.fullmatch(text):
        raise MalformedInput(
            f"group threshold {text[:40]!r} is not 'all', 'any' or a decimal number",
            hint="write e.g. 'group G 2 W1 W2 W3'",
        )
    return int(text)


def verify_checkpoint_with_policy(data: str | bytes | SignedCheckpoint, policy: Policy) -> SignedCheckpoint:
    """Verify a checkpoint's log signature and witness cosignatures against ``policy``.

    The checkpoint must be signed by a log the policy trusts for its origin; every cosignature by a witness
    the policy knows must verify; the witnesses whose cosignatures verified must meet the quorum.
    """
    signed = data if isinstance(data, SignedCheckpoint) else parse_signed_checkpoint(data)
    checkpoint = signed.checkpoint
    logs = policy.require_logs_for_origin(checkpoint.origin)
    verified = check_signatures(signed.note, [*logs, *policy.witnesses.values()])
    if not any(log in verified for log in logs):
        raise SignatureError(
            f"checkpoint of {checkpoint.origin!r} at size {checkpoint.size} carries no valid signature "
            "from a log key the policy trusts",
            hint="check that the policy's log vkey is current and that the checkpoint came from that log",
        )
    cosigned_by = {name for name, witness in policy.witnesses.items() if witness in verified}
    if not policy.quorum_satisfied(cosigned_by):
        signers = ", ".join(sorted(cosigned_by)) or "none"
        raise QuorumError(
            f"checkpoint of {checkpoint.origin!r} at size {checkpoint.size} is cosigned by "
            f"{len(cosigned_by)} of the policy's {len(policy.witnesses)} witnesses ({signers}); "
            f"the policy requires {policy.describe_quorum()}",
            hint="obtain a checkpoint cosigned by more of the policy's witnesses, "
            "or check that the witness vkeys in the policy are current",
        )
    return signed


__all__ = [
    "Group",
    "Policy",
    "parse_policy",
    "verify_checkpoint_with_policy",
]
