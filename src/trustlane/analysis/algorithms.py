"""The algorithm registry: packages pinned by the digest of their file tree, and who approved them.

``register`` copies the package into the node home (``algorithms/NAME/VERSION``) and records its digest;
``approve`` records a signed approval (the holder's, optionally a regulator's). Before every run the
stored copy is hashed again (:meth:`AlgorithmRegistry.runnable`): a package changed after approval — by
anyone, including itself — no longer runs.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from trustlane.analysis.package import AlgorithmPackage, copy_package, load_package, tree_digest
from trustlane.catalog import tables as t
from trustlane.catalog.db import CatalogDB
from trustlane.crypto.note import Ed25519KeyHolder
from trustlane.crypto.signed_json import sign_json
from trustlane.errors import ConflictError, IntegrityError, UsageError
from trustlane.ledger.log import Log

ALGORITHM_DIR = "algorithms"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+-]{0,39}")


def parse_ref(ref: str) -> tuple[str, str]:
    """``NAME@VERSION`` → (name, version), checked."""
    name, sep, version = ref.partition("@")
    if not sep:
        raise UsageError(f"{ref!r} names no version", hint="write NAME@VERSION, e.g. collision-timing@1.0.0")
    return check_name(name), check_version(version)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"algorithm name {name[:80]!r} is not allowed",
            hint="use lower-case letters, digits, '.', '_' or '-' (e.g. collision-timing)",
        )
    return name


def check_version(version: str) -> str:
    if not _VERSION.fullmatch(version):
        raise UsageError(f"algorithm version {version[:80]!r} is not allowed", hint="e.g. 1.0.0")
    return version


@dataclass(frozen=True)
class Approval:
    by: str
    role: str
    at_ns: int
    ledger_index: int
    signature: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "role": self.role,
            "at_ns": str(self.at_ns),
            "ledger_index": self.ledger_index,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Approval:
        return cls(value["by"], value["role"], int(value["at_ns"]), int(value["ledger_index"]), value["signature"])


@dataclass(frozen=True)
class RegisteredAlgorithm:
    name: str
    version: str
    digest: str
    schema: dict[str, Any]
    registered_ns: int
    ledger_index: int
    approvals: tuple[Approval, ...]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def holder_approved(self) -> bool:
        return any(a.role == "holder" for a in self.approvals)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "registered_ns": str(self.registered_ns),
            "ledger_index": self.ledger_index,
            "approvals": [a.to_json() for a in self.approvals],
        }


def approval_body(name: str, version: str, digest: str, by: str, role: str, at_ns: int) -> dict[str, Any]:
    """What an approver signs (purpose ``algorithm-approval``)."""
    return {"algorithm": name, "version": version, "digest": digest, "by": by, "role": role, "at_ns": str(at_ns)}


def _algorithm(row: object) -> RegisteredAlgorithm:
    r = row._mapping  # type: ignore[attr-defined]
    return RegisteredAlgorithm(
        name=r["name"],
        version=r["version"],
        digest=r["digest"],
        schema=json.loads(r["schema_json"]),
        registered_ns=int(r["registered_ns"]),
        ledger_index=int(r["ledger_index"]),
        approvals=tuple(Approval.from_json(a) for a in json.loads(r["approvals_json"])),
    )


class AlgorithmRegistry:
    def __init__(self, home: Path, catalog: CatalogDB, log: Log, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._home = home
        self._catalog = catalog
        self._log = log
        self._clock_ns = clock_ns

    def package_dir(self, name: str, version: str) -> Path:
        return self._home / ALGORITHM_DIR / check_name(name) / check_version(version)

    def register(self, path: Path, name: str, version: str) -> RegisteredAlgorithm:
        """Pin the package at ``path`` as NAME@VERSION: a frozen copy in the home, its digest in the ledger."""
        check_name(name)
        check_version(version)
        package = load_package(path)
        if self.get(name, version) is not None:
            raise ConflictError(
                f"{name}@{version} is already registered",
                hint="a registered version never changes; register the new code under a new --version",
            )
        dest = self.package_dir(name, version)
        staging = dest.with_name(f".{version}.staging")
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        try:
            copied = copy_package(package, staging)
            now = self._clock_ns()
            with self._catalog.write() as w:
                index = self._log.append_event(
                    {"type": "algorithm.registered", "algorithm": name, "version": version, "digest": copied.digest}
                ).index
                w.conn.execute(
                    t.algorithms.insert().values(
                        name=name,
                        version=version,
                        digest=copied.digest,
                        schema_json=json.dumps(copied.schema, sort_keys=True),
                        registered_ns=now,
                        ledger_index=index,
                        approvals_json="[]",
                    )
                )
                if dest.exists():  # left by a registration that failed after its copy; never registered
                    shutil.rmtree(dest)
                staging.rename(dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.require(name, version)

    def approve(self, name: str, version: str, approver: Ed25519KeyHolder, role: str) -> RegisteredAlgorithm:
        """Record ``approver``'s signed approval of the registered, unmodified NAME@VERSION."""
        if role not in ("holder", "regulator"):
            raise UsageError(
                f"a {role} cannot approve algorithms", hint="approvals come from the holder or a regulator"
            )
        algorithm = self.require(name, version)
        self._check_unmodified(algorithm)
        if any(a.by == approver.name for a in algorithm.approvals):
            raise ConflictError(f"{approver.name} has already approved {algorithm.ref}")
        now = self._clock_ns()
        body = approval_body(name, version, algorithm.digest, approver.name, role, now)
        signature = sign_json(approver, "algorithm-approval", body)
        with self._catalog.write() as w:
            index = self._log.append_event(
                {
                    "type": "algorithm.approved",
                    "algorithm": name,
                    "version": version,
                    "digest": algorithm.digest,
                    "by": approver.name,
                    "role": role,
                }
            ).index
            approvals = [*algorithm.approvals, Approval(approver.name, role, now, index, signature)]
            w.conn.execute(
                t.algorithms.update()
                .where(t.algorithms.c.name == name, t.algorithms.c.version == version)
                .values(approvals_json=json.dumps([a.to_json() for a in approvals]))
            )
        return self.require(name, version)

    def get(self, name: str, version: str) -> RegisteredAlgorithm | None:
        query = select(t.algorithms).where(t.algorithms.c.name == name, t.algorithms.c.version == version)
        with self._catalog.read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _algorithm(row)

    def require(self, name: str, version: str) -> RegisteredAlgorithm:
        found = self.get(name, version)
        if found is None:
            raise UsageError(
                f"algorithm {name}@{version} is not registered on this node",
                hint="register it with `trustlane algorithm register PATH --name NAME --version V`",
            )
        return found

    def all(self) -> list[RegisteredAlgorithm]:
        with self._catalog.read() as conn:
            rows = conn.execute(select(t.algorithms).order_by(t.algorithms.c.name, t.algorithms.c.version))
            return [_algorithm(r) for r in rows]

    def _check_unmodified(self, algorithm: RegisteredAlgorithm) -> None:
        where = self.package_dir(algorithm.name, algorithm.version)
        if not where.is_dir():
            raise IntegrityError(f"the stored copy of {algorithm.ref} is missing ({where})")
        digest = tree_digest(where)
        if digest != algorithm.digest:
            raise IntegrityError(
                f"the stored copy of {algorithm.ref} was modified after registration "
                f"(digest {digest}, registered {algorithm.digest})",
                hint="it will not run; register the intended code under a new version and approve it again",
            )

    def runnable(self, name: str, version: str, digest: str) -> tuple[RegisteredAlgorithm, AlgorithmPackage]:
        """The algorithm and its verified package, or the reason it may not run (UsageError/IntegrityError)."""
        algorithm = self.require(name, version)
        if algorithm.digest != digest:
            raise IntegrityError(
                f"{algorithm.ref} has digest {algorithm.digest}, but the contract pins {digest}",
                hint="the contract was granted for other code",
            )
        if not algorithm.holder_approved:
            raise UsageError(
                f"{algorithm.ref} is registered but not approved",
                hint=f"run `trustlane algorithm approve {algorithm.ref}`",
            )
        self._check_unmodified(algorithm)
        package = load_package(self.package_dir(name, version))
        if package.digest != digest:  # changed between the two reads
            raise IntegrityError(f"the stored copy of {algorithm.ref} changed while it was being loaded")
        return algorithm, package
