"""Near misses: what an engine writes a letter or two away from a lexicon's variant.

The rule is specified with the others in :mod:`steno.transcriber.rewriting`; this module
finds the windows of words it applies to. It costs in proportion to the text, not to the
lexicon: a window is compared with variants only when it holds a word that the dictionary
does not know (a few in a transcript), and then only with the variants of a fitting word
and letter count, in rapidfuzz's compiled loop.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from rapidfuzz import fuzz, process

from steno.common.lexicons import LexiconEntry

__all__ = ["MIN_LETTERS", "MIN_SIMILARITY", "NearMiss", "NearMisses"]

# Shorter variants and windows are left to exact matching: one letter away from "neev" are
# "need", "neve" and "knee", and nothing tells a mishearing from a word.
MIN_LETTERS = 5
# rapidfuzz's fuzz.ratio of the letters, 100 * 2 * LCS / (len a + len b): about one edit in
# four letters ("shivhan" for "shivon" is 77, "post-rescule" for "post-rescue l" 91).
MIN_SIMILARITY = 75.0
# The shortest over the longest letter count that can still reach MIN_SIMILARITY (0.6).
_LENGTH_RATIO = MIN_SIMILARITY / (200 - MIN_SIMILARITY)

# Latin letters and digits, folded (see steno.common.lexicons.fold): the script the
# dictionaries are for.
_LATIN = "0-9a-z\u00df-\u00f6\u00f8-\u00ff\u0100-\u024f\u1e00-\u1eff"
# What may stand between the words of one window: whitespace and hyphens.
_JOINS = r"[\s\-\u2010\u2011]+"
# How many first letters of a window are looked up before it is spelled out in full.
_HEAD = 4


@dataclass(frozen=True, slots=True)
class NearMiss:
    """``text[start:end]`` is a near miss of one of ``phrase``'s variants."""

    start: int
    end: int
    phrase: str


@dataclass(frozen=True, slots=True)
class _Target:
    letters: str
    phrase: str
    # The entry's place in the lexicon: between equally close targets, the first wins.
    rank: int


@dataclass(slots=True)
class _Bucket:
    """The targets with one number of words, by letter count, for range look-ups."""

    lengths: list[int] = field(default_factory=list)
    targets: list[_Target] = field(default_factory=list)

    def add(self, target: _Target) -> None:
        at = bisect.bisect_right(self.lengths, len(target.letters))
        self.lengths.insert(at, len(target.letters))
        self.targets.insert(at, target)

    def fitting(self, letters: int) -> list[_Target]:
        """The targets neither too short nor too long to reach MIN_SIMILARITY against a
        window of ``letters`` letters."""
        low = bisect.bisect_left(self.lengths, math.ceil(letters * _LENGTH_RATIO))
        high = bisect.bisect_right(self.lengths, math.floor(letters / _LENGTH_RATIO))
        return self.targets[low:high]


