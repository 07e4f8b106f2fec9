"""SQL implementation of :class:`steno.common.lexicon.LexiconRepository`."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, delete, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine

from steno.common.db.schema import lexicons
from steno.common.db.transaction import transaction
from steno.common.lexicon import Lexicon, LexiconEntry
from steno.common.paging import PageCursor


def _entries_to_json(entries: list[LexiconEntry]) -> list[dict[str, Any]]:
    return [{"phrase": e.phrase, "sounds_like": list(e.sounds_like)} for e in entries]


def _from_row(row: Row[Any]) -> Lexicon:
    m = row._mapping
    return Lexicon(
        lexicon_id=m["lexicon_id"],
        tenant=m["tenant"],
        name=m["name"],
        language=m["language"],
        version=m["version"],
        entries=[LexiconEntry(e["phrase"], tuple(e["sounds_like"])) for e in m["entries"]],
        create_time=m["create_time"],
        update_time=m["update_time"],
    )


class SqlLexiconRepository:
    """Lexicons in a SQL database; each method is its own short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, lexicon: Lexicon) -> None:
        row = {
            "lexicon_id": lexicon.lexicon_id,
            "tenant": lexicon.tenant,
            "name": lexicon.name,
            "language": lexicon.language,
            "version": lexicon.version,
            "entries": _entries_to_json(lexicon.entries),
            "create_time": lexicon.create_time,
            "update_time": lexicon.update_time,
        }
        async with transaction(self._engine) as conn:
            await conn.execute(insert(lexicons).values(row))

    async def get(self, lexicon_id: uuid.UUID, tenant: str) -> Lexicon | None:
        query = select(lexicons).where(
            lexicons.c.lexicon_id == lexicon_id, lexicons.c.tenant == tenant
        )
        async with transaction(self._engine) as conn:
            row = (await conn.execute(query)).first()
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
        query = query.order_by(lexicons.c.create_time.desc(), lexicons.c.lexicon_id.desc()).limit(
            limit
        )
        async with transaction(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [_from_row(row) for row in rows]

    async def update(self, lexicon: Lexicon, *, expected_version: int) -> bool:
        statement = (
            update(lexicons)
            .where(
                lexicons.c.lexicon_id == lexicon.lexicon_id,
                lexicons.c.tenant == lexicon.tenant,
                lexicons.c.version == expected_version,
            )
            .values(
                name=lexicon.name,
                language=lexicon.language,
                version=lexicon.version,
                entries=_entries_to_json(lexicon.entries),
                update_time=lexicon.update_time,
            )
        )
        async with transaction(self._engine) as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def delete(self, lexicon_id: uuid.UUID, tenant: str) -> bool:
        statement = delete(lexicons).where(
            lexicons.c.lexicon_id == lexicon_id, lexicons.c.tenant == tenant
        )
        async with transaction(self._engine) as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1
