"""SQL implementation of :class:`steno.common.api_keys.ApiKeyRepository`."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row, exists, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine

from steno.common.api_keys import ApiKey, Role
from steno.common.db.schema import api_keys
from steno.common.db.transaction import execute, fetch_all, fetch_first, transaction
from steno.common.paging import PageCursor

_COLUMNS = tuple(f.name for f in dataclasses.fields(ApiKey))


def _from_row(row: Row[Any]) -> ApiKey:
    m = row._mapping
    return ApiKey(**{name: m[name] for name in _COLUMNS if name != "role"}, role=Role(m["role"]))


class SqlApiKeyRepository:
    """API keys in a SQL database; each method is its own short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, key: ApiKey) -> None:
        row = {name: getattr(key, name) for name in _COLUMNS}
        await execute(self._engine, insert(api_keys).values({**row, "role": key.role.value}))

    async def get(self, id: uuid.UUID) -> ApiKey | None:
        row = await fetch_first(self._engine, select(api_keys).where(api_keys.c.id == id))
        return _from_row(row) if row else None

    async def list_keys(
        self, tenant: str | None, *, limit: int, after: PageCursor | None
    ) -> list[ApiKey]:
        query = select(api_keys)
        if tenant is not None:
            query = query.where(api_keys.c.tenant == tenant)
        if after is not None:
            query = query.where(
                tuple_(api_keys.c.create_time, api_keys.c.id) < tuple_(after.create_time, after.id)
            )
        newest_first = (api_keys.c.create_time.desc(), api_keys.c.id.desc())
        rows = await fetch_all(self._engine, query.order_by(*newest_first).limit(limit))
        return [_from_row(row) for row in rows]

    async def revoke(self, id: uuid.UUID, *, now: datetime) -> ApiKey | None:
        async with transaction(self._engine) as conn:
            await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == id, api_keys.c.revoke_time.is_(None))
                .values(revoke_time=now)
            )
            row = (await conn.execute(select(api_keys).where(api_keys.c.id == id))).first()
        return _from_row(row) if row else None

    async def touch(self, id: uuid.UUID, *, now: datetime, unless_since: datetime) -> None:
        await execute(
            self._engine,
            update(api_keys)
            .where(
                api_keys.c.id == id,
                or_(api_keys.c.last_use_time.is_(None), api_keys.c.last_use_time < unless_since),
            )
            .values(last_use_time=now),
        )

    async def any_active(self) -> bool:
        query = select(exists().where(api_keys.c.revoke_time.is_(None)))
        row = await fetch_first(self._engine, query)
        return bool(row and row[0])
