"""The Python SDK and the ``steno`` command against a real gateway.

The client blocks, and the gateway serves on this test's event loop, so every client call
runs in a thread. The CLI runs in-process through ``steno.cli.main``; what it prints is read
with ``capsys``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
import srt
import webvtt
from google.protobuf.field_mask_pb2 import FieldMask

from steno.cli import main
from steno.client import StenoClient
from steno.common.broker import TranscriptionRequest
from steno.common.jobs import JobState, PostProcessing, Segment
from steno.v1 import lexicon_pb2, lexicon_pb2_grpc
from tests.fakes import T0, make_job, make_transcript
from tests.integration.conftest import Gateway
from tests.rpc_details import field_violations
from tests.support import AUDIO, ROOT, outer_env

T = TypeVar("T")

SEGMENTS = [Segment(0.0, 1.5, "we run Kubernetes"), Segment(1.5, 3.25, "on Thursdays")]
ENGINE_TEXT = "we run cooper netties on Thursdays"
PROCESSED_TEXT = "we run Kubernetes on Thursdays"
# A stuck job fails the test instead of hanging it.
WAIT_AT_MOST = ("--timeout", "30")
FILE_LEXICON = {
    "name": "platform terms",
    "language": "en",
    "entries": [
        {"phrase": "Kubernetes", "sounds_like": ["cooper netties"]},
        {"phrase": "PostgreSQL", "sounds_like": ["post gress", "postgres q l"]},
    ],
}


@dataclass(frozen=True)
class Run:
    """What one ``steno`` command did."""

    status: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def _no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test gateway has no keys; a key from the developer's shell must not leak in.
    monkeypatch.delenv("STENO_API_KEY", raising=False)


Steno = Callable[..., Awaitable[Run]]


@pytest.fixture
def steno(gateway: Gateway, capsys: pytest.CaptureFixture[str]) -> Steno:
    """Runs ``steno ARGS --server <the gateway>`` in a thread; returns a Run."""

    async def run(*args: str) -> Run:
        capsys.readouterr()
        status = await asyncio.to_thread(main, [*args, "--server", gateway.address])
        captured = capsys.readouterr()
        return Run(status, captured.out, captured.err)

    return run


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[StenoClient]:
    with StenoClient(gateway.address) as steno_client:
        yield steno_client


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(function, *args, **kwargs)


def one_line_error(run: Run, text: str) -> None:
    """The CLI's contract for failures: exit 1, one line on stderr saying what happened."""
    assert run.status == 1
    assert run.out == ""
    assert run.err.count("\n") == 1
    assert run.err.startswith("steno: ")
    assert text in run.err


async def completed_job(gateway: Gateway) -> str:
    """A COMPLETED job whose lexicon turned "cooper netties" into "Kubernetes"."""
    job = make_job()
    await gateway.jobs.add(job)
    job.start(T0)
    assert await gateway.jobs.update(job, expected=JobState.QUEUED)
    post = PostProcessing(lexicon_version=1, text=PROCESSED_TEXT, segments=SEGMENTS)
    job.complete(make_transcript(text=ENGINE_TEXT), T0, post)
    assert await gateway.jobs.update(job, expected=JobState.PROCESSING)
    return str(job.job_id)


# -- transcripts ----------------------------------------------------------------------------


async def test_transcript_prints_text_by_default(steno: Steno, gateway: Gateway) -> None:
    job_id = await completed_job(gateway)

    run = await steno("transcript", job_id)

    assert (run.status, run.out) == (0, PROCESSED_TEXT + "\n")


async def test_transcript_as_srt_is_valid_subrip(steno: Steno, gateway: Gateway) -> None:
    job_id = await completed_job(gateway)

    run = await steno("transcript", job_id, "--format", "srt")

    assert run.status == 0
    cues = list(srt.parse(run.out))
    assert [(c.start, c.end, c.content) for c in cues] == [
        (timedelta(0), timedelta(seconds=1.5), "we run Kubernetes"),
        (timedelta(seconds=1.5), timedelta(seconds=3.25), "on Thursdays"),
    ]


