"""Events are signed by the Standard Webhooks scheme, with a secret per tenant that the
reference library takes as it is."""

from __future__ import annotations

import json
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from steno.common.jobs import JobError
from steno.common.webhooks.events import event_body, event_id
from steno.common.webhooks.signing import signed_headers, tenant_secret
from tests.fakes import T0, make_job


def test_a_signed_event_verifies_with_the_tenants_secret_only() -> None:
    body = b'{"type":"job.completed"}'
    secret = tenant_secret("master", "acme")
    headers = signed_headers(secret, "evt_1", int(time.time()), body)
    assert Webhook(secret).verify(body, headers) == {"type": "job.completed"}
    with pytest.raises(WebhookVerificationError):
        Webhook(tenant_secret("master", "globex")).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)


def test_tenant_secrets_are_stable_distinct_and_follow_the_master() -> None:
    secret = tenant_secret("master", "acme")
    assert secret.startswith("whsec_")
    assert secret == tenant_secret("master", "acme")
    assert secret != tenant_secret("master", "acme2")
    assert secret != tenant_secret("rotated master", "acme")


def test_the_event_says_which_job_ended_how_with_the_same_id_every_time() -> None:
    job = make_job()
    job.start(T0)
    job.fail(JobError("INVALID_ARGUMENT", "the file has no audio stream"), T0)
    event = json.loads(event_body(job))
    assert event == {
        "type": "job.failed",
        "timestamp": "2024-05-01T12:00:00Z",
        "data": {
            "job_id": str(job.job_id),
            "state": "FAILED",
            "error": {"code": "INVALID_ARGUMENT", "message": "the file has no audio stream"},
            "links": {
                "job": f"steno.v1.TranscriptionService/GetJob?job_id={job.job_id}",
                "transcript": None,
            },
        },
    }
    assert event_id(job) == event_id(job) != event_id(make_job(state=job.state))
