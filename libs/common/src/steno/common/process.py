"""What every long-running Steno process does the same way: start up and wait to be stopped."""

from __future__ import annotations

import asyncio
import signal


async def wait_for_shutdown() -> None:
    """Returns on the first SIGTERM or SIGINT (Kubernetes stops pods with SIGTERM)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
