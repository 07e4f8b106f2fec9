"""Who may call what: every RPC of every service against every kind of caller, on a gateway
with authentication on, over the real Postgres, RabbitMQ and S3.

The matrix is built from the service descriptors, so an RPC added without a request here
fails the test instead of going unchecked.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from steno.cli.dev import DevSettings
from steno.common.adapters import Adapters, open_adapters
from steno.common.api_keys import Role, id_in_key, new_api_key
from steno.common.jobs import JobState
from steno.common.lexicons import LexiconEntry
from steno.gateway.service import build_gateway
from steno.gateway.settings import AccessSettings
from steno.v1 import admin_service_pb2, job_pb2, lexicon_pb2, transcription_service_pb2
from steno.v1 import admin_service_pb2 as admin
from steno.v1 import lexicon_pb2 as lex
from steno.v1 import transcription_service_pb2 as ts
from tests.fakes import make_job, make_lexicon
from tests.integration.test_reflection import ask_v1
from tests.rpc_details import reason_of

SAMPLE = Path(__file__).parents[2] / "samples" / "hello.ogg"
SERVICES = [
    transcription_service_pb2.DESCRIPTOR.services_by_name["TranscriptionService"],
    lexicon_pb2.DESCRIPTOR.services_by_name["LexiconService"],
    admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"],
]
OWNER, OTHER, ADMINS = "acme", "globex", "ops"
OK = grpc.StatusCode.OK


class Identity(enum.Enum):
    NO_KEY = "no key"
    UNKNOWN_KEY = "unknown key"
    REVOKED_KEY = "revoked key"
    OTHER_TENANT = "other tenant's key"
    OWN_KEY = "own key"
    ADMIN_KEY = "admin key"


@dataclass
class Resources:
    """What one cell's request acts on: the owner's, made afresh for the cell."""

    completed_job: str
    queued_job: str
    request_id: str
    lexicon: str
    revocable_key: str


@dataclass
class AuthGateway:
    address: str
    adapters: Adapters
    keys: dict[Identity, str]

    async def resources(self) -> Resources:
        jobs, now = self.adapters.jobs(), datetime.now(UTC)
        completed = make_job(tenant=OWNER, create_time=now, request_id=f"r-{uuid.uuid4().hex}")
        completed.start(now)
        completed.state = JobState.COMPLETED
        completed.complete_time = now
        completed.processed_text = completed.original_text = "good morning"
        queued = make_job(tenant=OWNER, create_time=now)
        for job in (completed, queued):
            await jobs.add(job)
        lexicon = make_lexicon(LexiconEntry("Kubernetes", ("cooper netties",)), tenant=OWNER)
        await self.adapters.lexicons().add(lexicon)
        throwaway = new_api_key(OWNER, "to revoke", Role.USER, now=now)
        await self.adapters.api_keys().add(throwaway.record)
        return Resources(
            str(completed.job_id),
            str(queued.job_id),
            completed.request_id,
            str(lexicon.lexicon_id),
            throwaway.record.key_id,
        )


def _upload() -> Iterator[ts.UploadAudioRequest]:
    yield ts.UploadAudioRequest(metadata=ts.UploadMetadata(filename="hello.ogg"))
    yield ts.UploadAudioRequest(chunk=SAMPLE.read_bytes())


# One request per RPC, acting on the owner's resources.
REQUESTS: dict[str, Callable[[Resources], Any]] = {
    "steno.v1.TranscriptionService/UploadAudio": lambda r: _upload(),
    "steno.v1.TranscriptionService/GetUploadStatus": lambda r: ts.GetUploadStatusRequest(
        request_id=r.request_id
    ),
    "steno.v1.TranscriptionService/GetJob": lambda r: ts.GetJobRequest(job_id=r.completed_job),
    "steno.v1.TranscriptionService/ListJobs": lambda r: ts.ListJobsRequest(),
    "steno.v1.TranscriptionService/GetTranscript": lambda r: ts.GetTranscriptRequest(
        job_id=r.completed_job
    ),
    "steno.v1.TranscriptionService/WatchJob": lambda r: ts.WatchJobRequest(job_id=r.completed_job),
    "steno.v1.TranscriptionService/CancelJob": lambda r: ts.CancelJobRequest(job_id=r.queued_job),
    "steno.v1.TranscriptionService/DeleteJob": lambda r: ts.DeleteJobRequest(
        job_id=r.completed_job
    ),
    "steno.v1.LexiconService/CreateLexicon": lambda r: lex.CreateLexiconRequest(
        lexicon=lex.Lexicon(name="new", entries=[lex.LexiconEntry(phrase="Steno")])
    ),
    "steno.v1.LexiconService/GetLexicon": lambda r: lex.GetLexiconRequest(lexicon_id=r.lexicon),
    "steno.v1.LexiconService/ListLexicons": lambda r: lex.ListLexiconsRequest(),
    "steno.v1.LexiconService/UpdateLexicon": lambda r: lex.UpdateLexiconRequest(
        lexicon=lex.Lexicon(lexicon_id=r.lexicon, name="renamed"),
        update_mask={"paths": ["name"]},
    ),
    "steno.v1.LexiconService/DeleteLexicon": lambda r: lex.DeleteLexiconRequest(
        lexicon_id=r.lexicon
    ),
    "steno.v1.AdminService/GetStorageStats": lambda r: admin.GetStorageStatsRequest(),
    "steno.v1.AdminService/RunCleanup": lambda r: admin.RunCleanupRequest(dry_run=True),
    "steno.v1.AdminService/CreateApiKey": lambda r: admin.CreateApiKeyRequest(
        tenant=OTHER, name="made in the matrix"
    ),
    "steno.v1.AdminService/ListApiKeys": lambda r: admin.ListApiKeysRequest(),
    "steno.v1.AdminService/RevokeApiKey": lambda r: admin.RevokeApiKeyRequest(
        key_id=r.revocable_key
    ),
    "steno.v1.AdminService/GetTenantQuota": lambda r: admin.GetTenantQuotaRequest(tenant=OTHER),
    "steno.v1.AdminService/SetTenantQuota": lambda r: admin.SetTenantQuotaRequest(
        tenant=OTHER, overrides=admin.QuotaLimits(concurrent_jobs=100)
    ),
}
# The RPCs that name one of the owner's resources: anyone else is told it does not exist.
OWNED = (
    {
        f"steno.v1.TranscriptionService/{name}"
        for name in ("GetUploadStatus", "GetJob", "GetTranscript", "WatchJob", "CancelJob")
    }
    | {"steno.v1.TranscriptionService/DeleteJob"}
    | {
        f"steno.v1.LexiconService/{name}"
        for name in ("GetLexicon", "UpdateLexicon", "DeleteLexicon")
    }
)


# The ErrorInfo reason of each refused key.
KEY_REFUSALS = {
    Identity.NO_KEY: "API_KEY_MISSING",
    Identity.UNKNOWN_KEY: "API_KEY_INVALID",
    Identity.REVOKED_KEY: "API_KEY_REVOKED",
}


def expected(method: str, identity: Identity) -> tuple[grpc.StatusCode, str]:
    """The code and ErrorInfo reason a call of ``method`` by ``identity`` gets."""
    if identity in KEY_REFUSALS:
        return grpc.StatusCode.UNAUTHENTICATED, KEY_REFUSALS[identity]
    if method.startswith("steno.v1.AdminService/"):
        admin_key = identity is Identity.ADMIN_KEY
        return (OK, "") if admin_key else (grpc.StatusCode.PERMISSION_DENIED, "ADMIN_KEY_REQUIRED")
    if method in OWNED and identity is not Identity.OWN_KEY:
        # An admin key too: it administers Steno, it does not read other tenants' data.
        return grpc.StatusCode.NOT_FOUND, _not_found(method)
    return OK, ""


def _not_found(method: str) -> str:
    if method.startswith("steno.v1.LexiconService/"):
        return "LEXICON_NOT_FOUND"
    if method.endswith("/GetUploadStatus"):
        return "UPLOAD_NOT_FOUND"
    return "JOB_NOT_FOUND"


def all_methods() -> list[MethodDescriptor]:
    return [method for service in SERVICES for method in service.methods]


def call(channel: grpc.Channel, method: MethodDescriptor, request: Any, key: str | None) -> Any:
    """Calls ``method`` generically, as its descriptor says; returns the response (a list
    of them for a server stream)."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    request_type = message_factory.GetMessageClass(method.input_type)
    response_type = message_factory.GetMessageClass(method.output_type)
    metadata = (("authorization", f"Bearer {key}"),) if key else ()
    kinds = {
        (False, False): channel.unary_unary,
        (True, False): channel.stream_unary,
        (False, True): channel.unary_stream,
    }
    callable_ = kinds[(method.client_streaming, method.server_streaming)](
        path,
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
    )
    response = callable_(request, metadata=metadata, timeout=30)
    return list(response) if method.server_streaming else response


