"""``python -m steno.transcriber``: the worker, configured from ``STENO_*``."""

import asyncio

from steno.common.adapters import require_broker
from steno.common.logs import configure_logging
from steno.common.settings import Settings
from steno.transcriber.service import run


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    require_broker(settings, "transcriber")
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
