"""The object store port: where uploaded audio lives between upload and retention's end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from steno.common.errors import StorageUnavailable


@dataclass(frozen=True, slots=True)
class DeleteFailure:
    key: str
    reason: str


class ObjectWriter(Protocol):
    """One object being written. Bytes become visible only after :meth:`commit`."""

    async def write(self, chunk: bytes) -> None:
        """Appends ``chunk``; waits while the store is behind, so memory stays bounded."""
        ...

    async def commit(self) -> None:
        """Finishes the object; raises :class:`StorageUnavailable` if it could not be stored."""
        ...

    async def abort(self) -> None:
        """Discards everything written so far; leaves no object or partial upload behind."""
        ...


class ObjectStore(Protocol):
    async def ensure_ready(self) -> None:
        """Creates the bucket or directory if needed; raises if the store is unreachable."""
        ...

    def writer(self, key: str, content_type: str) -> ObjectWriter: ...

    async def download(self, key: str, destination: Path) -> None:
        """Copies the object to a local file, streaming; raises FileNotFoundError if absent."""
        ...

    async def delete_many(self, keys: Sequence[str]) -> list[DeleteFailure]:
        """Deletes the objects in one batch; a key that is already gone counts as deleted."""
        ...

    async def abort_stale_uploads(self, started_before: datetime) -> int:
        """Discards the partial writes started before the given time that were never
        committed or aborted (their writer's process died); returns how many."""
        ...


__all__ = ["DeleteFailure", "ObjectStore", "ObjectWriter", "StorageUnavailable"]
