"""Lexicon post-processing: a tenant's words put right in an engine's transcript.

An engine writes what it heard ("cooper netties"); the lexicon says what was meant
("Kubernetes"). :class:`Rewriter` compiles a lexicon once into one regular expression and
rewrites any number of texts with it (the pipeline applies the same lexicon to the whole
transcript and then to each segment).

What is replaced, and what is left alone:

* **Variants and the phrase.** Every ``sounds_like`` variant of an entry, and the entry's
  own phrase in any case ("KUBERNETES"), becomes the phrase. A match that already reads
  exactly as the phrase is left as it is and not reported. An entry whose phrase is blank
  is skipped: it has nothing to put in.
* **Whole words.** A match is never directly preceded or followed by a word character: a
  letter, digit or underscore (Python's ``\\w``), a combining mark, or a zero-width
  (non-)joiner. So "sql" is not found in "postgresql", "cat" not in "catalog", "नमस" not in
  "नमस्ते" (the virama after it is a combining mark, which ``\\w`` alone would miss), and
  "cafe" not in a decomposed "café" (``e`` + U+0301). Whitespace and punctuation delimit
  words and are kept: "(rabbit mq)," becomes "(RabbitMQ),". The rule is the same whatever
  the variant's first and last characters, so "C++" is found in "C++," and "(C++)" but not
  in "C++11", and ".net" is not found in "asp.net".
* **Scripts written without spaces.** Chinese, Japanese, Thai, Lao, Khmer and Myanmar put
  no spaces between words, so there is no boundary to look for: their characters do not
  count as word characters next to a match, and a variant that starts (ends) with one of
  them matches regardless of what comes before (after) it, except that a match never ends
  in front of a combining mark, which belongs to the character before it. So "库伯内特斯"
  is found in "我们用库伯内特斯部署", and "kubernetes" in "我们用kubernetes部署". As with
  any search in such a script, a short variant may also be found inside a longer word:
  make variants in these scripts long enough to be unambiguous.
* **Words that take suffixes.** Korean particles and Finnish, Turkish or Hungarian case
  endings are part of the word: "쿠버네티스를" does not contain the word "쿠버네티스".
  List the inflected forms a lexicon needs as variants of their own.
* **Whitespace.** Between the words of a variant, any run of whitespace in the text
  matches (engines write double spaces and line breaks). Whitespace around a variant is
  ignored, and a variant that is only whitespace is ignored. Hyphens and other punctuation
  are matched as written: if an engine writes both "rabbit-mq" and "rabbit mq", list both,
  so that no entry matches text its author did not write (near misses, below, are the one
  deliberate exception).
* **Case.** Letters match regardless of case, by Unicode case folding where it maps one
  character to one: capital, small and final sigma are one letter, as are "K", "k" and
  the Kelvin sign, the long s and "s", "ẞ" and "ß". Foldings that change the number of
  characters are not applied: "ß" is not "ss" (that is a spelling: list "strasse" if
  engines write it), the "ﬁ" ligature is not "fi", and the Turkish dotted capital "İ" and
  dotless small i match only themselves (Unicode's default rules, not Turkish ones).
* **Accents and normalisation.** The text is never normalised, transliterated or
  re-spaced: everything outside a match is returned exactly as it came in. Each variant
  is looked for in both its composed (NFC) and decomposed (NFD) forms, so "café" is found
  however the engine encoded it. Accents are significant: "cafe" does not find "café".
* **Overlaps.** The text is read left to right. The earliest match wins; among matches
  starting at the same place, the longest; text inside a match is not searched again. So
  with the variants "rabbit" and "rabbit mq", "rabbit mq" is one match. When two entries
  claim the same variant (equal after case folding and whitespace), the first entry wins;
  an entry's phrase counts as one of its variants.
* **Variants are text, not patterns**: "node.js", "C++" and "a.b" match only themselves.
* **Near misses.** Engines also write a variant a letter or two off ("Shivhan" for
  "shivon", "post-rescule" for "post-rescue l"), or split it differently ("min i-o" for
  "min io"). Where no variant matches, a *window* of the text becomes the phrase of the
  variant (or phrase) it nearly spells, within all of these bounds:

  - Words here are runs of Latin letters and digits (with their marks) that no other
    word character touches. A window is as many such words as the variant has, or one
    more or one fewer, with only whitespace or hyphens between them; it never reaches
    into an exact match, which always comes first. Variants that hold other punctuation
    ("node.js", "C++") or another script have no near misses.
  - The comparison is of letters only: folded, composed (NFC), the spaces and hyphens
    between words dropped. Variant and window both have at least 5 letters; shorter ones
    are too easily another word ("neev", "need").
  - A window spelled exactly like a variant (only its spacing or hyphens differ) is a near
    miss. Otherwise its similarity, rapidfuzz's ``fuzz.ratio`` (100 times twice the
    longest common subsequence over the sum of the two lengths), is at least 75 (about
    one edit in four letters), **and** the window holds a word that the dictionary of the
    text's language and of English (pyspellchecker's word lists) does not know: a window
    of real words ("rabbit", "graphs on it", "cube controls") is what was said, however
    close it is to a variant. A text in a language without such a dictionary gets no
    near-miss correction.
  - A window that holds all of a variant's letters and more is not a near miss of it: it
    is an inflected or compound form ("kubernetesy", "Grafanas") or has another word
    besides ("two Grafanas"). List the forms a lexicon wants as variants.
  - The closest window wins, then the first entry's, then the earliest and shortest;
    windows never overlap one another, and each becomes the phrase whole.

  ``Rewriter(..., near_misses=False)`` replaces exact variants only.

Offsets in :class:`~steno.common.lexicons.Replacement` count code points (Python
``str`` indices) into the text given to :meth:`Rewriter.apply`, not into its result.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from steno.common.lexicons import GAP, LexiconEntry, Replacement, fold, match_units
from steno.transcriber.near_misses import NearMisses

__all__ = ["Rewrite", "Rewriter", "apply_lexicon", "vocabulary"]


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A text after post-processing, and the replacements made in it, in text order."""

    text: str
    replacements: tuple[Replacement, ...] = ()


