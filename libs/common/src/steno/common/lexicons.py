"""The lexicon: a tenant's vocabulary, and the repository port that stores it."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from steno.common.paging import PageCursor


@dataclass(frozen=True, slots=True)
class LexiconEntry:
    """A word to get right: its display form and what engines write instead."""

    phrase: str
    sounds_like: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Replacement:
    """One change post-processing made: ``original`` at ``offset`` (code points into the
    engine's text) became ``replacement``."""

    original: str
    replacement: str
    offset: int


# -- How variants compare: the same way wherever they are matched or checked -----------

# The unit for a run of whitespace. A folded character is never whitespace, so it cannot
# be confused with one.
GAP = " "


def fold(char: str) -> str:
    """The case-insensitive identity of one character: its case folding where that is a
    single character, else its lower case where that is, else the character itself.

    Always exactly one character, so folding a text keeps every position. Combining marks
    stay as they are: the one mark with a case folding (the Greek ypogegrammeni, which
    folds to iota) would otherwise turn into a letter, and the word boundaries are checked
    on the folded text.
    """
    if unicodedata.category(char).startswith("M"):
        return char
    folded = char.casefold()
    if len(folded) == 1:
        return folded
    lower = char.lower()
    return lower if len(lower) == 1 else char


def match_units(text: str) -> tuple[str, ...]:
    """``text`` as matching compares it: folded characters, with each run of whitespace as
    one gap and the whitespace around it dropped."""
    units: list[str] = []
    for word in text.split():
        if units:
            units.append(GAP)
        units.extend(fold(char) for char in word)
    return tuple(units)


def claimed_twice(entries: list[LexiconEntry]) -> tuple[str, str, str] | None:
    """A variant (an entry's phrase counts as one) that two entries claim, as
    ``(variant, first phrase, second phrase)``; None if every variant has one phrase. The
    rewriter would let the first entry win, so such a lexicon means what its order says."""
    owners: dict[tuple[str, ...], str] = {}
    for entry in entries:
        for variant in dict.fromkeys((entry.phrase, *entry.sounds_like)):
            key = match_units(unicodedata.normalize("NFC", variant))
            owner = owners.setdefault(key, entry.phrase)
            if key and owner != entry.phrase:
                return variant, owner, entry.phrase
    return None


@dataclass(slots=True)
class Lexicon:
    lexicon_id: uuid.UUID
    tenant: str
    name: str
    create_time: datetime
    update_time: datetime
    language: str = ""
    entries: list[LexiconEntry] = field(default_factory=list)
    # 1 when created, bumped by every update; jobs record the version they used.
    version: int = 1


class LexiconRepository(Protocol):
    """Durable storage of lexicons. Reads and writes are scoped to a tenant."""

    async def add(self, lexicon: Lexicon) -> None: ...

    async def get(self, lexicon_id: uuid.UUID, tenant: str) -> Lexicon | None: ...

    async def list_lexicons(
        self, tenant: str, *, limit: int, after: PageCursor | None
    ) -> list[Lexicon]:
        """The tenant's lexicons, newest first."""
        ...

    async def update(self, lexicon: Lexicon, *, expected_version: int) -> bool:
        """Writes name, language, entries, version and update_time if the stored version is
        still ``expected_version``; False (nothing written) if it changed or is gone."""
        ...

    async def delete(self, lexicon_id: uuid.UUID, tenant: str) -> bool:
        """True if the lexicon existed."""
        ...
