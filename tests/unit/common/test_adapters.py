"""Which adapter each port gets, and what the start-up log says about it."""

from __future__ import annotations

from pathlib import Path

from steno.common.adapters import describe, open_job_queue, open_object_store
from steno.common.broker.amqp import AmqpJobQueue
from steno.common.broker.memory import InProcessJobQueue
from steno.common.settings import BrokerSettings, DatabaseSettings, ServiceSettings, StoreSettings
from steno.common.storage.filesystem import FilesystemStore
from steno.common.storage.s3 import S3Store


def test_unset_urls_mean_the_embedded_adapters(tmp_path: Path) -> None:
    settings = ServiceSettings(data_dir=tmp_path)
    assert isinstance(open_object_store(settings), FilesystemStore)
    assert isinstance(open_job_queue(settings), InProcessJobQueue)
    assert describe(settings) == {
        "database": f"sqlite+aiosqlite:///{(tmp_path / 'steno.db').resolve()}",
        "broker": "in-process queue",
        "object_store": f"directory {(tmp_path / 'objects').resolve()}",
    }


def test_configured_services_are_described_without_their_secrets() -> None:
    settings = ServiceSettings(
        database=DatabaseSettings(
            url="postgresql+asyncpg://steno:db-secret@db.internal:5432/steno"
        ),
        broker=BrokerSettings(url="amqp://steno:mq-secret@mq.internal:5672/prod"),
        store=StoreSettings(
            endpoint="minio.internal:9000", access_key="AKIA", secret_key="s3-secret"
        ),
    )
    assert isinstance(open_object_store(settings), S3Store)
    assert isinstance(open_job_queue(settings), AmqpJobQueue)
    described = str(describe(settings))
    for secret in ("db-secret", "mq-secret", "s3-secret", "AKIA"):
        assert secret not in described
    assert "db.internal" in described and "mq.internal:5672/prod" in described
    assert "minio.internal:9000 bucket steno-audio" in described
