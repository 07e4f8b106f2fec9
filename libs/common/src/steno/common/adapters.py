"""Builds the adapter for each port from settings: real services when configured, the
embedded defaults when not."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from steno.common.broker import JobQueue
from steno.common.db import create_engine
from steno.common.events import JobEvents
from steno.common.settings import Settings
from steno.common.storage import ObjectStore


def open_database(settings: Settings) -> AsyncEngine:
    return create_engine(settings.database_url_or_default)


def open_object_store(settings: Settings) -> ObjectStore:
    if settings.s3_endpoint is None:
        from steno.common.storage.filesystem import FilesystemStore

        return FilesystemStore(settings.objects_dir)
    from steno.common.storage.s3 import S3Store

    return S3Store(
        settings.s3_endpoint,
        access_key=settings.s3_access_key.get_secret_value(),
        secret_key=settings.s3_secret_key.get_secret_value(),
        bucket=settings.s3_bucket,
        secure=settings.s3_secure,
        region=settings.s3_region,
        max_uploads=settings.max_concurrent_uploads,
    )


def open_job_queue(settings: Settings) -> JobQueue:
    if settings.amqp_url is None:
        from steno.common.broker.memory import InProcessJobQueue

        return InProcessJobQueue(delivery_limit=settings.amqp_delivery_limit)
    from steno.common.broker.amqp import AmqpJobQueue

    return AmqpJobQueue(
        settings.amqp_url.get_secret_value(),
        settings.amqp_queue,
        prefetch=settings.amqp_prefetch,
        delivery_limit=settings.amqp_delivery_limit,
    )


def open_job_events(settings: Settings) -> JobEvents:
    """Through the broker when there is one, so watchers on any gateway see every change;
    else within the process, which then holds both the gateway and the transcriber."""
    if settings.amqp_url is None:
        from steno.common.events.memory import InProcessJobEvents

        return InProcessJobEvents()
    from steno.common.events.amqp import AmqpJobEvents

    return AmqpJobEvents(settings.amqp_url.get_secret_value(), settings.amqp_events_exchange)


def describe(settings: Settings) -> dict[str, str]:
    """Which adapter each port gets, for the start-up log line; credentials left out."""
    database = make_url(settings.database_url_or_default).render_as_string(hide_password=True)
    if settings.amqp_url is None:
        broker = "in-process queue"
    else:
        amqp = urlsplit(settings.amqp_url.get_secret_value())
        broker = (
            f"amqp://{amqp.hostname}:{amqp.port or 5672}{amqp.path} queue {settings.amqp_queue}"
        )
    if settings.s3_endpoint is None:
        store = f"directory {settings.objects_dir.resolve()}"
    else:
        store = f"s3 {settings.s3_endpoint} bucket {settings.s3_bucket}"
    return {"database": database, "broker": broker, "object_store": store}
