"""The adapter behind each port, from settings: real services when configured, the embedded
defaults when not, and one lifecycle that opens them and closes them again.

A service opens what it uses with :func:`open_adapters` (or :func:`open_storage` and
:func:`open_queue` apart), in one ``async with``: they are closed in reverse order when the
block ends, however it ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from steno.common.broker import JobQueue
from steno.common.clock import Clock, utc_now
from steno.common.db import (
    SqlApiKeyRepository,
    SqlJobRepository,
    SqlLexiconRepository,
    SqlPartialUploadRepository,
    SqlQuotaRepository,
    create_engine,
)
from steno.common.events import JobEvents
from steno.common.settings import ServiceSettings
from steno.common.storage import ObjectStore

# Threads the S3 store gives uploads when a service names no number of its own.
DEFAULT_MAX_UPLOADS = 64


@dataclass(frozen=True)
class Storage:
    """The database and the object store, and the repositories over the database."""

    database: AsyncEngine
    store: ObjectStore
    clock: Clock = field(default=utc_now, kw_only=True)

    def jobs(self) -> SqlJobRepository:
        return SqlJobRepository(self.database, clock=self.clock)

    def lexicons(self) -> SqlLexiconRepository:
        return SqlLexiconRepository(self.database)

    def partial_uploads(self) -> SqlPartialUploadRepository:
        return SqlPartialUploadRepository(self.database)

    def api_keys(self) -> SqlApiKeyRepository:
        return SqlApiKeyRepository(self.database)

    def quotas(self) -> SqlQuotaRepository:
        return SqlQuotaRepository(self.database)


@dataclass(frozen=True)
class Adapters(Storage):
    """Everything a long-running service talks to: storage, the job queue, job events, and
    the queue of webhook events (steno.common.webhooks.delivery)."""

    queue: JobQueue
    events: JobEvents
    webhooks: JobQueue


@contextlib.asynccontextmanager
async def open_storage(
    settings: ServiceSettings, *, max_uploads: int = DEFAULT_MAX_UPLOADS
) -> AsyncIterator[Storage]:
    async with contextlib.AsyncExitStack() as stack:
        database = open_database(settings)
        stack.push_async_callback(database.dispose)
        store = open_object_store(settings, max_uploads=max_uploads)
        await store.ensure_ready()
        yield Storage(database, store)


@contextlib.asynccontextmanager
async def open_queue(
    settings: ServiceSettings, queue_name: str | None = None
) -> AsyncIterator[JobQueue]:
    """The job queue, or another queue of the broker's named ``queue_name``."""
    queue = open_job_queue(settings, queue_name)
    try:
        await queue.connect()
        yield queue
    finally:
        await queue.close()


@contextlib.asynccontextmanager
async def open_adapters(
    settings: ServiceSettings, *, max_uploads: int = DEFAULT_MAX_UPLOADS
) -> AsyncIterator[Adapters]:
    async with contextlib.AsyncExitStack() as stack:
        storage = await stack.enter_async_context(open_storage(settings, max_uploads=max_uploads))
        queue = await stack.enter_async_context(open_queue(settings))
        webhooks_queue = settings.broker.webhooks_queue
        webhooks = await stack.enter_async_context(open_queue(settings, webhooks_queue))
        events = open_job_events(settings)
        stack.push_async_callback(events.close)
        await events.connect()
        yield Adapters(
            storage.database, storage.store, queue=queue, events=events, webhooks=webhooks
        )


def open_database(settings: ServiceSettings) -> AsyncEngine:
    return create_engine(settings.database_url)


def open_object_store(
    settings: ServiceSettings, *, max_uploads: int = DEFAULT_MAX_UPLOADS
) -> ObjectStore:
    store = settings.store
    if store.endpoint is None:
        from steno.common.storage.filesystem import FilesystemStore

        return FilesystemStore(settings.objects_dir, disk=settings.objects_disk)
    from steno.common.storage.s3 import S3Store

    return S3Store(
        store.endpoint,
        access_key=store.access_key.get_secret_value(),
        secret_key=store.secret_key.get_secret_value(),
        bucket=store.bucket,
        secure=store.secure,
        region=store.region,
        max_uploads=max_uploads,
    )


def open_job_queue(settings: ServiceSettings, queue_name: str | None = None) -> JobQueue:
    broker = settings.broker
    name = queue_name or broker.queue
    if broker.url is None:
        from steno.common.broker.memory import InProcessJobQueue

        return InProcessJobQueue(name=name, delivery_limit=broker.delivery_limit)
    from steno.common.broker.amqp import AmqpJobQueue

    return AmqpJobQueue(
        broker.url.get_secret_value(),
        name,
        prefetch=broker.prefetch,
        delivery_limit=broker.delivery_limit,
    )


def open_job_events(settings: ServiceSettings) -> JobEvents:
    """Through the broker when there is one, so watchers on any gateway see every change;
    else within the process, which then holds both the gateway and the transcriber."""
    broker = settings.broker
    if broker.url is None:
        from steno.common.events.memory import InProcessJobEvents

        return InProcessJobEvents()
    from steno.common.events.amqp import AmqpJobEvents

    return AmqpJobEvents(broker.url.get_secret_value(), broker.events_exchange)


def describe(settings: ServiceSettings) -> dict[str, str]:
    """Which adapter each port gets, for the start-up log line; credentials left out."""
    database = make_url(settings.database_url).render_as_string(hide_password=True)
    broker = settings.broker
    if broker.url is None:
        queue = "in-process queue"
    else:
        amqp = urlsplit(broker.url.get_secret_value())
        queue = f"amqp://{amqp.hostname}:{amqp.port or 5672}{amqp.path} queue {broker.queue}"
    if settings.store.endpoint is None:
        store = f"directory {settings.objects_dir.resolve()}"
    else:
        store = f"s3 {settings.store.endpoint} bucket {settings.store.bucket}"
    return {"database": database, "broker": queue, "object_store": store}