class Rewriter:
    """A lexicon compiled for matching; build once, then :meth:`apply` to many texts.

    Compiling costs in proportion to the lexicon's size (some 50 ms per thousand variants,
    plus once per process about 20 ms for the Unicode tables and 0.7 s for a dictionary).
    Applying costs in proportion to the text's length and hardly depends on the number of
    variants, which share one pattern shaped like a prefix tree, while near misses are
    looked for only around words no dictionary knows: an hour of speech (60,000
    characters) takes about 30 ms against thousands of variants.
    """

    __slots__ = ("_near_misses", "_pattern", "_phrases")

    def __init__(
        self,
        entries: Iterable[LexiconEntry],
        *,
        language: str | None = None,
        near_misses: bool = True,
    ) -> None:
        """``language`` is the texts' (a BCP-47 tag; None: English), whose dictionary tells
        near misses from words; ``near_misses=False`` replaces exact variants only."""
        entries = [entry for entry in entries if entry.phrase.strip()]
        # A variant's units (see match_units) -> the phrase it stands for; first entry wins.
        self._phrases: dict[tuple[str, ...], str] = {}
        for entry in entries:
            for variant in (entry.phrase, *entry.sounds_like):
                for form in _forms(variant):
                    key = match_units(form)
                    if key:
                        self._phrases.setdefault(key, entry.phrase)
        self._pattern = _compile(self._phrases) if self._phrases else None
        tables = _tables()
        self._near_misses = (
            NearMisses(entries, language, folds=tables.folds, marks=tables.attached)
            if near_misses
            else None
        )

    def apply(self, text: str) -> Rewrite:
        """``text`` with every variant and near miss replaced by its phrase, and what was
        replaced."""
        if self._pattern is None:
            return Rewrite(text)
        # The pattern is written in folded characters and runs over the folded text.
        # Folding maps each character to exactly one, so positions carry over unchanged.
        folded = text.translate(_tables().folds)
        # Always present: the pattern matches exactly the texts whose units are a key.
        found = [
            (m.start(), m.end(), self._phrases[match_units(m.group())])
            for m in self._pattern.finditer(folded)
        ]
        if self._near_misses:
            near = self._near_misses.find(folded, [(start, end) for start, end, _ in found])
            found = sorted(found + [(m.start, m.end, m.phrase) for m in near])
        pieces: list[str] = []
        replacements: list[Replacement] = []
        done = 0
        for start, end, phrase in found:
            original = text[start:end]
            if original == phrase:
                continue
            pieces.extend((text[done:start], phrase))
            replacements.append(Replacement(original, phrase, start))
            done = end
        if not replacements:
            return Rewrite(text)
        pieces.append(text[done:])
        return Rewrite("".join(pieces), tuple(replacements))


def apply_lexicon(text: str, entries: Sequence[LexiconEntry]) -> Rewrite:
    """``text`` rewritten with ``entries``; to rewrite several texts, build a
    :class:`Rewriter` once instead."""
    return Rewriter(entries).apply(text)


def vocabulary(entries: Sequence[LexiconEntry]) -> list[str]:
    """The lexicon's display phrases, each once, in lexicon order: the words to bias an
    engine towards. The variants are left out on purpose: they are what the engine should
    stop writing."""
    return list(dict.fromkeys(e.phrase for e in entries if e.phrase.strip()))


