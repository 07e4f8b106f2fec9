"""Settings: read once from STENO_* variables, blank means unset, frozen afterwards; nested
by concern, each service reading only its own, with the variable names flat."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from steno.cli.dev import DevSettings as Settings
from steno.common.settings import ServiceSettings
from steno.common.storage import MIN_PART_BYTES
from steno.gateway.settings import GatewaySettings
from steno.janitor.settings import JanitorSettings
from steno.transcriber.settings import TranscriberSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No STENO_* variable from the outer environment leaks into a test."""
    for name in list(os.environ):
        if name.startswith("STENO_"):
            monkeypatch.delenv(name)


def test_reads_steno_prefixed_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STENO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STENO_S3_BUCKET", "audio-prod")
    monkeypatch.setenv("STENO_AUDIO_RETENTION_HOURS", "1.5")
    monkeypatch.setenv("STENO_CLEANUP_BATCH_SIZE", "250")
    monkeypatch.setenv("STENO_S3_SECURE", "true")
    monkeypatch.setenv("STENO_MAX_CONCURRENT_UPLOADS", "3")
    monkeypatch.setenv("STENO_S3_SECRET_KEY", "hunter2")
    monkeypatch.setenv("STENO_UPLOAD_PART_BYTES", str(6 * 1024 * 1024))
    monkeypatch.setenv("S3_BUCKET", "unprefixed-is-ignored")

    settings = Settings()

    assert settings.data_dir == tmp_path
    assert settings.store.bucket == "audio-prod"
    assert settings.retention.audio_retention_hours == 1.5
    assert settings.cleanup.cleanup_batch_size == 250
    assert settings.store.secure is True
    assert settings.uploads.max_concurrent_uploads == 3
    assert settings.uploads.upload_part_bytes == 6 * 1024 * 1024
    assert settings.store.secret_key.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings)


def test_defaults_are_the_embedded_stack() -> None:
    settings = Settings()

    assert settings.database.url is None
    assert settings.broker.url is None
    assert settings.store.endpoint is None
    assert settings.data_dir == Path(".steno")
    assert settings.objects_dir == Path(".steno") / "objects"
    assert settings.engine_choice.engine == "local"
    assert settings.uploads.upload_part_bytes == 8 * 1024 * 1024


def test_blank_database_url_means_embedded_sqlite(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STENO_DATABASE_URL", "")
    monkeypatch.setenv("STENO_DATA_DIR", str(tmp_path / "data"))

    settings = Settings()

    assert settings.database.url is None
    assert settings.database_url == (
        f"sqlite+aiosqlite:///{(tmp_path / 'data' / 'steno.db').resolve()}"
    )


def test_relative_data_dir_gives_an_absolute_sqlite_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STENO_DATA_DIR", "relative/dir")

    url = Settings().database_url

    path = Path(url.removeprefix("sqlite+aiosqlite:///"))
    assert path.is_absolute()
    assert path == (Path("relative/dir") / "steno.db").resolve()


def test_configured_database_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+asyncpg://steno:pw@db:5432/steno"
    monkeypatch.setenv("STENO_DATABASE_URL", url)
    assert Settings().database_url == url


def test_every_secret_setting_prints_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "STENO_DATABASE_URL": "postgresql+asyncpg://steno:db-pass-1@db:5432/steno",
        "STENO_AMQP_URL": "amqp://steno:amqp-pass-2@rabbit:5672/",
        "STENO_S3_ACCESS_KEY": "s3-access-3",
        "STENO_S3_SECRET_KEY": "s3-secret-4",
        "STENO_API_KEYS": "acme:admin:stn_" + "0" * 32 + "_key-secret-5",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    printed = f"{settings!r} {settings} {settings.model_dump()}"
    for secret in ("db-pass-1", "amqp-pass-2", "s3-access-3", "s3-secret-4", "key-secret-5"):
        assert secret not in printed
    assert settings.database_url == secrets["STENO_DATABASE_URL"], "still usable"


@pytest.mark.parametrize("name", ["STENO_S3_ENDPOINT", "STENO_AMQP_URL"])
def test_blank_endpoints_are_unset(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "")
    settings = Settings()
    assert settings.store.endpoint is None
    assert settings.broker.url is None


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.store.bucket = "other"
    with pytest.raises(ValidationError):
        settings.data_dir = Path("elsewhere")
    assert settings.store.bucket == "steno-audio"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STENO_CLEANUP_BATCH_SIZE", "0"),
        ("STENO_CLEANUP_BATCH_SIZE", "1001"),
        ("STENO_UPLOAD_PART_BYTES", str(5 * 1024 * 1024 - 1)),
        ("STENO_ENGINE", "whisper.cpp"),
        ("STENO_GRPC_PORT", "70000"),
        ("STENO_AUDIO_RETENTION_HOURS", "-1"),
    ],
)
def test_out_of_range_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_the_smallest_upload_part_is_s3s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STENO_UPLOAD_PART_BYTES", str(MIN_PART_BYTES))
    assert Settings().uploads.upload_part_bytes == MIN_PART_BYTES == 5 * 1024 * 1024