async def test_transcript_as_vtt_is_valid_webvtt(steno: Steno, gateway: Gateway) -> None:
    job_id = await completed_job(gateway)

    run = await steno("transcript", job_id, "--format", "vtt")

    assert run.status == 0
    captions = webvtt.from_string(run.out)
    assert [(c.start, c.end, c.text) for c in captions] == [
        ("00:00:00.000", "00:00:01.500", "we run Kubernetes"),
        ("00:00:01.500", "00:00:03.250", "on Thursdays"),
    ]


async def test_transcript_to_a_file(steno: Steno, gateway: Gateway, tmp_path: Path) -> None:
    job_id = await completed_job(gateway)
    output = tmp_path / "meeting.json"

    run = await steno("transcript", job_id, "--format", "json", "--output", str(output))

    assert (run.status, run.out) == (0, "")
    document = json.loads(output.read_text())
    assert document["text"] == PROCESSED_TEXT
    assert document["segments"][1] == {"start": 1.5, "end": 3.25, "text": "on Thursdays"}


async def test_transcript_of_an_unfinished_job_is_a_one_line_error(
    steno: Steno, gateway: Gateway
) -> None:
    job = make_job()
    await gateway.jobs.add(job)

    run = await steno("transcript", str(job.job_id), "--format", "srt")

    one_line_error(run, "steno: FAILED_PRECONDITION: ")


async def test_sdk_get_transcript_gives_content_type_and_segments(
    client: StenoClient, gateway: Gateway
) -> None:
    job_id = await completed_job(gateway)

    response = await call(client.get_transcript, job_id, "vtt")

    assert response.content_type.startswith("text/vtt")
    assert response.content.startswith("WEBVTT")
    assert [s.text for s in response.segments] == ["we run Kubernetes", "on Thursdays"]


def test_sdk_rejects_an_unknown_transcript_format_before_calling() -> None:
    with StenoClient("127.0.0.1:1") as offline, pytest.raises(ValueError, match="docx"):
        offline.get_transcript(str(uuid.uuid4()), "docx")  # type: ignore[arg-type]


# -- upload ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def stand_in_transcriber(gateway: Gateway) -> AsyncIterator[list[TranscriptionRequest]]:
    """Consumes the gateway's queue and completes each job at once with a fixed transcript,
    so ``upload --wait`` has something to wait for; yields the requests it handled."""
    handled: list[TranscriptionRequest] = []

    async def complete(request: TranscriptionRequest) -> None:
        job = await gateway.jobs.get(request.job_id)
        assert job is not None
        job.start(T0)
        assert await gateway.jobs.update(job, expected=JobState.QUEUED)
        post = PostProcessing(lexicon_version=1, text=PROCESSED_TEXT, segments=SEGMENTS)
        job.complete(make_transcript(text=ENGINE_TEXT), T0, post)
        assert await gateway.jobs.update(job, expected=JobState.PROCESSING)
        handled.append(request)

    consumer = asyncio.create_task(gateway.queue.consume(complete))
    try:
        yield handled
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer


async def test_upload_with_a_lexicon_waits_and_prints_srt(
    steno: Steno, client: StenoClient, gateway: Gateway
) -> None:
    lexicon = await call(client.create_lexicon, "platform", {"Kubernetes": ["cooper netties"]})

    async with stand_in_transcriber(gateway) as handled:
        run = await steno(
            "upload",
            str(AUDIO / "speech.wav"),
            "--lexicon",
            lexicon.lexicon_id,
            "--format",
            "srt",
            *WAIT_AT_MOST,
        )

    assert run.status == 0, run.err
    assert [c.content for c in srt.parse(run.out)] == ["we run Kubernetes", "on Thursdays"]
    [request] = handled
    job = await call(client.get_job, str(request.job_id))
    assert job.lexicon_id == lexicon.lexicon_id


async def test_upload_wait_prints_the_processed_text(steno: Steno, gateway: Gateway) -> None:
    async with stand_in_transcriber(gateway):
        run = await steno("upload", str(AUDIO / "speech.wav"), "--wait", *WAIT_AT_MOST)

    assert (run.status, run.out) == (0, PROCESSED_TEXT + "\n")


