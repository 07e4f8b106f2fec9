"""What a lexicon is for, measured: spoken fixtures full of domain terms (Kubernetes,
RabbitMQ, PostgreSQL, people's names…) through the gateway and the real tiny.en model, with
and without the lexicon the team would write, the recall of those terms in each and the
word error rate of the corrected text; and that the lexicon changes nothing in plain
speech."""

from __future__ import annotations

import uuid

import grpc

from steno.common.broker import TranscriptionRequest
from steno.common.jobs import Job, JobState
from steno.transcriber.engines.local import LocalWhisperEngine
from steno.transcriber.engines.port import TranscriptionOptions
from steno.transcriber.pipeline import JobProcessor
from steno.transcriber.rewriting import Rewriter, vocabulary
from steno.v1 import lexicon_pb2, lexicon_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb
from tests.integration.conftest import Gateway
from tests.integration.test_upload_api import chunks_of, upload
from tests.lexicon_terms import (
    ENTRIES,
    LEXICON,
    PLAIN_AUDIO,
    RECORDINGS,
    found_terms,
    reference,
    word_error_rate,
)
from tests.support import AUDIO


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
    rewriter = Rewriter(ENTRIES)
    expected = found_without = found_with = found_rewritten = 0
    references, processed = [], []
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
        references.append(reference(recording))
        processed.append(helped.processed_text)
        print(f"{recording['audio']}: without {plain.original_text!r}")
        print(f"{recording['audio']}: with    {helped.processed_text!r}")

    recall_without = found_without / expected
    recall_with = found_with / expected
    recall_rewritten = found_rewritten / expected
    wer = word_error_rate(references, processed)
    print(
        f"term recall over {expected} spoken terms: without the lexicon {recall_without:.2f}, "
        f"with it {recall_with:.2f} (its replacements alone, without biasing the engine: "
        f"{recall_rewritten:.2f}); WER of the processed text {wer:.3f}"
    )
    assert recall_with >= 0.95
    assert wer <= 0.15
    assert recall_with - recall_without >= 0.5
    assert recall_rewritten - recall_without >= 0.5


async def test_the_lexicon_rewrites_nothing_in_plain_speech(
    whisper_engine: LocalWhisperEngine,
) -> None:
    """The engine's own text of recordings with none of the terms, biased by the lexicon as
    a job with it would be: English, and Spanish and Russian heard by an English model,
    which writes English-looking words that are none."""
    for audio in PLAIN_AUDIO:
        transcript = await whisper_engine.transcribe(
            audio, TranscriptionOptions(vocabulary=vocabulary(ENTRIES))
        )
        result = Rewriter(ENTRIES, language=transcript.language).apply(transcript.text)
        print(f"{audio.name}: {transcript.text!r}")
        assert result.replacements == (), transcript.text
