"""A ``.env`` file in the working directory: the services' settings and the CLI's defaults
(server, API key, TLS) read it, and a variable set in the environment wins over it."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from steno.cli import build_parser, main
from steno.common.settings import ProcessSettings
from steno.v1 import transcription_service_pb2 as pb
from steno.v1 import transcription_service_pb2_grpc


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, and an environment without the variables tested here."""
    monkeypatch.chdir(tmp_path)
    tested = ["STENO_GRPC_PORT", "STENO_SERVER", "STENO_API_KEY", "STENO_TLS", "STENO_TLS_CA_FILE"]
    for name in tested:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_service_settings_come_from_the_env_file(workdir: Path) -> None:
    (workdir / ".env").write_text("STENO_GRPC_PORT=7001\n")

    assert ProcessSettings().grpc_port == 7001


def test_an_environment_variable_wins_over_the_env_file(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / ".env").write_text("STENO_GRPC_PORT=7001\n")
    monkeypatch.setenv("STENO_GRPC_PORT", "7002")

    assert ProcessSettings().grpc_port == 7002


def test_the_cli_server_comes_from_the_env_file_unless_set(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / ".env").write_text("STENO_SERVER=steno.example:443\n")
    assert build_parser().parse_args(["jobs"]).server == "steno.example:443"

    monkeypatch.setenv("STENO_SERVER", "127.0.0.1:50061")
    assert build_parser().parse_args(["jobs"]).server == "127.0.0.1:50061"


class Listing(transcription_service_pb2_grpc.TranscriptionServiceServicer):
    """Answers ListJobs with no jobs, noting the authorization each call came with."""

    def __init__(self) -> None:
        self.authorizations: list[str] = []

    def ListJobs(
        self, request: pb.ListJobsRequest, context: grpc.ServicerContext
    ) -> pb.ListJobsResponse:
        self.authorizations += [v for k, v in context.invocation_metadata() if k == "authorization"]
        return pb.ListJobsResponse()


@pytest.fixture
def listing() -> Iterator[tuple[str, Listing]]:
    servicer = Listing()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    transcription_service_pb2_grpc.add_TranscriptionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(0)


def test_the_cli_sends_the_env_files_api_key_unless_one_is_set(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, listing: tuple[str, Listing]
) -> None:
    address, servicer = listing
    (workdir / ".env").write_text(f"STENO_SERVER={address}\nSTENO_API_KEY=stn_from_the_file\n")

    assert main(["jobs"]) == 0
    monkeypatch.setenv("STENO_API_KEY", "stn_from_the_environment")
    assert main(["jobs"]) == 0

    assert servicer.authorizations == [
        "Bearer stn_from_the_file",
        "Bearer stn_from_the_environment",
    ]


def test_the_cli_takes_tls_from_the_env_file(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The CA file is read before any call: its absence shows the setting was taken.
    (workdir / ".env").write_text("STENO_TLS_CA_FILE=/nonexistent/ca.pem\n")

    assert main(["jobs", "--server", "127.0.0.1:1"]) == 1

    assert "/nonexistent/ca.pem" in capsys.readouterr().err
