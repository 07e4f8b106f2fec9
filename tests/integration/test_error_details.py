"""What a program reads off refusals the other API tests do not make: ErrorInfo's reason
and facts, and for one that waiting lifts, RetryInfo."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from steno.cli.dev import DevSettings
from steno.gateway.rpc_errors import SOON
from steno.v1 import admin_service_pb2 as admin
from steno.v1 import admin_service_pb2_grpc, lexicon_pb2_grpc
from steno.v1 import lexicon_pb2 as lex
from steno.v1 import transcription_service_pb2 as pb
from tests.integration.conftest import Gateway
from tests.integration.test_upload_api import (
    committed,
    metadata_message,
    upload,
    wait_until,
    zeros_wav,
)
from tests.rpc_details import facts, retry_delay

MIB = 1024 * 1024


async def test_an_update_from_a_stale_version_names_the_lexicon(gateway: Gateway) -> None:
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        lexicons = lexicon_pb2_grpc.LexiconServiceStub(channel)
        created = await lexicons.CreateLexicon(
            lex.CreateLexiconRequest(lexicon=lex.Lexicon(name="ops"))
        )
        stale = lex.Lexicon(lexicon_id=created.lexicon.lexicon_id, name="renamed", version=7)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await lexicons.UpdateLexicon(lex.UpdateLexiconRequest(lexicon=stale))
    assert caught.value.code() is grpc.StatusCode.ABORTED
    assert facts(caught.value) == ("LEXICON_CHANGED", {"lexicon_id": created.lexicon.lexicon_id})


async def test_revoking_a_key_nobody_has_names_it(gateway: Gateway) -> None:
    missing = f"stn_{uuid.uuid4().hex}"
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await admin_service_pb2_grpc.AdminServiceStub(channel).RevokeApiKey(
                admin.RevokeApiKeyRequest(key_id=missing)
            )
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert facts(caught.value) == ("API_KEY_NOT_FOUND", {"key_id": missing})


class TestBusyGateway:
    @pytest.fixture
    def settings(self, settings: DevSettings) -> DevSettings:
        uploads = settings.uploads.model_copy(update={"max_concurrent_uploads": 1})
        return settings.model_copy(update={"uploads": uploads})

    async def test_an_upload_past_the_gateways_slots_says_when_to_try_again(
        self, gateway: Gateway
    ) -> None:
        hold = asyncio.Event()

        async def part_then_silence() -> AsyncIterator[pb.UploadAudioRequest]:
            yield metadata_message(request_id="holding")
            for message in zeros_wav(9 * MIB):
                yield message
            await hold.wait()

        holding = gateway.stub.UploadAudio(part_then_silence())

        async def slot_taken() -> bool:
            return await committed(gateway, "holding") > 0

        await wait_until(slot_taken, "the first upload to store a part")
        try:
            with pytest.raises(grpc.RpcError) as caught:
                await upload(gateway, [metadata_message(), *zeros_wav(64 * 1024)])
        finally:
            holding.cancel()
            hold.set()
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert facts(caught.value) == ("UPLOADS_BUSY", {"limit": "1"})
        assert retry_delay(caught.value) == SOON
