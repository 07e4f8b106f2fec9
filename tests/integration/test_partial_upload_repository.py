"""One contract for every PartialUploadRepository: Postgres, SQLite and the in-memory fake."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, timedelta

import pytest

from steno.common.db import SqlPartialUploadRepository, create_engine
from steno.common.errors import DatabaseUnavailable
from steno.common.partial_uploads import PartialUpload, PartialUploadRepository, UploadRequest
from steno.common.storage import MIN_PART_BYTES, StoredPart
from tests.fakes import T0, FakePartialUploadRepository, make_partial_upload
from tests.support import free_port

FIRST = StoredPart(1, MIN_PART_BYTES, '"9b2cf535f27731c974343645a3985328"')
SECOND = StoredPart(2, MIN_PART_BYTES, '"6f5902ac237024bdd0c176cb93063dc4"')
LAST = StoredPart(3, 1234, '"a3f390d88e4c41f2747bfa2f1b5f87db-1"')


@pytest.fixture
async def uploads(database_url: str | None) -> AsyncIterator[PartialUploadRepository]:
    if database_url is None:
        yield FakePartialUploadRepository()
        return
    engine = create_engine(database_url)
    yield SqlPartialUploadRepository(engine)
    await engine.dispose()


def as_read(tenant: str, request_id: str, *, stream: str, next_part: int) -> PartialUpload:
    """The upload as a stream read it: who had it, and the next part number then."""
    return make_partial_upload(request_id, tenant=tenant, stream=stream, next_part=next_part)


async def test_an_upload_round_trips_every_field(uploads: PartialUploadRepository) -> None:
    request = UploadRequest(
        tenant="acme",
        filename="Плат форма.m4a",
        language="en-IE",
        lexicon_id=str(uuid.uuid4()),
        engine="openai",
        audio_retention=timedelta(days=3, seconds=7),
        labels={"team": "blue", "ключ": "значение"},
        request_id="client-7f3a",
    )
    upload = make_partial_upload(
        request=request,
        content_type="audio/mp4",
        stream="stream-9",
        create_time=T0 + timedelta(microseconds=123456),
        update_time=T0 + timedelta(minutes=5, microseconds=654321),
        parts=[FIRST, SECOND, LAST],
    )
    await uploads.save(upload)
    stored = await uploads.get("acme", "client-7f3a")
    assert stored == upload
    assert stored is not None and stored.committed_bytes == 2 * MIN_PART_BYTES + 1234
    assert stored.create_time.tzinfo == UTC and stored.update_time.tzinfo == UTC
    # What was read is a copy: changing it changes nothing stored.
    stored.parts.clear()
    stored.request.labels["team"] = "red"
    assert await uploads.get("acme", "client-7f3a") == upload
    assert await uploads.get("acme", "client-other") is None


async def test_saving_again_replaces_the_earlier_upload(uploads: PartialUploadRepository) -> None:
    earlier = make_partial_upload(stream="stream-a", parts=[FIRST, SECOND])
    await uploads.save(earlier)
    # The client starts the same request_id again from the first byte, in a new multipart
    # upload that will become another job.
    again = make_partial_upload(stream="stream-b", update_time=T0 + timedelta(minutes=1))
    await uploads.save(again)
    assert await uploads.get("default", "req-1") == again
    assert await uploads.store_upload_ids() == {again.store_upload_id}
    # The stream that had the earlier upload has nothing any more.
    assert (
        await uploads.record_parts(
            "default", "req-1", stream="stream-a", parts=[FIRST, SECOND, LAST], now=T0
        )
        is False
    )
    assert await uploads.get("default", "req-1") == again


async def test_starts_that_race_leave_exactly_one_upload(uploads: PartialUploadRepository) -> None:
    racing = [make_partial_upload(stream=f"stream-{i}") for i in range(8)]
    await asyncio.gather(*(uploads.save(upload) for upload in racing))
    stored = await uploads.get("default", "req-1")
    assert stored is not None and stored in racing
    assert await uploads.store_upload_ids() == {stored.store_upload_id}


async def test_a_tenant_sees_only_its_own(uploads: PartialUploadRepository) -> None:
    acme = make_partial_upload(tenant="acme", stream="stream-a")
    other = make_partial_upload(tenant="other", stream="stream-b")
    await uploads.save(acme)
    await uploads.save(other)
    assert await uploads.get("acme", "req-1") == acme
    assert await uploads.get("other", "req-1") == other
    assert await uploads.get("third", "req-1") is None
    assert (
        await uploads.take_over(
            as_read("acme", "req-1", stream="stream-b", next_part=1),
            stream="stream-c",
            now=T0,
        )
        is False
    )
    assert (
        await uploads.record_parts("other", "req-1", stream="stream-a", parts=[FIRST], now=T0)
        is False
    )
    assert await uploads.delete("third", "req-1") is False
    assert await uploads.delete("acme", "req-1") is True
    assert await uploads.get("acme", "req-1") is None
    assert await uploads.get("other", "req-1") == other


async def test_only_the_stream_that_has_the_upload_can_take_it_over(
    uploads: PartialUploadRepository,
) -> None:
    await uploads.save(make_partial_upload(stream="stream-a", parts=[FIRST]))
    later = T0 + timedelta(minutes=2)
    assert (
        await uploads.take_over(
            as_read("default", "req-1", stream="stream-a", next_part=1),
            stream="stream-b",
            now=later,
        )
        is True
    )
    taken = await uploads.get("default", "req-1")
    assert taken is not None
    assert (taken.stream, taken.update_time, taken.parts) == ("stream-b", later, [FIRST])
    # A third stream that also saw stream-a lost the race.
    even_later = T0 + timedelta(minutes=3)
    assert (
        await uploads.take_over(
            as_read("default", "req-1", stream="stream-a", next_part=1),
            stream="stream-c",
            now=even_later,
        )
        is False
    )
    # The replaced stream's writes are refused and change nothing.
    assert (
        await uploads.record_parts(
            "default", "req-1", stream="stream-a", parts=[FIRST, SECOND], now=even_later
        )
        is False
    )
    assert await uploads.get("default", "req-1") == taken
    # Nothing to take over once it is gone.
    assert (
        await uploads.take_over(
            as_read("default", "req-9", stream="stream-a", next_part=1),
            stream="stream-b",
            now=later,
        )
        is False
    )


async def test_a_take_over_starts_past_the_part_the_previous_stream_may_be_storing(
    uploads: PartialUploadRepository,
) -> None:
    await uploads.save(make_partial_upload(stream="stream-a"))
    assert await uploads.record_parts("default", "req-1", stream="stream-a", parts=[FIRST], now=T0)
    recorded = await uploads.get("default", "req-1")
    assert recorded is not None and recorded.next_part == FIRST.number + 1
    # Read before stream-a recorded its second part: refused, the offset it read is stale.
    assert await uploads.record_parts(
        "default", "req-1", stream="stream-a", parts=[FIRST, SECOND], now=T0
    )
    assert not await uploads.take_over(
        as_read("default", "req-1", stream="stream-a", next_part=2),
        stream="stream-b",
        now=T0,
    )
    assert await uploads.take_over(
        as_read("default", "req-1", stream="stream-a", next_part=3),
        stream="stream-b",
        now=T0,
    )
    taken = await uploads.get("default", "req-1")
    assert taken is not None
    # stream-a may still be storing part 3: stream-b's parts start at 4.
    assert (taken.stream, taken.next_part) == ("stream-b", 4)


async def test_recording_parts_stores_them_all_and_bumps_the_update_time(
    uploads: PartialUploadRepository,
) -> None:
    upload = make_partial_upload(stream="stream-a")
    await uploads.save(upload)
    first_time, second_time = T0 + timedelta(seconds=30), T0 + timedelta(seconds=61)
    assert (
        await uploads.record_parts(
            "default", "req-1", stream="stream-a", parts=[FIRST], now=first_time
        )
        is True
    )
    assert (
        await uploads.record_parts(
            "default", "req-1", stream="stream-a", parts=(FIRST, SECOND, LAST), now=second_time
        )
        is True
    )
    stored = await uploads.get("default", "req-1")
    assert stored == replace(
        upload, parts=[FIRST, SECOND, LAST], update_time=second_time, next_part=LAST.number + 1
    )
    assert (
        await uploads.record_parts("default", "req-9", stream="stream-a", parts=[FIRST], now=T0)
        is False
    )


async def test_delete_with_and_without_a_stream(uploads: PartialUploadRepository) -> None:
    await uploads.save(make_partial_upload("req-1", stream="stream-a"))
    await uploads.save(make_partial_upload("req-2", stream="stream-a"))
    # Only while the given stream has it.
    assert await uploads.delete("default", "req-1", stream="stream-b") is False
    assert await uploads.get("default", "req-1") is not None
    assert await uploads.delete("default", "req-1", stream="stream-a") is True
    assert await uploads.get("default", "req-1") is None
    assert await uploads.delete("default", "req-1", stream="stream-a") is False
    # Without a stream, whoever has it.
    assert await uploads.delete("default", "req-2") is True
    assert await uploads.delete("default", "req-2") is False
    assert await uploads.get("default", "req-2") is None


async def test_stale_uploads_are_listed_oldest_first_up_to_the_limit(
    uploads: PartialUploadRepository,
) -> None:
    made = {
        minutes: make_partial_upload(f"req-{minutes}", update_time=T0 + timedelta(minutes=minutes))
        for minutes in (3, 0, 4, 1, 2)
    }
    for upload in made.values():
        await uploads.save(upload)
    cut_off = T0 + timedelta(minutes=3)
    # Written at the cut-off itself is not stale.
    assert await uploads.list_stale(cut_off, limit=10) == [made[0], made[1], made[2]]
    assert await uploads.list_stale(cut_off, limit=2) == [made[0], made[1]]
    assert await uploads.list_stale(T0, limit=10) == []
    # A stream that takes an upload over makes it fresh again.
    assert (
        await uploads.take_over(
            as_read("default", "req-0", stream="stream-a", next_part=1),
            stream="stream-b",
            now=cut_off,
        )
        is True
    )
    assert await uploads.list_stale(cut_off, limit=10) == [made[1], made[2]]


async def test_store_upload_ids_are_those_of_every_recorded_upload(
    uploads: PartialUploadRepository,
) -> None:
    assert await uploads.store_upload_ids() == set()
    first, second = make_partial_upload("req-1"), make_partial_upload("req-2", tenant="acme")
    await uploads.save(first)
    await uploads.save(second)
    assert await uploads.store_upload_ids() == {first.store_upload_id, second.store_upload_id}
    await uploads.delete("default", "req-1")
    assert await uploads.store_upload_ids() == {second.store_upload_id}


async def test_an_unreachable_database_is_unavailable() -> None:
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/steno")
    uploads = SqlPartialUploadRepository(engine)
    try:
        with pytest.raises(DatabaseUnavailable, match="the database is unavailable"):
            await uploads.get("default", "req-1")
        with pytest.raises(DatabaseUnavailable, match="the database is unavailable"):
            await uploads.save(make_partial_upload())
        with pytest.raises(DatabaseUnavailable, match="the database is unavailable"):
            await uploads.take_over(
                as_read("default", "req-1", stream="stream-a", next_part=1),
                stream="stream-b",
                now=T0,
            )
        with pytest.raises(DatabaseUnavailable, match="the database is unavailable"):
            await uploads.list_stale(T0, limit=10)
    finally:
        await engine.dispose()
