"""The lexicon: a tenant's vocabulary, and the repository port that stores it."""

from __future__ import annotations

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
