"""A directory as the object store: the embedded default for ``steno dev``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from steno.common.storage import DeleteFailure


class FilesystemStore:
    """Objects are files under ``root``; a write goes to a temporary file renamed on commit.
    The temporary file (last written) is how old a partial write is."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def ensure_ready(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    def writer(self, key: str, content_type: str) -> FilesystemWriter:
        return FilesystemWriter(self._path(key))

    async def download(self, key: str, destination: Path) -> None:
        await asyncio.to_thread(shutil.copyfile, self._path(key), destination)

    async def delete_many(self, keys: Sequence[str]) -> list[DeleteFailure]:
        return await asyncio.to_thread(self._delete_many, keys)

    def _delete_many(self, keys: Sequence[str]) -> list[DeleteFailure]:
        failures = []
        for key in keys:
            try:
                self._path(key).unlink(missing_ok=True)
            except OSError as exc:
                failures.append(DeleteFailure(key, str(exc)))
        return failures

    async def abort_stale_uploads(self, started_before: datetime) -> int:
        return await asyncio.to_thread(self._abort_stale_uploads, started_before.timestamp())

    def _abort_stale_uploads(self, cutoff: float) -> int:
        aborted = 0
        for partial in self.root.rglob(".*.partial"):
            with contextlib.suppress(FileNotFoundError):
                if partial.stat().st_mtime < cutoff:
                    partial.unlink()
                    aborted += 1
        return aborted

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"object key {key!r} escapes the store")
        return path


class FilesystemWriter:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
        self._file: BinaryIO | None = None

    async def write(self, chunk: bytes) -> None:
        if self._file is None:
            self._file = await asyncio.to_thread(self._open)
        await asyncio.to_thread(self._file.write, chunk)

    async def commit(self) -> None:
        if self._file is None:
            self._file = await asyncio.to_thread(self._open)
        await asyncio.to_thread(self._finish)

    async def abort(self) -> None:
        await asyncio.to_thread(self._discard)

    def _open(self) -> BinaryIO:
        self._partial.parent.mkdir(parents=True, exist_ok=True)
        return self._partial.open("xb")

    def _finish(self) -> None:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._partial.replace(self._path)

    def _discard(self) -> None:
        if self._file is not None:
            self._file.close()
        self._partial.unlink(missing_ok=True)
