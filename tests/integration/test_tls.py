"""The gateway over TLS and mTLS, with certificates made in the test: the SDK and the CLI
get through with the right CA (and client certificate); plaintext, a client trusting
another CA, and a client without a certificate the gateway's CA signed are refused."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import grpc
import pydantic
import pytest
import trustme

from steno.cli.dev import DevSettings
from steno.client import StenoClient
from steno.client.channels import ClientTls
from steno.common.adapters import open_adapters
from steno.gateway.service import build_gateway
from steno.gateway.settings import TlsSettings
from steno.v1 import job_pb2
from tests.support import outer_env

SAMPLE = Path(__file__).parents[2] / "samples" / "hello.ogg"
TlsGateway = Callable[..., AbstractAsyncContextManager[str]]


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def pem(tmp_path: Path, name: str, blob: trustme.Blob) -> Path:
    path = tmp_path / name
    blob.write_to_path(str(path))
    return path


@pytest.fixture
def tls_gateway(settings: DevSettings, ca: trustme.CA, tmp_path: Path) -> TlsGateway:
    """Starts a gateway serving a certificate ``ca`` issued for 127.0.0.1; with
    ``client_ca``, it requires client certificates that CA signed."""
    server = ca.issue_cert("127.0.0.1", "localhost")

    @asynccontextmanager
    async def start(client_ca: trustme.CA | None = None) -> AsyncIterator[str]:
        tls = TlsSettings(
            cert_file=pem(tmp_path, "server.pem", server.cert_chain_pems[0]),
            key_file=pem(tmp_path, "server.key", server.private_key_pem),
            client_ca_file=client_ca and pem(tmp_path, "client-ca.pem", client_ca.cert_pem),
        )
        with_tls = settings.model_copy(update={"serving_tls": tls})
        async with open_adapters(with_tls) as adapters:
            service = build_gateway(with_tls, adapters)
            port = await service.start("127.0.0.1", 0)
            try:
                yield f"127.0.0.1:{port}"
            finally:
                await service.stop(0)

    return start


def client_cert(ca: trustme.CA, tmp_path: Path, name: str) -> ClientTls:
    """A ClientTls trusting ``ca`` (the gateway's, written beside) with a certificate
    ``ca`` issued to ``name``."""
    issued = ca.issue_cert(f"{name}@example.com")
    return ClientTls(
        ca_file=tmp_path / "ca.pem",
        cert_file=pem(tmp_path, f"{name}.pem", issued.cert_chain_pems[0]),
        key_file=pem(tmp_path, f"{name}.key", issued.private_key_pem),
    )


def refused(address: str, tls: ClientTls | None) -> grpc.StatusCode:
    with StenoClient(address, tls=tls) as client, pytest.raises(grpc.RpcError) as error:
        client.list_jobs()
    return error.value.code()  # type: ignore[no-any-return]


def upload_and_get(address: str, tls: ClientTls) -> job_pb2.Job:
    with StenoClient(address, tls=tls) as client:
        return client.get_job(client.upload(SAMPLE).job_id)


def listed(address: str, tls: ClientTls) -> list[job_pb2.Job]:
    with StenoClient(address, tls=tls) as client:
        return list(client.list_jobs().jobs)


def steno_jobs(address: str, *flags: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = outer_env()
    return subprocess.run(
        [sys.executable, "-m", "steno.cli", "jobs", "--server", address, *flags],
        env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


# The gateway runs on this test's event loop: blocking clients go to a thread.
async def test_tls_round_trip_and_refusals(
    tls_gateway: TlsGateway, ca: trustme.CA, tmp_path: Path
) -> None:
    trusted = ClientTls(ca_file=pem(tmp_path, "ca.pem", ca.cert_pem))
    stranger = ClientTls(ca_file=pem(tmp_path, "other-ca.pem", trustme.CA().cert_pem))
    async with tls_gateway() as address:
        job = await asyncio.to_thread(upload_and_get, address, trusted)
        assert job.size_bytes == SAMPLE.stat().st_size
        plaintext = await asyncio.to_thread(refused, address, None)
        assert plaintext is grpc.StatusCode.UNAVAILABLE
        assert await asyncio.to_thread(refused, address, stranger) is grpc.StatusCode.UNAVAILABLE

        ca_file = str(trusted.ca_file)
        by_flag = await asyncio.to_thread(steno_jobs, address, "--ca", ca_file)
        assert by_flag.returncode == 0, by_flag.stderr
        assert by_flag.stdout.split()[0] == job.job_id
        by_env = await asyncio.to_thread(steno_jobs, address, STENO_TLS_CA_FILE=ca_file)
        assert by_env.returncode == 0, by_env.stderr
        plain = await asyncio.to_thread(steno_jobs, address)
        assert plain.returncode == 1 and "UNAVAILABLE" in plain.stderr


async def test_mtls_needs_a_client_certificate_from_the_configured_ca(
    tls_gateway: TlsGateway, ca: trustme.CA, tmp_path: Path
) -> None:
    pem(tmp_path, "ca.pem", ca.cert_pem)
    clients_ca, rogue_ca = trustme.CA(), trustme.CA()
    async with tls_gateway(client_ca=clients_ca) as address:
        alice = client_cert(clients_ca, tmp_path, "alice")
        assert await asyncio.to_thread(listed, address, alice) == []
        no_cert = ClientTls(ca_file=tmp_path / "ca.pem")
        assert await asyncio.to_thread(refused, address, no_cert) is grpc.StatusCode.UNAVAILABLE
        rogue = client_cert(rogue_ca, tmp_path, "mallory")
        assert await asyncio.to_thread(refused, address, rogue) is grpc.StatusCode.UNAVAILABLE


def test_tls_settings_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match="STENO_TLS_CERT_FILE and STENO_TLS_KEY"):
        TlsSettings(cert_file=tmp_path / "server.pem")
    with pytest.raises(pydantic.ValidationError, match="CLIENT_CA_FILE needs"):
        TlsSettings(client_ca_file=tmp_path / "ca.pem")
    with pytest.raises(ValueError, match="needs its key"):
        ClientTls(cert_file=tmp_path / "client.pem")
