"""What every long-running Steno process does the same way: start up and wait to be stopped."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TextIO, TypeVar

from steno.common.adapters import describe
from steno.common.errors import CannotStart, DependencyUnavailable
from steno.common.logs import configure_logging
from steno.common.settings import ProcessSettings, ServiceSettings
from steno.common.tracing import setup_tracing

log = logging.getLogger(__name__)

_Settings = TypeVar("_Settings", bound=ServiceSettings)


# mallopt's parameter number for the mmap threshold, and the glibc default we pin it at.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 128 * 1024


def keep_large_buffers_off_the_heap() -> None:
    """Pins glibc's mmap threshold at its default.

    glibc raises the threshold each time a large mmapped buffer is freed, after which
    multi-MiB upload chunks and S3 parts are carved from the heap, which fragments and does
    not shrink: a long upload then ratchets the process's memory up. Pinned, every large
    buffer is its own mapping and goes back to the system when freed. No-op off glibc.

    Only for a process that streams uploads: every allocation past the threshold then costs
    a mapping and its page faults, and the local engine's many large temporaries made
    transcription 35 % slower with it (``python -m bench --only pipeline``).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def run_service(
    service: str,
    settings_type: type[_Settings],
    serve: Callable[[_Settings], Coroutine[Any, Any, None]],
    *,
    streams_uploads: bool = False,
) -> None:
    """The whole of a service's ``__main__``: its settings from the environment, logs,
    tracing if ``OTEL_*`` asks for it, then ``serve`` until it returns. A service that
    cannot start says why in one line and exits. One that ``streams_uploads`` keeps their
    large buffers off the heap."""
    if streams_uploads:
        keep_large_buffers_off_the_heap()
    settings = settings_type()
    start_telemetry(service, settings)
    log.info(f"steno.{service} starting", extra=describe(settings))
    if settings.broker.url is None:
        # The in-process queue cannot join separate processes.
        raise SystemExit(
            f"steno.{service} needs a broker: set STENO_AMQP_URL "
            "(e.g. amqp://guest:guest@localhost:5672/), or run everything in one process "
            "with `steno dev`."
        )
    run_until_stopped(service, serve(settings))


def start_telemetry(
    service: str, settings: ProcessSettings, *, console: TextIO = sys.stdout
) -> None:
    """Logs to stderr as ``settings`` say, and traces as ``steno-{service}`` if the
    ``OTEL_*`` variables ask for it (the console exporter's spans on ``console``). An
    ``OTEL_TRACES_EXPORTER`` Steno does not have ends the process, saying so."""
    configure_logging(settings.log_level, settings.log_format)
    with exit_if_it_cannot_run(service):
        setup_tracing(f"steno-{service}", console=console)


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (not on Windows), else asyncio's own.

    Every service spends most of its time in the event loop's callbacks and socket I/O (the
    gRPC server's, asyncpg's, aio-pika's): uvloop serves 20-25 % more GetJob calls a second
    than asyncio's loop (``python -m bench --only status``)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_until_stopped(service: str, main: Coroutine[Any, Any, None]) -> None:
    """Runs ``main`` on :func:`event_loop`, under :func:`exit_if_it_cannot_run`."""
    with exit_if_it_cannot_run(service), asyncio.Runner(loop_factory=event_loop) as runner:
        runner.run(main)


@contextlib.contextmanager
def exit_if_it_cannot_run(service: str) -> Iterator[None]:
    """A missing dependency, or a setting the service cannot start with, raised in the
    block ends the process with one line saying so (and a non-zero status) instead of a
    traceback."""
    try:
        yield
    except (DependencyUnavailable, CannotStart) as exc:
        raise SystemExit(f"steno.{service} cannot run: {exc}") from exc


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


async def until_shutdown(*workers: Coroutine[Any, Any, None]) -> None:
    """Runs ``workers`` until SIGTERM, then cancels them and waits for them to stop. A worker
    that ends first ends the others too, its error raised: a process whose consumer died must
    not go on looking alive."""
    tasks = [asyncio.create_task(worker) for worker in workers]
    shutdown = asyncio.create_task(wait_for_shutdown(), name="shutdown")
    try:
        await asyncio.wait({*tasks, shutdown}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (*tasks, shutdown):
            task.cancel()
        ended = await asyncio.gather(*tasks, shutdown, return_exceptions=True)
    for outcome in ended:
        if isinstance(outcome, Exception):
            raise outcome
