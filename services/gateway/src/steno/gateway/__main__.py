"""``python -m steno.gateway``: the API server, configured from ``STENO_*``."""

import asyncio

from steno.common.adapters import require_broker
from steno.common.logs import configure_logging
from steno.common.settings import Settings
from steno.gateway.service import run


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    require_broker(settings, "gateway")
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