# -- Units: a variant as the matcher sees it --------------------------------------------


def _forms(variant: str) -> list[str]:
    """The spellings of ``variant`` to look for: as given, composed and decomposed."""
    forms = (variant, *(unicodedata.normalize(form, variant) for form in ("NFC", "NFD")))
    return list(dict.fromkeys(forms))


# -- The pattern ------------------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    """A prefix tree of unit sequences."""

    children: dict[str, _Node] = field(default_factory=dict)
    terminal: bool = False

    def insert(self, units: Sequence[str]) -> None:
        node = self
        for unit in units:
            node = node.children.setdefault(unit, _Node())
        node.terminal = True


def _compile(keys: Iterable[tuple[str, ...]]) -> re.Pattern[str]:
    """One pattern for all variants: the boundary before, the prefix tree, the boundary
    after. Sharing prefixes keeps the work per text position small however many variants
    there are; a flat alternation would try every variant at every position."""
    root = _Node()
    for key in keys:
        root.insert(key)
    tables = _tables()
    unspaced = _class_body(_UNSPACED)
    # A character that continues a word of a spaced script: \w minus the unspaced
    # scripts, or anything that attaches to the character before it.
    spaced_word = rf"[^\W{unspaced}]|[{tables.attached}]"
    # Before: nothing to check if the match starts with an unspaced character, else no
    # word character.
    before = rf"(?:(?=[{unspaced}])|(?<!{spaced_word}))"
    # After: never split a character from its marks; then, unless the match ends with an
    # unspaced character, no word character.
    after = rf"(?![{tables.attached}])(?:(?<=[{unspaced}])|(?!{spaced_word}))"
    return re.compile(f"{before}(?:{_emit(root)}){after}")


def _emit(node: _Node) -> str:
    """The pattern for the tree below ``node``. Continuations come before the end of a
    variant, so at one position the longest variant is tried first; the units of one
    node's children never match the same character, so their order does not matter."""
    alternatives = [
        (r"\s+" if unit == GAP else re.escape(unit)) + _emit(child)
        for unit, child in node.children.items()
    ]
    if node.terminal:
        alternatives.append("")
    if len(alternatives) == 1:
        return alternatives[0]
    return f"(?:{'|'.join(alternatives)})"


# -- Unicode tables -------------------------------------------------------------------

# Scripts written without spaces between words, as code point ranges (inclusive).
_UNSPACED: tuple[tuple[int, int], ...] = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x19E0, 0x19FF),  # Khmer symbols
    (0x3005, 0x3007),  # ideographic iteration mark, closing mark, number zero
    (0x3021, 0x303C),  # Hangzhou numerals, kana repeat marks, ideographic marks
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK unified ideographs extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # halfwidth Katakana
    (0x1AFF0, 0x1B16F),  # Kana extensions and supplement
    (0x20000, 0x3FFFF),  # CJK unified ideographs extensions B onwards
)

# Characters that join their neighbours without being \w: zero-width non-joiner, joiner.
_JOINERS = (0x200C, 0x200D)

# The planes that hold every cased character and every combining mark: the Basic and
# Supplementary Multilingual Planes, and the variation selectors in plane 14. Planes 2
# and 3 hold only ideographs, 15 and 16 private use, the rest is unassigned; scanning
# three planes rather than seventeen keeps the first compile fast.
_SCANNED = (range(0x20000), range(0xE0000, 0xE1000))


@dataclass(frozen=True, slots=True)
class _Tables:
    # For str.translate: every character whose folding (see fold) is another one.
    folds: dict[int, str]
    # Body of a character class: combining marks (categories Mn, Mc, Me) and joiners.
    attached: str


@functools.cache
def _tables() -> _Tables:
    """Built on first use from the running Python's Unicode database."""
    folds: dict[int, str] = {}
    attached = list(_JOINERS)
    for plane in _SCANNED:
        for code in plane:
            char = chr(code)
            if unicodedata.category(char).startswith("M"):
                attached.append(code)
            folded = fold(char)
            if folded != char:
                folds[code] = folded
    return _Tables(folds=folds, attached=_class_body(_ranges(sorted(attached))))


def _ranges(codes: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted code points as inclusive ranges of consecutive ones."""
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return ranges


def _class_body(ranges: Iterable[tuple[int, int]]) -> str:
    """The inside of a regex character class for inclusive code point ranges."""
    return "".join(
        rf"\U{low:08x}" if low == high else rf"\U{low:08x}-\U{high:08x}" for low, high in ranges
    )