def test_the_largest_upload_must_fit_in_s3s_part_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STENO_UPLOAD_PART_BYTES", str(MIN_PART_BYTES))
    monkeypatch.setenv("STENO_MAX_UPLOAD_BYTES", str(10_000 * MIN_PART_BYTES))
    assert Settings().uploads.max_upload_bytes == 10_000 * MIN_PART_BYTES

    monkeypatch.setenv("STENO_MAX_UPLOAD_BYTES", str(10_000 * MIN_PART_BYTES + 1))
    with pytest.raises(ValidationError, match="raise STENO_UPLOAD_PART_BYTES"):
        Settings()


def test_service_port_defaults_apply_only_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().grpc_port_or(50051) == 50051
    monkeypatch.setenv("STENO_GRPC_PORT", "0")
    monkeypatch.setenv("STENO_METRICS_PORT", "0")
    settings = Settings()
    assert settings.grpc_port_or(50051) == 0
    assert settings.metrics_port_or(9090) == 0


def test_an_engine_that_does_not_exist_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STENO_ENGINE", "nonesuch")
    with pytest.raises(ValidationError):
        Settings()


def test_a_transcriber_runs_the_default_engine_unless_told_which(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().engine_choice.served_engines == ["local"]
    monkeypatch.setenv("STENO_ENGINE", "openai")
    assert Settings().engine_choice.served_engines == ["openai"]
    monkeypatch.setenv("STENO_ENGINES", " local , openai ")
    assert Settings().engine_choice.served_engines == ["local", "openai"]


@pytest.mark.parametrize("engines", ["local,whisperx", ",", "gpt"])
def test_unknown_engines_are_refused_by_name(monkeypatch: pytest.MonkeyPatch, engines: str) -> None:
    monkeypatch.setenv("STENO_ENGINES", engines)
    with pytest.raises(ValidationError, match="engines must name some of: local, openai"):
        Settings()


def test_each_service_reads_only_its_own_concerns() -> None:
    gateway, transcriber = GatewaySettings.env_names(), TranscriberSettings.env_names()
    janitor, migrate = JanitorSettings.env_names(), ServiceSettings.env_names()

    shared = {"STENO_DATA_DIR", "STENO_DATABASE_URL", "STENO_AMQP_URL", "STENO_S3_ENDPOINT"}
    assert shared <= migrate <= gateway & transcriber & janitor
    assert "STENO_MAX_UPLOAD_BYTES" in gateway - transcriber - janitor
    assert "STENO_WHISPER_COMPUTE_TYPE" in transcriber - gateway - janitor
    # The gateway knows the local model only to refuse languages it cannot transcribe.
    assert "STENO_WHISPER_MODEL" in transcriber & gateway
    assert "STENO_CLEANUP_BATCH_SIZE" in janitor - gateway - transcriber
    assert "STENO_STALE_UPLOAD_HOURS" in gateway & janitor
    assert Settings.env_names() == gateway | transcriber | janitor


def test_nested_concerns_read_the_flat_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STENO_WHISPER_MODEL", "base")
    monkeypatch.setenv("STENO_OPENAI_TIMEOUT_SECONDS", "30")
    monkeypatch.setenv("STENO_AMQP_QUEUE", "jobs")
    monkeypatch.setenv("STENO_LEASE_SECONDS", "90")
    monkeypatch.setenv("STENO_ENGINES", "local,openai")

    settings = TranscriberSettings()

    assert settings.whisper.model == "base"
    assert settings.openai.timeout_seconds == 30
    assert settings.broker.queue == "jobs"
    assert settings.runs.lease_seconds == 90
    assert settings.engine_choice.served_engines == ["local", "openai"]
