"""Content-addressed blob store on the local file system (encrypted segments live here).

``put`` writes a temp file in the target folder, fsyncs it, renames it into place and fsyncs the folder,
so a blob is either absent or complete after a crash.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from trustlane.errors import StorageError, UsageError

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        if not _DIGEST.fullmatch(digest):
            raise UsageError(f"{digest!r} is not a SHA-256 hex digest")
        return self.root / digest[:2] / f"{digest}.tle"

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def put(self, digest: str, data: bytes) -> Path:
        target = self.path(digest)
        folder = target.parent
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = folder / f".{digest}.{secrets.token_hex(4)}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                tmp.replace(target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise StorageError(f"cannot write blob {target}: {exc.strerror}", hint="check free disk space") from exc
        return target

    def get(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise StorageError(
                f"blob {digest} is missing from {self.root}", hint="restore the node's blobs folder from backup"
            ) from exc

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)
