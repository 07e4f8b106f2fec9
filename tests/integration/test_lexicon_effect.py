"""What a lexicon is for, measured: spoken fixtures full of domain terms (Kubernetes,
RabbitMQ, PostgreSQL, people's names…) through the gateway and the real tiny.en model, with
and without the lexicon the team would write, and the recall of those terms in each."""

from __future__ import annotations

import json
import re
import uuid

import grpc

from steno.common.broker import TranscriptionRequest
from steno.common.jobs import Job, JobState
from steno.common.lexicons import LexiconEntry
from steno.transcriber.engines.local import LocalWhisperEngine
from steno.transcriber.pipeline import JobProcessor
from steno.transcriber.rewriting import Rewriter
from steno.v1 import lexicon_pb2, lexicon_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb
from tests.integration.conftest import Gateway
from tests.integration.test_upload_api import chunks_of, upload
from tests.support import AUDIO

RECORDINGS = json.loads((AUDIO / "terms.json").read_text("utf-8"))["recordings"]
LEXICON = json.loads((AUDIO / "terms_lexicon.json").read_text("utf-8"))


def found_terms(text: str, terms: list[str]) -> int:
    """Terms present in ``text`` as whole words, spelled exactly as displayed."""
    return sum(bool(re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text)) for term in terms)


async def create_lexicon(gateway: Gateway) -> lexicon_pb2.Lexicon:
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = lexicon_pb2_grpc.LexiconServiceStub(channel)
        response = await stub.CreateLexicon(
            lexicon_pb2.CreateLexiconRequest(
                lexicon=lexicon_pb2.Lexicon(
                    name=LEXICON["name"],
                    language=LEXICON["language"],
                    entries=[lexicon_pb2.LexiconEntry(**entry) for entry in LEXICON["entries"]],
                )
            )
        )
    return response.lexicon


async def transcribe(
    gateway: Gateway, processor: JobProcessor, audio: str, lexicon_id: str = ""
) -> Job:
    messages = [
        pb.UploadAudioRequest(metadata=pb.UploadMetadata(filename=audio, lexicon_id=lexicon_id)),
        *chunks_of((AUDIO / audio).read_bytes()),
    ]
    uploaded = (await upload(gateway, messages)).job
    await processor.handle(TranscriptionRequest(uuid.UUID(uploaded.job_id), "default"))
    job = await gateway.jobs.get(uuid.UUID(uploaded.job_id))
    assert job is not None and job.state is JobState.COMPLETED, job
    return job


async def test_the_lexicon_raises_domain_term_recall(
    gateway: Gateway, whisper_engine: LocalWhisperEngine
) -> None:
    lexicon = await create_lexicon(gateway)
    processor = JobProcessor(
        gateway.jobs, gateway.lexicons, gateway.store, {"local": whisper_engine}
    )
    rewriter = Rewriter(
        LexiconEntry(e["phrase"], tuple(e["sounds_like"])) for e in LEXICON["entries"]
    )
    expected = found_without = found_with = found_rewritten = 0
    for recording in RECORDINGS:
        terms = recording["terms"]
        plain = await transcribe(gateway, processor, recording["audio"])
        helped = await transcribe(gateway, processor, recording["audio"], lexicon.lexicon_id)
        assert plain.processed_text == "" and plain.lexicon_version == 0
        assert helped.lexicon_version == lexicon.version
        for replacement in helped.replacements:
            end = replacement.offset + len(replacement.original)
            assert helped.original_text[replacement.offset : end] == replacement.original
        expected += len(terms)
        found_without += found_terms(plain.original_text, terms)
        found_with += found_terms(helped.processed_text, terms)
        # The two halves of the lexicon apart: its replacements alone, on unbiased output.
        found_rewritten += found_terms(rewriter.apply(plain.original_text).text, terms)
        print(f"{recording['audio']}: without {plain.original_text!r}")
        print(f"{recording['audio']}: with    {helped.processed_text!r}")

    recall_without = found_without / expected
    recall_with = found_with / expected
    recall_rewritten = found_rewritten / expected
    print(
        f"term recall over {expected} spoken terms: without the lexicon {recall_without:.2f}, "
        f"with it {recall_with:.2f} (its replacements alone, without biasing the engine: "
        f"{recall_rewritten:.2f})"
    )
    assert recall_with >= 0.75
    assert recall_with - recall_without >= 0.5
    assert recall_rewritten - recall_without >= 0.5
