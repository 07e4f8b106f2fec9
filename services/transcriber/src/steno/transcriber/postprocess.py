"""Lexicon post-processing: the engine's transcript, with the tenant's words put right.

A failure here never costs the transcript: the job completes with the engine's text, no
processed text and a warning saying what went wrong.
"""

from __future__ import annotations

import logging

from steno.common.jobs import PostProcessing, Segment, Transcript
from steno.common.lexicons import Lexicon
from steno.transcriber.rewriting import Rewriter

log = logging.getLogger(__name__)


def post_process(transcript: Transcript, lexicon: Lexicon | None) -> PostProcessing:
    """The lexicon applied to the whole text (whose offsets the replacements give) and to
    each segment's text (so subtitles show the corrected words too)."""
    if lexicon is None:
        return PostProcessing()
    try:
        # The transcript's language (detected or asked for) picks the dictionary that tells
        # near misses from words.
        rewriter = Rewriter(lexicon.entries, language=transcript.language or None)
        rewrite = rewriter.apply(transcript.text)
        segments = [
            Segment(s.start, s.end, rewriter.apply(s.text).text) for s in transcript.segments
        ]
    except Exception as exc:
        log.exception(
            "lexicon post-processing failed", extra={"lexicon_id": str(lexicon.lexicon_id)}
        )
        return PostProcessing(
            lexicon_version=lexicon.version,
            warnings=[
                f"lexicon {lexicon.lexicon_id} (version {lexicon.version}) could not be applied "
                f"({type(exc).__name__}: {exc}); processed_text is empty and the text is the "
                "engine's own"
            ],
        )
    return PostProcessing(
        lexicon_version=lexicon.version,
        text=rewrite.text,
        segments=segments,
        replacements=rewrite.replacements,
    )