def outcome(
    channel: grpc.Channel, method: MethodDescriptor, request: Any, key: str | None
) -> tuple[grpc.StatusCode, str, str]:
    """The call's code, message and ErrorInfo reason ("" for OK)."""
    try:
        call(channel, method, request, key)
    except grpc.RpcError as error:
        return error.code(), error.details() or "", reason_of(error)
    return OK, "", ""


@pytest.fixture
async def auth_gateway(settings: DevSettings) -> AsyncIterator[AuthGateway]:
    settings = settings.model_copy(update={"access": AccessSettings(auth="enabled")})
    async with open_adapters(settings) as adapters:
        keys: dict[Identity, str] = {}
        now = datetime.now(UTC)
        for identity, tenant, role in [
            (Identity.OWN_KEY, OWNER, Role.USER),
            (Identity.OTHER_TENANT, OTHER, Role.USER),
            (Identity.ADMIN_KEY, ADMINS, Role.ADMIN),
            (Identity.REVOKED_KEY, OWNER, Role.USER),
        ]:
            created = new_api_key(tenant, identity.value, role, now=now)
            await adapters.api_keys().add(created.record)
            keys[identity] = created.key
        stranger = new_api_key(OWNER, "never stored", Role.USER, now=now)
        record = await adapters.api_keys().get(_id_of(keys[Identity.REVOKED_KEY]))
        assert record is not None
        await adapters.api_keys().revoke(record.id, now=now)
        # Shaped like a key, unknown to the server.
        keys[Identity.UNKNOWN_KEY] = stranger.key
        service = build_gateway(settings, adapters)
        port = await service.start("127.0.0.1", 0)
        try:
            yield AuthGateway(f"127.0.0.1:{port}", adapters, keys)
        finally:
            await service.stop(0)


