"""Writes a byte stream of unknown length into a multipart upload.

The stream is cut into parts of ``part_size`` bytes. One part is sent while the next one
fills, and a writer whose part is still in flight when the next is full waits for it: when
the store is slower than the client, ``write`` waits, the caller stops reading, and flow
control pushes back on the client. An upload therefore holds about two parts in memory,
whatever its size.

Parts go down into a :class:`PartTarget`: the object store's multipart upload itself
(:class:`StoreUpload`), or one that also records each stored part so that a broken stream
can be continued (:class:`steno.gateway.uploads.resumable.RecordedUpload`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from steno.common.storage import MAX_PARTS, MIN_PART_BYTES, ObjectStore, StoredPart

log = logging.getLogger(__name__)


class PartTarget(Protocol):
    """Where a writer's parts go: one multipart upload."""

    async def put_part(self, number: int, data: bytes, before: Sequence[StoredPart]) -> StoredPart:
        """Stores part ``number``, which follows the stored parts ``before``; may raise to
        stop the writer (another stream has taken the upload over, say)."""
        ...

    async def complete(self, parts: Sequence[StoredPart]) -> None: ...

    async def abort(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StoreUpload:
    """The object store's multipart upload ``upload_id`` of ``key``."""

    store: ObjectStore
    key: str
    upload_id: str

    async def put_part(self, number: int, data: bytes, before: Sequence[StoredPart]) -> StoredPart:
        return await self.store.put_part(self.key, self.upload_id, number, data)

    async def complete(self, parts: Sequence[StoredPart]) -> None:
        await self.store.complete_upload(self.key, self.upload_id, parts)

    async def abort(self) -> None:
        await self.store.abort_upload(self.key, self.upload_id)


class MultipartWriter:
    """One stream into one multipart upload, possibly continuing after ``parts``."""

    def __init__(
        self,
        target: PartTarget,
        *,
        part_size: int,
        parts: Sequence[StoredPart] = (),
        first_number: int = 1,
    ) -> None:
        if part_size < MIN_PART_BYTES:
            raise ValueError(f"parts must hold at least {MIN_PART_BYTES} bytes")
        self._target = target
        self._part_size = part_size
        self._parts = list(parts)
        # Part numbers need only ascend: this writer's start at ``first_number``, or past the
        # stored parts' if that is higher (a stream continuing another skips the number the
        # other may still be storing).
        self._next_number = max([first_number, *(part.number + 1 for part in self._parts)])
        # The bytes of the part being filled: views of the chunks as they came, joined once
        # (the one copy a part costs) when the part is full.
        self._pending: list[memoryview] = []
        self._pending_bytes = 0
        self._in_flight: asyncio.Task[None] | None = None

    @property
    def parts(self) -> list[StoredPart]:
        """The parts stored so far."""
        return list(self._parts)

    async def write(self, chunk: bytes) -> None:
        """Appends ``chunk``; sends each part as it fills, waiting for the one before. A part
        that failed in the background raises here, at the next write."""
        if self._in_flight is not None and self._in_flight.done():
            await self._settle()
        rest = memoryview(chunk)
        while self._pending_bytes + len(rest) >= self._part_size:
            fits = self._part_size - self._pending_bytes
            self._pending.append(rest[:fits])
            rest = rest[fits:]
            await self._send(self._take_pending())
        if rest:
            self._pending.append(rest)
            self._pending_bytes += len(rest)

    async def commit(self) -> list[StoredPart]:
        """Sends what is left as the last part and completes the upload; returns its parts."""
        if self._pending_bytes or not self._parts:
            await self._send(self._take_pending())
        await self._settle()
        await self._target.complete(self._parts)
        return self.parts

    async def pause(self) -> None:
        """Stops, keeping every stored part for a later stream to continue from: waits for
        the part in flight and drops the bytes of the part not yet full."""
        self._take_pending()
        try:
            await self._settle()
        except Exception as exc:  # the error that made the caller stop is the one to report
            log.warning(
                "the last part of a paused upload was not stored", extra={"error": str(exc)}
            )

    async def abort(self) -> None:
        """Discards the upload and every part of it."""
        await self.pause()
        try:
            await self._target.abort()
        except Exception as exc:  # cleanup must not hide the error that caused it
            log.warning("could not abort an abandoned upload", extra={"error": str(exc)})

    def _take_pending(self) -> bytes:
        data = b"".join(self._pending)
        self._pending, self._pending_bytes = [], 0
        return data

    async def _send(self, data: bytes) -> None:
        await self._settle()
        number = self._next_number
        if number > MAX_PARTS:
            raise ValueError(f"an upload may have at most {MAX_PARTS} parts")
        self._next_number += 1
        self._in_flight = asyncio.create_task(self._store_part(number, data))

    async def _store_part(self, number: int, data: bytes) -> None:
        self._parts.append(await self._target.put_part(number, data, self.parts))

    async def _settle(self) -> None:
        """Waits for the part in flight, raising its error. Shielded: a caller cancelled
        meanwhile leaves the part to finish, so that :meth:`pause` can still keep it."""
        task = self._in_flight
        if task is None:
            return
        await asyncio.shield(task)
        self._in_flight = None
