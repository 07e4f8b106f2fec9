"""Server reflection answers under v1 and v1alpha, so both current and older clients (and
grpcurl, which needs no proto files then) can discover every service."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.descriptor import Descriptor

from steno.common.grpc_server import GrpcServer
from steno.common.reflection import V1_SERVICE_NAME, v1_file
from steno.gateway.service import SERVICE_NAMES

V1_METHOD = f"/{V1_SERVICE_NAME}/ServerReflectionInfo"
LISTED = {
    *SERVICE_NAMES,
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}


@pytest.fixture
async def address() -> AsyncIterator[str]:
    """A server that lists the gateway's services (none of them added: reflection only
    needs their names and their descriptors, which importing the gateway loads)."""
    server = GrpcServer(SERVICE_NAMES, [])
    port = await server.start("127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


def v1_message(name: str) -> Any:
    descriptor: Descriptor = v1_file().message_types_by_name[name]
    return message_factory.GetMessageClass(descriptor)


def ask_v1(address: str, **question: Any) -> Any:
    """One request to reflection v1, as a v1 client (built from v1's own descriptor) sends it."""
    request_type = v1_message("ServerReflectionRequest")
    response_type = v1_message("ServerReflectionResponse")
    with grpc.insecure_channel(address) as channel:
        info = channel.stream_stream(
            V1_METHOD,
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
        )
        [answer] = info(iter([request_type(**question)]), timeout=10)
    return answer


async def test_a_v1_client_lists_every_service(address: str) -> None:
    answer = await asyncio.to_thread(ask_v1, address, list_services="")
    assert {s.name for s in answer.list_services_response.service} == LISTED


async def test_a_v1_client_gets_the_file_that_defines_a_service(address: str) -> None:
    answer = await asyncio.to_thread(
        ask_v1, address, file_containing_symbol="steno.v1.TranscriptionService"
    )
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in answer.file_descriptor_response.file_descriptor_proto
    ]
    assert "steno/v1/transcription_service.proto" in {f.name for f in files}


def grpcurl_run(grpcurl: str, *args: str) -> str:
    done = subprocess.run(
        [grpcurl, "-plaintext", *args], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_grpcurl_lists_and_describes_both_versions(address: str, grpcurl: str) -> None:
    listed = await asyncio.to_thread(grpcurl_run, grpcurl, address, "list")
    assert set(listed.split()) == LISTED
    described = await asyncio.to_thread(grpcurl_run, grpcurl, address, "describe", V1_SERVICE_NAME)
    assert "rpc ServerReflectionInfo ( stream .grpc.reflection.v1.ServerReflectionRequest )" in (
        described
    )


async def test_grpcurl_calls_reflection_v1_itself(address: str, grpcurl: str) -> None:
    """grpcurl learns v1's messages from the server, then speaks v1 to it."""
    answer = await asyncio.to_thread(
        grpcurl_run,
        grpcurl,
        "-d",
        json.dumps({"list_services": ""}),
        address,
        f"{V1_SERVICE_NAME}/ServerReflectionInfo",
    )
    services = json.loads(answer)["list_services_response"]["service"]
    assert {s["name"] for s in services} == LISTED