def _id_of(key: str) -> uuid.UUID:
    found = id_in_key(key)
    assert found is not None
    return found


async def test_every_rpc_answers_every_kind_of_caller_as_expected(
    auth_gateway: AuthGateway,
) -> None:
    methods = all_methods()
    names = {f"{m.containing_service.full_name}/{m.name}" for m in methods}
    assert names == set(REQUESTS), "every RPC needs a request in this matrix"
    mismatches = []
    with grpc.insecure_channel(auth_gateway.address) as channel:
        for method in methods:
            name = f"{method.containing_service.full_name}/{method.name}"
            for identity in Identity:
                resources = await auth_gateway.resources()
                request = REQUESTS[name](resources)
                key = auth_gateway.keys.get(identity)
                code, details, reason = await asyncio.to_thread(
                    outcome, channel, method, request, key
                )
                if (code, reason) != expected(name, identity):
                    mismatches.append(
                        f"{name} x {identity.value}: {code.name} {reason} ({details})"
                    )
    cells = len(methods) * len(Identity)
    print(f"isolation matrix: {len(methods)} RPCs x {len(Identity)} callers = {cells} cells")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize(
    ("identity", "says"),
    [
        (Identity.NO_KEY, "missing API key"),
        (Identity.UNKNOWN_KEY, "unknown API key"),
        (Identity.REVOKED_KEY, "was revoked"),
    ],
)
async def test_a_refused_key_is_told_why(
    auth_gateway: AuthGateway, identity: Identity, says: str
) -> None:
    method = SERVICES[0].methods_by_name["ListJobs"]
    with grpc.insecure_channel(auth_gateway.address) as channel:
        code, details, _ = await asyncio.to_thread(
            outcome, channel, method, ts.ListJobsRequest(), auth_gateway.keys.get(identity)
        )
    assert code is grpc.StatusCode.UNAUTHENTICATED
    assert says in details


