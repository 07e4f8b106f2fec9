"""The spoken term fixtures and how a lexicon's effect on them is measured, shared by
tests/integration/test_lexicon_effect.py, tests/unit/transcriber/test_near_misses.py and
bench/lexicon_quality.py.

Each recording of tests/fixtures/audio/terms.json speaks the text of its .txt, full of the
terms it lists; terms_lexicon.json is the lexicon a team would write for them. Plain
speech is the other side: texts with none of the terms, where the lexicon must replace
nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jiwer

from steno.common.lexicons import LexiconEntry
from tests.integration.test_languages import normalised
from tests.support import AUDIO, ROOT

RECORDINGS: list[dict[str, Any]] = json.loads((AUDIO / "terms.json").read_text("utf-8"))[
    "recordings"
]
LEXICON: dict[str, Any] = json.loads((AUDIO / "terms_lexicon.json").read_text("utf-8"))
ENTRIES = [LexiconEntry(e["phrase"], tuple(e["sounds_like"])) for e in LEXICON["entries"]]
# The reference texts of the plain-speech recordings, and a few paragraphs of prose.
PLAIN_TEXTS = [
    AUDIO / "speech.txt",
    AUDIO / "speech_es.txt",
    AUDIO / "speech_ru.txt",
    ROOT / "tests" / "fixtures" / "text" / "plain_prose.txt",
]
PLAIN_AUDIO = [AUDIO / "speech.wav", AUDIO / "speech_es.wav", AUDIO / "speech_ru.wav"]


def found_terms(text: str, terms: list[str]) -> int:
    """Terms present in ``text`` as whole words, spelled exactly as displayed."""
    return sum(bool(re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text)) for term in terms)


def reference(recording: dict[str, Any]) -> str:
    """What ``recording`` says, as written."""
    return (AUDIO / str(recording["text"])).read_text("utf-8")


def word_error_rate(references: list[str], texts: list[str]) -> float:
    """The WER of ``texts`` against ``references``, all taken together, on the words alone
    (lower case, no punctuation), as tests/integration/test_languages.py measures it."""
    return float(jiwer.wer([normalised(r) for r in references], [normalised(t) for t in texts]))
