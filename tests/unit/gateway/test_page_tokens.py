"""ListJobs page tokens: opaque to clients, exact for the server, rejected when garbled."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from steno.common.paging import PageCursor
from steno.gateway.page_tokens import InvalidPageToken, decode_page_token, encode_page_token
from tests.fakes import T0, make_job


def _token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "create_time",
    [
        datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
        datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_token_round_trips_to_the_last_jobs_position(create_time: datetime) -> None:
    job = make_job(create_time=create_time)

    cursor = decode_page_token(
        encode_page_token(PageCursor(job.create_time, job.job_id), "jobs"), "jobs"
    )

    assert cursor == PageCursor(create_time=create_time, id=job.job_id)
    assert cursor is not None and cursor.create_time.utcoffset() == create_time.utcoffset()


def test_token_is_url_safe_and_unpadded() -> None:
    token = encode_page_token(PageCursor(T0, uuid.uuid4()), "jobs")
    assert "=" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_empty_token_means_first_page() -> None:
    assert decode_page_token("", "jobs") is None


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("!!!not base64!!!", id="not-base64"),
        pytest.param("é", id="non-ascii"),
        pytest.param(base64.urlsafe_b64encode(b"{not json").decode(), id="bad-json"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(), id="not-utf8"),
        pytest.param(_token({"id": str(uuid.uuid4())}), id="missing-t"),
        pytest.param(_token({"t": "2024-05-01T12:00:00+00:00"}), id="missing-id"),
        pytest.param(_token([1, 2]), id="json-list"),
        pytest.param(_token(5), id="json-number"),
        pytest.param(_token({"t": "yesterday", "id": str(uuid.uuid4())}), id="bad-time"),
        pytest.param(_token({"t": 5, "id": str(uuid.uuid4())}), id="time-not-string"),
        pytest.param(_token({"t": "2024-05-01T12:00:00+00:00", "id": "nope"}), id="bad-uuid"),
        pytest.param(_token({"t": "2024-05-01T12:00:00+00:00", "id": None}), id="null-uuid"),
        pytest.param(_token({"t": "2024-05-01T12:00:00+00:00", "id": 5}), id="number-uuid"),
        pytest.param(_token({"t": "2024-05-01T12:00:00+00:00", "id": [1]}), id="list-uuid"),
        pytest.param(
            _token({"t": "2024-05-01T12:00:00", "id": str(uuid.uuid4())}), id="naive-time"
        ),
        pytest.param(_token({"t": "2024-05-01", "id": str(uuid.uuid4())}), id="date-only"),
    ],
)
def test_garbled_tokens_are_rejected(token: str) -> None:
    with pytest.raises(InvalidPageToken):
        decode_page_token(token, "jobs")


def test_a_token_from_another_listing_is_refused() -> None:
    token = encode_page_token(PageCursor(T0, uuid.uuid4()), "lexicons")
    with pytest.raises(InvalidPageToken):
        decode_page_token(token, "jobs")


def test_invalid_page_token_is_a_value_error() -> None:
    """Callers that map ValueError to INVALID_ARGUMENT also catch it."""
    assert issubclass(InvalidPageToken, ValueError)
