"""The HTTP API's multipart form, read as it arrives, and what its fields ask for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from steno.common.partial_uploads import UploadRequest
from steno.common.settings import LocalModel
from steno.gateway.http.form import MAX_FIELD_BYTES, Fields, StreamingForm
from steno.gateway.http.transcriptions import (
    answer_options,
    model_ids,
    refuse_late_job_fields,
    upload_metadata,
)
from steno.gateway.uploads import InvalidUpload
from tests.multipart_form import CONTENT_TYPE, END, field, part_head

AUDIO = bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n"


async def body_of(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def form(*pieces: bytes) -> StreamingForm:
    return StreamingForm(CONTENT_TYPE, body_of(*pieces), "file")


async def read(form: StreamingForm) -> tuple[Fields, bytes]:
    before = await form.fields_before_file()
    return before, b"".join([chunk async for chunk in form.file_chunks()])


async def test_the_file_streams_out_before_the_rest_of_the_body_arrives() -> None:
    released = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield field("model", "whisper-1") + part_head("file", "a.wav") + AUDIO[:1000]
        await released.wait()
        yield AUDIO[1000:] + b"\r\n" + field("response_format", "srt") + END

    streaming = StreamingForm(CONTENT_TYPE, body(), "file")
    before = await streaming.fields_before_file()
    chunks = streaming.file_chunks()
    async with asyncio.timeout(5):
        first = await anext(chunks)
    released.set()
    rest = b"".join([chunk async for chunk in chunks])

    assert before.values == {"model": ["whisper-1"]} and streaming.filename == "a.wav"
    assert first == AUDIO[: len(first)] and first + rest == AUDIO
    assert streaming.after.values == {"response_format": ["srt"]}


async def test_a_body_cut_anywhere_reads_the_same() -> None:
    whole = field("language", "en") + part_head("file", "a.wav") + AUDIO + b"\r\n" + END
    before, audio = await read(form(*(whole[i : i + 1] for i in range(len(whole)))))
    assert before.get("language") == "en" and audio == AUDIO


async def test_repeated_fields_keep_every_value() -> None:
    granularities = field("timestamp_granularities[]", "segment") + field(
        "timestamp_granularities[]", "word"
    )
    before, _ = await read(form(granularities + part_head("file", "a.wav") + b"x\r\n" + END))
    assert before.all("timestamp_granularities[]") == ["segment", "word"]
    assert answer_options(before, Fields()).words


@pytest.mark.parametrize(
    ("pieces", "problem"),
    [
        ((field("model", "whisper-1") + END,), "no 'file' part"),
        ((part_head("file", "a") + b"x\r\n" + part_head("file", "b") + b"y\r\n" + END,), "one"),
        ((field("prompt", "p" * (MAX_FIELD_BYTES + 1)) + END,), "longer than"),
        ((part_head("language") + b"\xff\r\n" + END,), "not UTF-8"),
        ((b"--" + b"x" * 80 + b"\r\n",), "malformed"),
    ],
)
async def test_a_broken_form_is_refused_saying_why(pieces: tuple[bytes], problem: str) -> None:
    with pytest.raises(InvalidUpload, match=problem):
        await read(form(*pieces))


def test_a_body_that_is_not_a_form_is_refused() -> None:
    with pytest.raises(InvalidUpload, match="multipart/form-data"):
        StreamingForm("application/json", body_of(b"{}"), "file")


def test_the_fields_become_upload_metadata() -> None:
    fields = Fields(
        {
            "model": ["local/tiny.en"],
            "language": ["en"],
            "labels": ['{"team": "qa"}'],
            "retention": ["PT2H"],
            "webhook_url": ["https://hooks.example.com/steno"],
        }
    )
    metadata = upload_metadata(fields, "a.wav")

    assert (metadata.filename, metadata.language, metadata.engine) == ("a.wav", "en", "local")
    assert dict(metadata.labels) == {"team": "qa"}
    assert metadata.audio_retention.ToTimedelta() == timedelta(hours=2)
    assert metadata.webhook_url == "https://hooks.example.com/steno"
    assert upload_metadata(Fields({"model": ["whisper-1"]}), "a").engine == ""
    seconds = upload_metadata(Fields({"retention": ["90"]}), "a").audio_retention
    assert seconds.ToTimedelta() == timedelta(seconds=90)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("labels", "team=qa"),
        ("labels", '{"n": 1}'),
        ("retention", "-PT1H"),
        ("retention", "soon"),
        ("response_format", "docx"),
        ("timestamp_granularities[]", "sentence"),
        ("temperature", "hot"),
        ("temperature", "2"),
    ],
)
def test_a_bad_field_is_refused_by_name(name: str, value: str) -> None:
    fields = Fields({name: [value]})
    with pytest.raises(InvalidUpload) as refused:
        upload_metadata(fields, "a.wav")
        answer_options(fields, Fields())
    assert refused.value.field == name


def test_after_the_file_only_what_leaves_the_job_as_it_is_may_come() -> None:
    upload = UploadRequest("acme", "a.wav", "", "", "local", timedelta(hours=1))
    refuse_late_job_fields(Fields({"model": ["whisper-1"], "response_format": ["srt"]}), upload)
    refuse_late_job_fields(Fields({"model": ["local/tiny.en"]}), upload)
    for late in ({"model": ["openai"]}, {"lexicon_id": ["x"]}, {"labels": ["{}"]}):
        with pytest.raises(InvalidUpload, match="before the file"):
            refuse_late_job_fields(Fields(late), upload)


def test_models_are_the_default_and_each_engine() -> None:
    assert model_ids(["local", "openai"], LocalModel()) == ["whisper-1", "local/tiny.en", "openai"]
