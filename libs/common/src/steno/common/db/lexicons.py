"""SQL implementation of :class:`steno.common.lexicons.LexiconRepository`."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, delete, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine

from steno.common.db.schema import lexicons
from steno.common.db.transaction import execute, fetch_all, fetch_first
from steno.common.lexicons import Lexicon, LexiconEntry
from steno.common.paging import PageCursor

# The Lexicon fields stored as they are, each in the column of its name.
_PLAIN = tuple(f.name for f in dataclasses.fields(Lexicon) if f.name != "entries")
# What an update may change.
_UPDATABLE = ("name", "language", "version", "entries", "update_time")


def _to_row(lexicon: Lexicon) -> dict[str, Any]:
    entries = [{"phrase": e.phrase, "sounds_like": list(e.sounds_like)} for e in lexicon.entries]
    return {**{name: getattr(lexicon, name) for name in _PLAIN}, "entries": entries}


def _from_row(row: Row[Any]) -> Lexicon:
    m = row._mapping
    return Lexicon(
        **{name: m[name] for name in _PLAIN},
        entries=[LexiconEntry(e["phrase"], tuple(e["sounds_like"])) for e in m["entries"]],
    )


def _is_tenants(lexicon_id: uuid.UUID, tenant: str) -> ColumnElement[bool]:
    return and_(lexicons.c.lexicon_id == lexicon_id, lexicons.c.tenant == tenant)


class SqlLexiconRepository:
    """Lexicons in a SQL database; each method is its own short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, lexicon: Lexicon) -> None:
        await execute(self._engine, insert(lexicons).values(_to_row(lexicon)))

    async def get(self, lexicon_id: uuid.UUID, tenant: str) -> Lexicon | None:
        row = await fetch_first(
            self._engine, select(lexicons).where(_is_tenants(lexicon_id, tenant))
        )
        return _from_row(row) if row else None

    async def list_lexicons(
        self, tenant: str, *, limit: int, after: PageCursor | None
    ) -> list[Lexicon]:
        query = select(lexicons).where(lexicons.c.tenant == tenant)
        if after is not None:
            query = query.where(
                tuple_(lexicons.c.create_time, lexicons.c.lexicon_id)
                < tuple_(after.create_time, after.id)
            )
        newest_first = (lexicons.c.create_time.desc(), lexicons.c.lexicon_id.desc())
        rows = await fetch_all(self._engine, query.order_by(*newest_first).limit(limit))
        return [_from_row(row) for row in rows]

    async def update(self, lexicon: Lexicon, *, expected_version: int) -> bool:
        row = _to_row(lexicon)
        statement = (
            update(lexicons)
            .where(
                _is_tenants(lexicon.lexicon_id, lexicon.tenant),
                lexicons.c.version == expected_version,
            )
            .values({name: row[name] for name in _UPDATABLE})
        )
        return await execute(self._engine, statement) == 1

    async def delete(self, lexicon_id: uuid.UUID, tenant: str) -> bool:
        statement = delete(lexicons).where(_is_tenants(lexicon_id, tenant))
        return await execute(self._engine, statement) == 1
