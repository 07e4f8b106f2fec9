"""MultipartWriter: a stream cut into parts, one in flight at a time, that can stop and be
continued by another writer from its last stored part."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import pytest

from steno.common.storage import MIN_PART_BYTES, StoredPart
from steno.gateway.uploads.multipart import MultipartWriter, StoreUpload
from tests.fakes import FakeObjectStore

PART = MIN_PART_BYTES
KEY = "audio/x"


def data_of(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


class GatedStore(FakeObjectStore):
    """Holds every put_part until the test lets it through."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.puts_started = 0

    async def put_part(self, key: str, upload_id: str, number: int, data: bytes) -> StoredPart:
        self.puts_started += 1
        await self.gate.wait()
        return await super().put_part(key, upload_id, number, data)


@dataclass(frozen=True)
class ListenedUpload(StoreUpload):
    """A store upload that tells ``listener`` every part stored, all of them so far."""

    listener: Callable[[Sequence[StoredPart]], Awaitable[None]]

    async def put_part(self, number: int, data: bytes, before: Sequence[StoredPart]) -> StoredPart:
        part = await super().put_part(number, data, before)
        await self.listener([*before, part])
        return part


def writer_of(
    store: FakeObjectStore,
    upload_id: str,
    *,
    parts: Sequence[StoredPart] = (),
    first_number: int = 1,
) -> MultipartWriter:
    target = StoreUpload(store, KEY, upload_id)
    return MultipartWriter(target, part_size=PART, parts=parts, first_number=first_number)


async def write_all(writer: MultipartWriter, data: bytes, chunk: int = 256 * 1024) -> None:
    for start in range(0, len(data), chunk):
        await writer.write(data[start : start + chunk])


async def test_a_stream_becomes_parts_of_part_size_and_then_the_object() -> None:
    store = FakeObjectStore()
    upload_id = await store.start_upload(KEY, "audio/wav")
    seen: list[list[int]] = []

    async def on_parts(parts: Sequence[StoredPart]) -> None:
        seen.append([part.size for part in parts])

    writer = MultipartWriter(ListenedUpload(store, KEY, upload_id, on_parts), part_size=PART)
    data = data_of(2 * PART + 12345)
    await write_all(writer, data, chunk=100_003)  # chunks that straddle part boundaries
    parts = await writer.commit()

    assert [part.number for part in parts] == [1, 2, 3]
    assert [part.size for part in parts] == [PART, PART, 12345]
    assert seen == [[PART], [PART, PART], [PART, PART, 12345]]
    assert store.objects[KEY] == data
    assert store.open_uploads() == []


async def test_an_empty_stream_becomes_an_empty_object() -> None:
    store = FakeObjectStore()
    writer = writer_of(store, await store.start_upload(KEY, "x"))

    await writer.commit()

    assert store.objects[KEY] == b""


async def test_a_full_part_waits_for_the_one_in_flight() -> None:
    """Back-pressure: with part 1 still being stored, filling part 2 does not return, so
    the caller stops reading and memory stays at two parts."""
    store = GatedStore()
    writer = writer_of(store, await store.start_upload(KEY, "x"))
    await writer.write(data_of(PART))  # part 1 goes in flight; write returns at once
    async with asyncio.timeout(5):
        while store.puts_started < 1:
            await asyncio.sleep(0)

    second = asyncio.create_task(writer.write(data_of(PART)))
    await asyncio.wait({second}, timeout=0.2)
    assert not second.done(), "part 2 was accepted while part 1 was still in flight"
    assert store.puts_started == 1

    store.gate.set()
    await asyncio.wait_for(second, timeout=5)
    await writer.commit()
    assert len(store.objects[KEY]) == 2 * PART


async def test_pause_keeps_the_part_in_flight_even_when_the_writer_is_cancelled() -> None:
    store = GatedStore()
    upload_id = await store.start_upload(KEY, "x")
    recorded: list[int] = []

    async def on_parts(parts: Sequence[StoredPart]) -> None:
        recorded[:] = [part.number for part in parts]

    writer = MultipartWriter(ListenedUpload(store, KEY, upload_id, on_parts), part_size=PART)
    await writer.write(data_of(PART))
    blocked = asyncio.create_task(writer.write(data_of(PART + 10)))  # waits for part 1
    await asyncio.wait({blocked}, timeout=0.1)
    blocked.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await blocked

    store.gate.set()
    await writer.pause()

    assert recorded == [1], "the part in flight was kept and recorded"
    assert store.open_uploads() == [upload_id], "a paused upload stays open to be continued"
    assert KEY not in store.objects


async def test_a_second_writer_continues_after_the_stored_parts() -> None:
    store = FakeObjectStore()
    upload_id = await store.start_upload(KEY, "x")
    data = data_of(2 * PART + 999)
    first = writer_of(store, upload_id)
    await write_all(first, data[: PART + 4000])  # one whole part, and 4000 bytes that are lost
    await first.pause()
    assert [part.size for part in first.parts] == [PART]

    second = writer_of(store, upload_id, parts=first.parts)
    await write_all(second, data[PART:])
    parts = await second.commit()

    assert [part.number for part in parts] == [1, 2, 3]
    assert store.objects[KEY] == data


async def test_a_refusing_listener_stops_the_writer() -> None:
    class Refused(Exception):
        pass

    async def on_parts(parts: Sequence[StoredPart]) -> None:
        raise Refused("another stream has the upload")

    store = FakeObjectStore()
    upload_id = await store.start_upload(KEY, "x")
    writer = MultipartWriter(ListenedUpload(store, KEY, upload_id, on_parts), part_size=PART)
    await writer.write(data_of(PART))

    with pytest.raises(Refused):
        await writer.commit()
    assert KEY not in store.objects


async def test_abort_discards_the_upload() -> None:
    store = FakeObjectStore()
    upload_id = await store.start_upload(KEY, "x")
    writer = writer_of(store, upload_id)
    await write_all(writer, data_of(PART + 1))

    await writer.abort()

    assert store.open_uploads() == []
    assert upload_id in store.aborted_uploads
    assert KEY not in store.objects


async def test_a_store_failure_surfaces_on_the_next_write_and_pause_survives_it() -> None:
    store = FakeObjectStore()
    upload_id = await store.start_upload(KEY, "x")
    store.put_error = OSError("disk on fire")
    writer = writer_of(store, upload_id)
    await writer.write(data_of(PART))  # in flight; fails in the background

    with pytest.raises(OSError, match="disk on fire"):
        await writer.write(data_of(PART))
    await writer.pause()  # logs, does not raise


def test_parts_smaller_than_s3_allows_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        MultipartWriter(StoreUpload(FakeObjectStore(), KEY, "u"), part_size=PART - 1)


async def test_a_continuing_writer_numbers_its_parts_from_first_number() -> None:
    """Part numbers need only ascend: a stream continuing another skips the number the
    other may still be storing, and the object is still the parts in order."""
    store = FakeObjectStore()
    upload_id = await store.start_upload(KEY, "x")
    data = data_of(2 * PART + 10)
    first = writer_of(store, upload_id)
    await write_all(first, data[:PART])
    await first.pause()

    second = writer_of(store, upload_id, parts=first.parts, first_number=3)
    await write_all(second, data[PART:])
    parts = await second.commit()

    assert [part.number for part in parts] == [1, 3, 4]
    assert store.objects[KEY] == data
