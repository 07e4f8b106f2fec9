"""API keys: who a caller is. A key names its tenant and role; Steno keeps only its hash.

A key looks like ``stn_<id>_<secret>``: the recognisable ``stn_`` prefix lets secret
scanners find a leaked one, ``stn_<id>`` is its public id (what lists and logs show), and
the secret carries 256 random bits. Such a key needs no slow password hash: nobody can guess
it, so a SHA-256 of it is as good as the key is strong.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from steno.common.paging import PageCursor

KEY_PREFIX = "stn_"
_KEY = re.compile(r"stn_(?P<id>[0-9a-f]{32})_[A-Za-z0-9_-]{43}")


class Role(enum.StrEnum):
    USER = "user"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as stored: everything but the key itself."""

    id: uuid.UUID
    tenant: str
    name: str
    role: Role
    key_hash: str
    create_time: datetime
    last_use_time: datetime | None = None
    revoke_time: datetime | None = None

    @property
    def key_id(self) -> str:
        """The public id, also the start of the key."""
        return key_id_of(self.id)

    def revoked(self, now: datetime) -> ApiKey:
        return replace(self, revoke_time=now)


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just made: its record, and the key itself, to be shown once and forgotten."""

    record: ApiKey
    key: str


def new_api_key(tenant: str, name: str, role: Role, *, now: datetime) -> NewApiKey:
    id = uuid.uuid4()
    key = f"{key_id_of(id)}_{secrets.token_urlsafe(32)}"
    record = ApiKey(id, tenant, name, role, hash_key(key), create_time=now)
    return NewApiKey(record, key)


def key_id_of(id: uuid.UUID) -> str:
    return f"{KEY_PREFIX}{id.hex}"


def parse_key_id(key_id: str) -> uuid.UUID | None:
    """The id in a public key id (``stn_<32 hex>``), or None if it is not one."""
    hex_id = key_id.removeprefix(KEY_PREFIX)
    if hex_id == key_id or len(hex_id) != 32:
        return None
    try:
        return uuid.UUID(hex=hex_id)
    except ValueError:
        return None


def id_in_key(key: str) -> uuid.UUID | None:
    """The id a well-formed Steno key carries, or None if ``key`` is not shaped like one."""
    match = _KEY.fullmatch(key)
    return uuid.UUID(hex=match["id"]) if match else None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(record: ApiKey, key: str) -> bool:
    return secrets.compare_digest(record.key_hash, hash_key(key))


async def find_key(keys: ApiKeyRepository, key: str) -> ApiKey | None:
    """The stored record of ``key`` (revoked or not), or None if Steno never issued it."""
    id = id_in_key(key)
    record = await keys.get(id) if id is not None else None
    return record if record is not None and key_matches(record, key) else None


class ApiKeyRepository(Protocol):
    """Durable storage of API keys."""

    async def add(self, key: ApiKey) -> None: ...

    async def get(self, id: uuid.UUID) -> ApiKey | None: ...

    async def list_keys(
        self, tenant: str | None, *, limit: int, after: PageCursor | None
    ) -> list[ApiKey]:
        """The tenant's keys (every tenant's for None), newest first."""
        ...

    async def revoke(self, id: uuid.UUID, *, now: datetime) -> ApiKey | None:
        """Revokes the key (once: a revoked key keeps its first revoke time); the key as
        stored afterwards, or None if there is none."""
        ...

    async def touch(self, id: uuid.UUID, *, now: datetime, unless_since: datetime) -> None:
        """Records a use at ``now``, unless one was recorded after ``unless_since``."""
        ...

    async def any_active(self) -> bool:
        """Whether any key is not revoked."""
        ...