async def test_upload_with_an_unknown_lexicon_is_not_found(steno: Steno, gateway: Gateway) -> None:
    run = await steno("upload", str(AUDIO / "speech.wav"), "--lexicon", str(uuid.uuid4()))

    one_line_error(run, "steno: NOT_FOUND: no lexicon ")
    assert await gateway.row_count() == 0


# -- lexicons through the CLI ---------------------------------------------------------------


async def test_lexicon_round_trip(steno: Steno) -> None:
    created = await steno(
        "lexicon",
        "create",
        "platform team",
        "--language",
        "en",
        "--entry",
        "Kubernetes=cooper netties|kuber netes",
        "--entry",
        "Grafana",
    )
    assert created.status == 0, created.err
    lexicon_id = created.out.strip()
    assert uuid.UUID(lexicon_id)

    listed = await steno("lexicon", "list")
    assert listed.status == 0
    [line] = listed.out.splitlines()
    assert line.split()[:2] == [lexicon_id, "v1"]
    assert line.endswith("platform team")

    got = await steno("lexicon", "get", lexicon_id)
    stored = json.loads(got.out)
    assert (stored["name"], stored["language"], stored["version"]) == ("platform team", "en", "1")
    assert stored["entries"] == [
        {"phrase": "Kubernetes", "sounds_like": ["cooper netties", "kuber netes"]},
        {"phrase": "Grafana", "sounds_like": []},
    ]

    renamed = await steno("lexicon", "update", lexicon_id, "--name", "platform", "--version", "1")
    assert renamed.status == 0, renamed.err
    updated = json.loads(renamed.out)
    assert (updated["name"], updated["version"]) == ("platform", "2")
    assert updated["entries"] == stored["entries"]

    stale = await steno("lexicon", "update", lexicon_id, "--entry", "Helm", "--version", "1")
    one_line_error(stale, "steno: ABORTED: ")
    assert "is at version 2, not the 1 you sent" in stale.err

    deleted = await steno("lexicon", "delete", lexicon_id)
    assert (deleted.status, deleted.out, deleted.err) == (0, "", "")

    gone = await steno("lexicon", "get", lexicon_id)
    one_line_error(gone, "steno: NOT_FOUND: ")


async def test_lexicon_create_from_a_file_takes_its_name_and_language(
    steno: Steno, client: StenoClient, tmp_path: Path
) -> None:
    path = tmp_path / "terms_lexicon.json"
    path.write_text(json.dumps(FILE_LEXICON))

    run = await steno("lexicon", "create", "--file", str(path))

    assert run.status == 0, run.err
    lexicon = await call(client.get_lexicon, run.out.strip())
    assert (lexicon.name, lexicon.language, lexicon.version) == ("platform terms", "en", 1)
    assert {e.phrase: list(e.sounds_like) for e in lexicon.entries} == {
        "Kubernetes": ["cooper netties"],
        "PostgreSQL": ["post gress", "postgres q l"],
    }


async def test_lexicon_create_from_a_list_of_entries_with_a_name_given(
    steno: Steno, client: StenoClient, tmp_path: Path
) -> None:
    path = tmp_path / "entries.json"
    path.write_text(json.dumps(FILE_LEXICON["entries"]))

    run = await steno("lexicon", "create", "ops", "--file", str(path))

    assert run.status == 0, run.err
    lexicon = await call(client.get_lexicon, run.out.strip())
    assert (lexicon.name, lexicon.language) == ("ops", "")
    assert [e.phrase for e in lexicon.entries] == ["Kubernetes", "PostgreSQL"]


async def test_the_terms_fixture_creates_a_lexicon(steno: Steno) -> None:
    fixture = ROOT / "tests" / "fixtures" / "audio" / "terms_lexicon.json"

    run = await steno("lexicon", "create", "--file", str(fixture))

    assert run.status == 0, run.err
    assert uuid.UUID(run.out.strip())


