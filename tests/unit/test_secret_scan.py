"""The run's log scan (tests/secret_scan.py) finds what it looks for, and the start-up line
Steno logs about its settings holds none of it."""

from __future__ import annotations

import pytest

from steno.cli.dev import DevSettings
from steno.common.adapters import describe
from tests.secret_scan import SecretScan

KEY_ID = "stn_" + "a1" * 16


@pytest.mark.parametrize(
    ("line", "finding"),
    [
        (f"authorization: Bearer {KEY_ID}_{'x' * 43}", "an API key"),
        ("calling with sk-live-abcdef123", "an OpenAI key"),
        ("connecting to postgresql+asyncpg://steno:pw@db/steno", "a URL with a password"),
        ("amqp://guest:guest@127.0.0.1:5672/", "a URL with a password"),
        ("s3 said no to hunter2-secret", "a secret of the test setup"),
    ],
)
def test_the_scan_finds_a_secret(line: str, finding: str) -> None:
    scan = SecretScan(known={"hunter2-secret"})
    scan.check(line, "here")
    assert [f.split(": ", 1)[1].split(" (")[0] for f in scan.findings] == [finding]


def test_the_scan_lets_key_ids_and_plain_urls_through() -> None:
    scan = SecretScan(known={"hunter2-secret"})
    scan.check(f"API key {KEY_ID} was revoked; amqp://rabbit:5672/ queue q", "here")
    assert scan.findings == []


def test_the_settings_start_up_line_holds_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STENO_DATABASE_URL", "postgresql+asyncpg://steno:db-pass@db/steno")
    monkeypatch.setenv("STENO_AMQP_URL", "amqp://steno:amqp-pass@rabbit:5672/")
    monkeypatch.setenv("STENO_S3_ENDPOINT", "minio:9000")
    monkeypatch.setenv("STENO_S3_SECRET_KEY", "hunter2-secret")
    scan = SecretScan(known={"db-pass", "amqp-pass", "hunter2-secret"})
    scan.check(str(describe(DevSettings())), "start-up line")
    assert scan.findings == []
