"""What the operator commands (``steno keys``, ``steno tenants``) share: the configured
database (``STENO_DATABASE_URL``, or the embedded SQLite file, made on first use as
``steno dev`` does) and their arguments."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from steno.common import tenants
from steno.common.db import create_engine
from steno.common.db.migrate import upgrade
from steno.common.settings import ServiceSettings


def run_on_database(action: Callable[[AsyncEngine], Coroutine[Any, Any, int]]) -> int:
    """Runs ``action`` against the configured database; returns its exit status."""
    settings = ServiceSettings()
    if settings.database.url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(settings.database_url)
    return asyncio.run(_with_engine(settings, action))


async def _with_engine(
    settings: ServiceSettings, action: Callable[[AsyncEngine], Coroutine[Any, Any, int]]
) -> int:
    engine = create_engine(settings.database_url)
    try:
        return await action(engine)
    finally:
        await engine.dispose()


def tenant_argument(value: str) -> str:
    if not tenants.is_tenant_name(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a tenant name: {tenants.RULE}")
    return value
