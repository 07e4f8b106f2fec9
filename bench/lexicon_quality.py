"""Lexicon quality on the spoken term fixtures (tests/lexicon_terms.py) with the bundled
tiny.en model: the recall of the terms without the lexicon, with the engine biased and
exact variants replaced, and with near misses replaced too; the word error rate of that
processed text against what was said; and the replacements the lexicon makes in plain
speech, the engine's text of recordings and written prose without any of the terms.

The engine runs in this process, as a job's transcriber runs it: biased with the lexicon's
vocabulary, then rewritten in the transcript's language. Decoding is deterministic, so
each figure is one value.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bench.harness import Figure, Scale
from bench.stack import Stack
from steno.transcriber.engines.local import LocalWhisperEngine
from steno.transcriber.engines.models import resolve_model
from steno.transcriber.engines.port import TranscriptionOptions
from steno.transcriber.rewriting import Rewriter, vocabulary
from tests.lexicon_terms import (
    ENTRIES,
    PLAIN_AUDIO,
    PLAIN_TEXTS,
    RECORDINGS,
    found_terms,
    reference,
    word_error_rate,
)
from tests.support import AUDIO

BIASED = TranscriptionOptions(vocabulary=vocabulary(ENTRIES))


@dataclass
class _Counts:
    terms: int = 0
    without: int = 0
    exact: int = 0
    near: int = 0
    wer: float = 0.0
    false_rewrites: int = 0
    plain_words: int = 0


async def _terms(engine: LocalWhisperEngine, counts: _Counts, scale: Scale) -> None:
    """Recall and WER over the term recordings, each transcribed unbiased and biased."""
    references, processed = [], []
    for recording in scale.pick(full=RECORDINGS, quick=RECORDINGS, tiny=RECORDINGS[:1]):
        audio, terms = AUDIO / recording["audio"], recording["terms"]
        plain = await engine.transcribe(audio, TranscriptionOptions())
        helped = await engine.transcribe(audio, BIASED)
        exact = Rewriter(ENTRIES, language=helped.language, near_misses=False)
        near = Rewriter(ENTRIES, language=helped.language).apply(helped.text).text
        counts.terms += len(terms)
        counts.without += found_terms(plain.text, terms)
        counts.exact += found_terms(exact.apply(helped.text).text, terms)
        counts.near += found_terms(near, terms)
        references.append(reference(recording))
        processed.append(near)
    counts.wer = word_error_rate(references, processed)


async def _plain_speech(engine: LocalWhisperEngine, counts: _Counts, scale: Scale) -> None:
    """Replacements in the written plain texts, and in the engine's biased text of the
    plain recordings, in the language it heard."""
    texts: list[tuple[str, str | None]] = [(path.read_text("utf-8"), None) for path in PLAIN_TEXTS]
    for audio in scale.pick(full=PLAIN_AUDIO, quick=PLAIN_AUDIO, tiny=[]):
        transcript = await engine.transcribe(audio, BIASED)
        texts.append((transcript.text, transcript.language))
    for text, language in texts:
        counts.false_rewrites += len(Rewriter(ENTRIES, language=language).apply(text).replacements)
        counts.plain_words += len(text.split())


async def _run(base: Stack, scale: Scale) -> _Counts:
    engine = LocalWhisperEngine(resolve_model(None, base.workdir / "models"))
    await engine.load()
    counts = _Counts()
    await _terms(engine, counts, scale)
    await _plain_speech(engine, counts, scale)
    return counts


def run(base: Stack, scale: Scale) -> list[Figure]:
    """The figures: of every fixture in some ten seconds, or (``Scale.TINY``) of one term
    recording and the written plain texts."""
    counts = asyncio.run(_run(base, scale))
    terms = {"terms": counts.terms, "model": "tiny.en"}

    def recall(name: str, found: int, target: float | None = None) -> Figure:
        return Figure(f"lexicon term recall: {name}", [found / counts.terms], unit="",
                      target=target, params=terms)  # fmt: skip

    return [
        recall("no lexicon", counts.without),
        recall("biased, exact variants", counts.exact),
        recall("biased, exact variants and near misses", counts.near, target=0.95),
        Figure(
            "lexicon: WER of the processed text vs what was said",
            [counts.wer],
            unit="",
            target=0.15,
            lower_is_better=True,
            params=terms,
        ),
        Figure(
            "lexicon: replacements in plain speech",
            [float(counts.false_rewrites)],
            unit="",
            target=0.0,
            lower_is_better=True,
            params={"words": counts.plain_words},
        ),
    ]
