"""``python -m steno.janitor``: one retention sweep, a JSON summary on stdout, then exit.

Exits 0 when every expired object was deleted and non-zero otherwise, so a Kubernetes
CronJob shows failed runs.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime

from steno.common.adapters import open_database, open_object_store
from steno.common.db import SqlJobRepository
from steno.common.logs import configure_logging
from steno.common.settings import Settings
from steno.janitor.sweep import SweepSummary, sweep_expired_audio


async def run_once(settings: Settings) -> SweepSummary:
    database = open_database(settings)
    try:
        return await sweep_expired_audio(
            SqlJobRepository(database),
            open_object_store(settings),
            now=datetime.now(UTC),
            batch_size=settings.cleanup_batch_size,
        )
    finally:
        await database.dispose()


def main() -> int:
    settings = Settings()
    configure_logging(settings.log_level)
    summary = asyncio.run(run_once(settings))
    print(json.dumps(summary.as_dict()))
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