async def test_a_user_key_on_the_admin_service_is_told_it_needs_an_admin_key(
    auth_gateway: AuthGateway,
) -> None:
    method = SERVICES[2].methods_by_name["ListApiKeys"]
    with grpc.insecure_channel(auth_gateway.address) as channel:
        code, details, _ = await asyncio.to_thread(
            outcome,
            channel,
            method,
            admin.ListApiKeysRequest(),
            auth_gateway.keys[Identity.OWN_KEY],
        )
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert "needs an admin key" in details


async def test_listings_show_only_the_callers_own(auth_gateway: AuthGateway) -> None:
    resources = await auth_gateway.resources()
    jobs_method = SERVICES[0].methods_by_name["ListJobs"]
    lexicons_method = SERVICES[1].methods_by_name["ListLexicons"]
    with grpc.insecure_channel(auth_gateway.address) as channel:

        def listed(identity: Identity) -> tuple[set[str], set[str]]:
            key = auth_gateway.keys[identity]
            jobs = call(channel, jobs_method, ts.ListJobsRequest(page_size=1000), key)
            lexicons = call(channel, lexicons_method, lex.ListLexiconsRequest(), key)
            return {j.job_id for j in jobs.jobs}, {x.lexicon_id for x in lexicons.lexicons}

        own_jobs, own_lexicons = await asyncio.to_thread(listed, Identity.OWN_KEY)
        other_jobs, other_lexicons = await asyncio.to_thread(listed, Identity.OTHER_TENANT)
    assert {resources.completed_job, resources.queued_job} <= own_jobs
    assert resources.lexicon in own_lexicons
    assert not own_jobs & other_jobs and not own_lexicons & other_lexicons


async def test_a_page_token_does_not_cross_tenants(auth_gateway: AuthGateway) -> None:
    await auth_gateway.resources()
    method = SERVICES[0].methods_by_name["ListJobs"]
    with grpc.insecure_channel(auth_gateway.address) as channel:
        first = await asyncio.to_thread(
            call,
            channel,
            method,
            ts.ListJobsRequest(page_size=1),
            auth_gateway.keys[Identity.OWN_KEY],
        )
        assert first.next_page_token
        code, details, _ = await asyncio.to_thread(
            outcome,
            channel,
            method,
            ts.ListJobsRequest(page_size=1, page_token=first.next_page_token),
            auth_gateway.keys[Identity.OTHER_TENANT],
        )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in details


async def test_an_upload_belongs_to_the_callers_tenant(auth_gateway: AuthGateway) -> None:
    method = SERVICES[0].methods_by_name["UploadAudio"]
    with grpc.insecure_channel(auth_gateway.address) as channel:
        response = await asyncio.to_thread(
            call, channel, method, _upload(), auth_gateway.keys[Identity.OTHER_TENANT]
        )
    stored = await auth_gateway.adapters.jobs().get(uuid.UUID(response.job.job_id))
    assert stored is not None and stored.tenant == OTHER
    assert response.job.state == job_pb2.JOB_STATE_QUEUED


async def test_health_and_reflection_need_no_key(auth_gateway: AuthGateway) -> None:
    def probe() -> tuple[int, list[str]]:
        with grpc.insecure_channel(auth_gateway.address) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            answers = reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
            names = [s.name for a in answers for s in a.list_services_response.service]
            return health.status, names

    status, names = await asyncio.to_thread(probe)
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert "steno.v1.AdminService" in names
    v1 = await asyncio.to_thread(ask_v1, auth_gateway.address, list_services="")
    assert "steno.v1.AdminService" in {s.name for s in v1.list_services_response.service}


async def test_a_key_records_its_last_use(auth_gateway: AuthGateway) -> None:
    method = SERVICES[0].methods_by_name["ListJobs"]
    key = auth_gateway.keys[Identity.OWN_KEY]
    with grpc.insecure_channel(auth_gateway.address) as channel:
        await asyncio.to_thread(call, channel, method, ts.ListJobsRequest(), key)
    record = await auth_gateway.adapters.api_keys().get(_id_of(key))
    assert record is not None and record.last_use_time is not None