@dataclass(slots=True)
class _Run:
    """Words with only whitespace or hyphens between them: where a window may lie."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    # Folded and composed (NFC): what is compared and looked up.
    keys: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Candidate:
    near_miss: NearMiss
    score: float
    rank: int

    def order(self) -> tuple[float, int, int, int]:
        """Best first: the closest, then the first entry's, then the earliest and the
        shortest window."""
        return (-self.score, self.rank, self.near_miss.start, self.near_miss.end)

    def overlaps(self, other: _Candidate) -> bool:
        mine, theirs = self.near_miss, other.near_miss
        return mine.start < theirs.end and theirs.start < mine.end


class NearMisses:
    """A lexicon's variants and phrases compiled for near-miss search; see :meth:`find`.

    ``folds`` folds a text for :meth:`str.translate` as matching does, and ``marks`` is the
    body of a regex character class of what attaches to the character before it
    (combining marks, joiners); both come from the rewriter's Unicode tables.
    """

    __slots__ = (
        "_buckets",
        "_dictionaries",
        "_heads",
        "_sizes",
        "_spelled",
        "_stretches",
        "_words",
    )

    def __init__(
        self,
        entries: Iterable[LexiconEntry],
        language: str | None,
        *,
        folds: Mapping[int, str],
        marks: str,
    ) -> None:
        self._words, self._stretches = _patterns(marks)
        # A variant's letters -> its target, for windows spelled like one whatever their
        # spacing; and the targets by number of words. The first entry wins a variant.
        self._spelled: dict[str, _Target] = {}
        self._buckets: dict[int, _Bucket] = {}
        for rank, entry in enumerate(entries):
            for variant in (entry.phrase, *entry.sounds_like):
                words = self._variant_words(variant.translate(folds).strip())
                letters = "".join(words)
                if len(letters) < MIN_LETTERS or letters in self._spelled:
                    continue
                target = _Target(letters, entry.phrase, rank)
                self._spelled[letters] = target
                self._buckets.setdefault(len(words), _Bucket()).add(target)
        self._heads = {letters[:_HEAD] for letters in self._spelled}
        # A window has as many words as a variant, one more or one fewer.
        self._sizes = sorted({n for k in self._buckets for n in (k - 1, k, k + 1) if n > 0})
        self._dictionaries = _word_lists(language) if self._spelled else None

    def __bool__(self) -> bool:
        """Whether a text can hold near misses: some variant is long enough, and the
        text's language has a dictionary."""
        return self._dictionaries is not None

    def find(self, folded: str, taken: Sequence[tuple[int, int]]) -> list[NearMiss]:
        """The near misses in ``folded`` (a text folded as matching folds it) outside the
        ``taken`` spans (the exact matches, in text order), in text order and none
        overlapping another: the best window, then the best one left, and so on."""
        found: list[NearMiss] = []
        for run in self._runs(folded, taken):
            chosen: list[_Candidate] = []
            for candidate in sorted(self._candidates(run), key=_Candidate.order):
                if not any(candidate.overlaps(c) for c in chosen):
                    chosen.append(candidate)
            found.extend(sorted((c.near_miss for c in chosen), key=lambda m: m.start))
        return found

    def _variant_words(self, folded: str) -> list[str]:
        """The words of a folded variant; none unless it is Latin words with only
        whitespace or hyphens between them. Other punctuation is part of a variant's
        spelling ("node.js", "C++") that comparing letters would not see."""
        if not self._stretches.fullmatch(folded):
            return []
        return [_key(match.group()) for match in self._words.finditer(folded)]

    def _runs(self, folded: str, taken: Sequence[tuple[int, int]]) -> Iterator[_Run]:
        """The text's Latin words outside ``taken``, in runs."""
        # Two passes of the regex engine, merged here: the words, and the stretches that
        # hold them. A word outside every stretch is part of a word in another script.
        stretches = (m.span() for m in self._stretches.finditer(folded))
        spans = iter(taken)
        stretch, span = next(stretches, None), next(spans, None)
        run = _Run()
        for match in self._words.finditer(folded):
            start, end = match.span()
            while stretch is not None and stretch[1] < end:
                stretch = next(stretches, None)
                if run.keys:
                    yield run
                    run = _Run()
            if stretch is None:
                break
            while span is not None and span[1] <= start:
                span = next(spans, None)
            if start < stretch[0]:
                continue
            if span is not None and span[0] < end:
                if run.keys:  # an exact match ends the run
                    yield run
                    run = _Run()
                continue
            run.starts.append(start)
            run.ends.append(end)
            run.keys.append(_key(match.group()))
        if run.keys:
            yield run

    def _candidates(self, run: _Run) -> Iterator[_Candidate]:
        """Every window of ``run`` that is a near miss, with its closest target."""
        keys = run.keys
        strange = self._unknown(keys)
        # Most runs hold only known words, and no window in them starts like a variant:
        # they are passed over before any window is spelled out.
        heads = self._heads
        starting = ["".join(keys[i : i + _HEAD])[:_HEAD] in heads for i in range(len(keys))]
        if not any(strange) and not any(starting):
            return
        # Over the first i words: letters[i] letters, unknown[i] words no dictionary knows.
        letters = [0, *accumulate(map(len, keys))]
        unknown = [0, *accumulate(strange)]
        for first in range(len(keys)):
            for size in self._sizes:
                end = first + size
                if end > len(keys) or letters[end] - letters[first] < MIN_LETTERS:
                    continue
                spelling = "".join(keys[first:end])
                target = self._spelled.get(spelling) if starting[first] else None
                score = 100.0
                if target is None and unknown[end] > unknown[first]:
                    score, target = self._closest(spelling, size)
                if target is not None:
                    near_miss = NearMiss(run.starts[first], run.ends[end - 1], target.phrase)
                    yield _Candidate(near_miss, score, target.rank)

    def _unknown(self, keys: list[str]) -> list[bool]:
        """For each word, whether no dictionary knows it."""
        known = self._dictionaries or ()
        return [all(key not in words for words in known) for key in keys]

    def _closest(self, letters: str, size: int) -> tuple[float, _Target | None]:
        """The target closest to ``letters`` (a window of ``size`` words) if one reaches
        MIN_SIMILARITY, with its similarity; between equals, the first entry's. A target
        whose letters the window holds whole is not one: the window is the term and
        more, an inflected or compound form ("kubernetesy", "grafanas") or another word
        besides ("two grafanas"), which a lexicon lists as a variant if it wants it."""
        best: tuple[float, _Target | None] = (0.0, None)
        for words in (size - 1, size, size + 1):
            bucket = self._buckets.get(words)
            targets = bucket.fitting(len(letters)) if bucket else []
            for _, score, index in process.extract(
                letters, [t.letters for t in targets], scorer=fuzz.ratio,
                score_cutoff=MIN_SIMILARITY, limit=None,
            ):  # fmt: skip
                target, held = targets[index], best[1]
                if target.letters in letters:
                    continue
                if held is None or (score, -target.rank) > (best[0], -held.rank):
                    best = (score, target)
        return best


@functools.cache
def _patterns(marks: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Latin letters and digits with their marks, in folded text (a word, if it lies in a
    stretch); and a stretch: such words with only whitespace or hyphens between them and
    no other word character, of any script, next to it."""
    word = rf"[{_LATIN}]+(?:[{marks}][{_LATIN}{marks}]*)?"
    stretch = rf"(?<![\w{marks}]){word}(?:{_JOINS}{word})*(?![\w{marks}])"
    return re.compile(word), re.compile(stretch)


def _key(word: str) -> str:
    return word if word.isascii() else unicodedata.normalize("NFC", word)


def _word_lists(language: str | None) -> tuple[frozenset[str], ...] | None:
    """The words of ``language`` (a BCP-47 tag; None: English) and of English, which speech
    in any language borrows from; None if the language has no dictionary here, since its
    words could not be told from near misses."""
    from spellchecker import SpellChecker

    code = (language or "en").split("-")[0].lower()
    if code not in SpellChecker.languages():
        return None
    return tuple(_word_list(c) for c in dict.fromkeys(("en", code)))


@functools.cache
def _word_list(code: str) -> frozenset[str]:
    """pyspellchecker's word list for ``code``, in lower case. Loaded once per process, on
    first use: 0.7 s and some 15 MB for English."""
    from spellchecker import SpellChecker

    return frozenset(SpellChecker(language=code).word_frequency.dictionary)
