"""SQL implementation of :class:`steno.common.partial_uploads.PartialUploadRepository`.

Which stream has an upload is decided in the database: every write of a stream is one
statement conditional on the row still naming that stream, so two gateways continuing the
same upload cannot both think they have it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import Insert

from steno.common.db.schema import partial_uploads
from steno.common.db.transaction import execute, fetch_all, fetch_first
from steno.common.partial_uploads import PartialUpload, UploadRequest
from steno.common.storage import StoredPart

_KEY = ("tenant", "request_id")
# What a new start of the same request_id replaces: everything but the key.
_REPLACED = tuple(column.name for column in partial_uploads.columns if column.name not in _KEY)


def _parts_to_json(parts: Sequence[StoredPart]) -> list[list[Any]]:
    return [[part.number, part.size, part.etag] for part in parts]


# The fields of the upload and of its request stored as they are, each in the column of its
# name; the others are converted by _to_row and _from_row.
_PLAIN_UPLOAD = tuple(
    f.name for f in dataclasses.fields(PartialUpload) if f.name not in {"request", "parts"}
)
_PLAIN_REQUEST = tuple(
    f.name for f in dataclasses.fields(UploadRequest) if f.name not in {"audio_retention", "labels"}
)


def _to_row(upload: PartialUpload) -> dict[str, Any]:
    request = upload.request
    return {
        **{name: getattr(upload, name) for name in _PLAIN_UPLOAD},
        **{name: getattr(request, name) for name in _PLAIN_REQUEST},
        "labels": dict(request.labels),
        "audio_retention_seconds": int(request.audio_retention.total_seconds()),
        "parts": _parts_to_json(upload.parts),
    }


def _from_row(row: Row[Any]) -> PartialUpload:
    m = row._mapping
    request = UploadRequest(
        **{name: m[name] for name in _PLAIN_REQUEST},
        audio_retention=timedelta(seconds=m["audio_retention_seconds"]),
        labels=dict(m["labels"]),
    )
    return PartialUpload(
        **{name: m[name] for name in _PLAIN_UPLOAD},
        request=request,
        parts=[StoredPart(number, size, etag) for number, size, etag in m["parts"]],
    )


def _is_key(tenant: str, request_id: str) -> ColumnElement[bool]:
    return and_(partial_uploads.c.tenant == tenant, partial_uploads.c.request_id == request_id)


class SqlPartialUploadRepository:
    """Unfinished uploads in a SQL database; each method is its own short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, tenant: str, request_id: str) -> PartialUpload | None:
        query = select(partial_uploads).where(_is_key(tenant, request_id))
        row = await fetch_first(self._engine, query)
        return _from_row(row) if row else None

    async def save(self, upload: PartialUpload) -> None:
        await execute(self._engine, self._upsert(_to_row(upload)))

    def _upsert(self, row: dict[str, Any]) -> Insert:
        """One INSERT ... ON CONFLICT DO UPDATE (both backends have it): a delete and an
        insert would let two streams that start the same request_id at once both find no row
        on Postgres, and the later insert fail on the key instead of replacing."""
        dialect = self._engine.dialect.name
        if dialect == "postgresql":
            pg_insert = postgresql.insert(partial_uploads).values(row)
            return pg_insert.on_conflict_do_update(
                index_elements=list(_KEY),
                set_={name: pg_insert.excluded[name] for name in _REPLACED},
            )
        if dialect == "sqlite":
            sqlite_insert = sqlite.insert(partial_uploads).values(row)
            return sqlite_insert.on_conflict_do_update(
                index_elements=list(_KEY),
                set_={name: sqlite_insert.excluded[name] for name in _REPLACED},
            )
        raise NotImplementedError(f"partial uploads are not supported on {dialect}")

    async def take_over(self, upload: PartialUpload, *, stream: str, now: datetime) -> bool:
        statement = (
            update(partial_uploads)
            .where(
                _is_key(upload.tenant, upload.request_id),
                partial_uploads.c.stream == upload.stream,
                partial_uploads.c.next_part == upload.next_part,
            )
            .values(stream=stream, next_part=upload.next_part + 1, update_time=now)
        )
        return await execute(self._engine, statement) == 1

    async def record_parts(
        self, tenant: str, request_id: str, *, stream: str, parts: list[StoredPart], now: datetime
    ) -> bool:
        statement = (
            update(partial_uploads)
            .where(_is_key(tenant, request_id), partial_uploads.c.stream == stream)
            .values(
                parts=_parts_to_json(parts),
                update_time=now,
                **({"next_part": parts[-1].number + 1} if parts else {}),
            )
        )
        return await execute(self._engine, statement) == 1

    async def delete(self, tenant: str, request_id: str, *, stream: str | None = None) -> bool:
        statement = delete(partial_uploads).where(_is_key(tenant, request_id))
        if stream is not None:
            statement = statement.where(partial_uploads.c.stream == stream)
        return await execute(self._engine, statement) == 1

    async def list_stale(self, updated_before: datetime, *, limit: int) -> list[PartialUpload]:
        # The key breaks ties, so that every backend gives the same order.
        query: Select[Any] = (
            select(partial_uploads)
            .where(partial_uploads.c.update_time < updated_before)
            .order_by(
                partial_uploads.c.update_time,
                partial_uploads.c.tenant,
                partial_uploads.c.request_id,
            )
            .limit(limit)
        )
        return [_from_row(row) for row in await fetch_all(self._engine, query)]

    async def store_upload_ids(self) -> set[str]:
        rows = await fetch_all(self._engine, select(partial_uploads.c.store_upload_id))
        return {row.store_upload_id for row in rows}