async def test_what_lexicon_get_prints_can_be_sent_back_with_update(
    steno: Steno, client: StenoClient, tmp_path: Path
) -> None:
    lexicon = await call(client.create_lexicon, "ops", {"Grafana": ["graph ana"]})
    saved = tmp_path / "ops.json"
    document = json.loads((await steno("lexicon", "get", lexicon.lexicon_id)).out)
    document["entries"].append({"phrase": "Helm", "sounds_like": ["hell m"]})
    saved.write_text(json.dumps(document))

    run = await steno("lexicon", "update", lexicon.lexicon_id, "--file", str(saved))

    assert run.status == 0, run.err
    assert json.loads(run.out)["version"] == "2"
    stored = await call(client.get_lexicon, lexicon.lexicon_id)
    assert [e.phrase for e in stored.entries] == ["Grafana", "Helm"]

    # The same edited copy again: it was made from version 1, so it would undo version 2.
    stale = await steno("lexicon", "update", lexicon.lexicon_id, "--file", str(saved))
    one_line_error(stale, "steno: ABORTED: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--entry", "=cooper netties"], "the phrase before '=' is empty"),
        (["--entry", "Kubernetes=cooper netties||kuber"], "a variant between '|' is empty"),
        (["--entry", "Helm", "--entry", "Helm=hell m"], "'Helm' is given twice"),
        (["--file", "/nonexistent/terms.json"], "cannot read /nonexistent/terms.json"),
    ],
    ids=["empty-phrase", "empty-variant", "twice", "missing-file"],
)
def test_bad_entries_are_one_line_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Caught before any call: no gateway needed.
    status = main(["lexicon", "create", "ops", *args, "--server", "127.0.0.1:1"])

    captured = capsys.readouterr()
    one_line_error(Run(status, captured.out, captured.err), message)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON"),
        ('"Kubernetes"', "expected a list of entries or an object with entries"),
        ('{"name": "ops"}', 'the object has no "entries"'),
        ('{"entries": [], "colour": "red"}', "unknown keys colour"),
        ('[{"phrase": "Helm", "sounds_like": "hell m"}]', '"sounds_like" must be a list'),
        ('[{"phrase": " "}]', '"phrase" must be a non-empty string'),
        ('[{"word": "Helm"}]', 'must be an object with "phrase" and "sounds_like"'),
    ],
)
def test_bad_lexicon_files_are_one_line_errors(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lexicon.json"
    path.write_text(content)

    status = main(["lexicon", "create", "ops", "--file", str(path), "--server", "127.0.0.1:1"])

    captured = capsys.readouterr()
    one_line_error(Run(status, captured.out, captured.err), message)


def test_lexicon_create_needs_a_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "entries.json"
    path.write_text("[]")

    status = main(["lexicon", "create", "--file", str(path), "--server", "127.0.0.1:1"])

    captured = capsys.readouterr()
    one_line_error(Run(status, captured.out, captured.err), "give the lexicon a NAME")


def test_lexicon_update_needs_something_to_change(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["lexicon", "update", str(uuid.uuid4()), "--server", "127.0.0.1:1"])

    captured = capsys.readouterr()
    one_line_error(Run(status, captured.out, captured.err), "nothing to update")


# -- lexicons through the SDK ---------------------------------------------------------------


async def test_sdk_update_changes_only_what_it_is_given(client: StenoClient) -> None:
    created = await call(client.create_lexicon, "ops", {"Grafana": ["graph ana"]}, language="en")

    updated = await call(client.update_lexicon, created.lexicon_id, language="")

    assert (updated.name, updated.language, updated.version) == ("ops", "", 2)
    assert [(e.phrase, list(e.sounds_like)) for e in updated.entries] == [
        ("Grafana", ["graph ana"])
    ]


async def test_sdk_iter_lexicons_follows_pages_newest_first(client: StenoClient) -> None:
    ids = [(await call(client.create_lexicon, f"team {n}", {})).lexicon_id for n in range(3)]

    listed = await call(lambda: [lx.lexicon_id for lx in client.iter_lexicons(page_size=2)])

    assert listed == ids[::-1]


def test_sdk_refuses_an_update_with_nothing_in_it() -> None:
    # The server reads an empty mask as "every field", which would blank the name.
    with StenoClient("127.0.0.1:1") as offline, pytest.raises(ValueError, match="nothing"):
        offline.update_lexicon(str(uuid.uuid4()))


def test_sdk_refuses_a_string_where_variants_belong() -> None:
    with StenoClient("127.0.0.1:1") as offline, pytest.raises(TypeError, match="Kubernetes"):
        offline.create_lexicon("ops", {"Kubernetes": "cooper netties"})


@pytest.mark.parametrize(
    ("name", "entries", "language", "field"),
    [
        ("  ", {"Kubernetes": []}, "", "lexicon.name"),
        ("ops", {"Grafana": [], " ": ["nothing"]}, "", "lexicon.entries[1].phrase"),
        ("ops", {"Grafana": []}, "english!", "lexicon.language"),
        ("ops", {"Grafana": [], "grafana": ["graph on it"]}, "", "lexicon.entries[1].phrase"),
    ],
    ids=["empty-name", "empty-phrase", "bad-language", "duplicate-phrase"],
)
async def test_invalid_lexicons_are_invalid_argument(
    client: StenoClient, name: str, entries: dict[str, list[str]], language: str, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        await call(client.create_lexicon, name, entries, language=language)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert field_violations(caught.value) == [field]


async def test_an_unknown_update_mask_path_is_invalid_argument(
    client: StenoClient, gateway: Gateway
) -> None:
    # The SDK builds masks only from fields that exist, so this request is made by hand.
    created = await call(client.create_lexicon, "ops", {})
    request = lexicon_pb2.UpdateLexiconRequest(
        lexicon=lexicon_pb2.Lexicon(lexicon_id=created.lexicon_id, version=1),
        update_mask=FieldMask(paths=["version"]),
    )

    with grpc.insecure_channel(gateway.address) as channel, pytest.raises(grpc.RpcError) as caught:
        await call(lexicon_pb2_grpc.LexiconServiceStub(channel).UpdateLexicon, request)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert field_violations(caught.value) == ["update_mask"]
    assert (await call(client.get_lexicon, created.lexicon_id)).version == 1


async def test_a_negative_version_is_invalid_argument(
    client: StenoClient, gateway: Gateway
) -> None:
    created = await call(client.create_lexicon, "ops", {})
    request = lexicon_pb2.UpdateLexiconRequest(
        lexicon=lexicon_pb2.Lexicon(lexicon_id=created.lexicon_id, name="x", version=-1)
    )
    with grpc.insecure_channel(gateway.address) as channel, pytest.raises(grpc.RpcError) as caught:
        await call(lexicon_pb2_grpc.LexiconServiceStub(channel).UpdateLexicon, request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert field_violations(caught.value) == ["lexicon.version"]


async def test_a_job_page_token_is_refused_by_list_lexicons(
    client: StenoClient, gateway: Gateway
) -> None:
    for _ in range(2):
        await gateway.jobs.add(make_job())
    token = (await call(client.list_jobs, page_size=1)).next_page_token
    assert token
    with pytest.raises(grpc.RpcError) as caught:
        await call(client.list_lexicons, page_token=token)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert field_violations(caught.value) == ["page_token"]


# -- output for scripts ---------------------------------------------------------------------

SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


def field_names(document: Any) -> set[str]:
    """Every key in a JSON document, at any depth."""
    if isinstance(document, dict):
        return set(document).union(*(field_names(value) for value in document.values()))
    if isinstance(document, list):
        return set().union(*(field_names(item) for item in document))
    return set()


def assert_proto_field_names(document: Any) -> None:
    names = field_names(document)
    assert names, "no fields at all"
    assert {name for name in names if not SNAKE_CASE.fullmatch(name)} == set()


async def test_jobs_json_is_a_job_a_line_with_proto_field_names(
    steno: Steno, gateway: Gateway
) -> None:
    completed = await completed_job(gateway)
    queued = make_job()
    await gateway.jobs.add(queued)

    run = await steno("jobs", "--json")

    assert run.status == 0, run.err
    listed = [json.loads(line) for line in run.out.splitlines()]
    assert {job["job_id"]: job["state"] for job in listed} == {
        completed: "JOB_STATE_COMPLETED",
        str(queued.job_id): "JOB_STATE_QUEUED",
    }
    for job in listed:
        assert_proto_field_names(job)
        assert {"create_time", "size_bytes", "content_type", "progress"} <= set(job)


async def test_job_json_is_the_whole_job_with_proto_field_names(
    steno: Steno, gateway: Gateway
) -> None:
    job_id = await completed_job(gateway)

    run = await steno("job", job_id, "--json")

    assert run.status == 0, run.err
    job = json.loads(run.out)
    assert_proto_field_names(job)
    assert (job["job_id"], job["processed_text"]) == (job_id, PROCESSED_TEXT)
    assert job["original_text"] == ENGINE_TEXT
    assert job["segments"][1] == {"start": "1.500s", "end": "3.250s", "text": "on Thursdays"}
    assert (await steno("job", job_id)).out == run.out, "JSON with or without --json"


async def test_watch_json_is_an_object_a_line(steno: Steno, gateway: Gateway) -> None:
    job_id = await completed_job(gateway)

    run = await steno("watch", job_id, "--json", *WAIT_AT_MOST)

    assert run.status == 0, run.err
    [line] = run.out.splitlines()
    job = json.loads(line)
    assert_proto_field_names(job)
    assert (job["job_id"], job["state"], job["progress"]) == (job_id, "JOB_STATE_COMPLETED", 1.0)


async def test_transcript_json_is_the_json_format(steno: Steno, gateway: Gateway) -> None:
    job_id = await completed_job(gateway)

    run = await steno("transcript", job_id, "--json")

    assert run.status == 0, run.err
    assert run.out == (await steno("transcript", job_id, "--format", "json")).out
    assert json.loads(run.out)["text"] == PROCESSED_TEXT


async def test_lexicon_list_and_get_json_have_proto_field_names(
    steno: Steno, client: StenoClient
) -> None:
    created = [
        await call(client.create_lexicon, name, {"Kubernetes": ["cooper netties"]})
        for name in ("ops", "platform")
    ]

    listed = await steno("lexicon", "list", "--json")
    got = await steno("lexicon", "get", created[0].lexicon_id, "--json")

    assert (listed.status, got.status) == (0, 0)
    lexicons = [json.loads(line) for line in listed.out.splitlines()]
    assert [lexicon["name"] for lexicon in lexicons] == ["platform", "ops"]
    lexicon = json.loads(got.out)
    assert lexicon["entries"] == [{"phrase": "Kubernetes", "sounds_like": ["cooper netties"]}]
    for document in [*lexicons, lexicon]:
        assert_proto_field_names(document)


async def test_a_reader_that_stops_early_ends_steno_quietly(gateway: Gateway) -> None:
    # More than a pipe holds (64 KiB) and head reads, so steno writes to a closed pipe.
    await asyncio.gather(*(gateway.jobs.add(make_job(filename="f" * 200)) for _ in range(500)))
    pipeline = (
        f"set -o pipefail; {sys.executable} -m steno.cli jobs --limit 500 "
        f"--server {gateway.address} | head -1"
    )

    done = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-c", pipeline],
        capture_output=True,
        text=True,
        timeout=60,
        env=outer_env(),
    )

    assert (done.returncode, done.stderr) == (0, "")
    [line] = done.stdout.splitlines()
    created = T0.replace(tzinfo=None).isoformat(timespec="seconds")
    assert line.endswith(f"  QUEUED      {created}  " + "f" * 200)


async def test_ctrl_c_ends_steno_quietly(gateway: Gateway) -> None:
    job = make_job()
    await gateway.jobs.add(job)
    watching = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "steno.cli", "watch", str(job.job_id)),
        *("--server", gateway.address),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=outer_env(),
    )
    assert watching.stdout is not None
    first = await asyncio.wait_for(watching.stdout.readline(), timeout=30)
    assert first.split() == [b"QUEUED", b"0%"]

    watching.send_signal(signal.SIGINT)

    _, err = await asyncio.wait_for(watching.communicate(), timeout=30)
    assert (watching.returncode, err) == (130, b"")
