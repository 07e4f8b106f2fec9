"""``steno keys list --json`` and ``steno tenants get-quota --json`` on the embedded SQLite
database: proto JSON, as AdminService's ListApiKeys and GetTenantQuota answer."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from steno.cli import main


@pytest.fixture(autouse=True)
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A working directory of its own, with no STENO_* from the shell running the tests."""
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("STENO_")]:
        monkeypatch.delenv(name)


def steno(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 0
    return capsys.readouterr().out


def test_keys_list_json_is_a_key_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    steno(capsys, "keys", "create", "--tenant", "acme", "--name", "ci")
    steno(capsys, "keys", "create", "--tenant", "acme", "--name", "ops", "--admin")

    printed = steno(capsys, "keys", "list", "--json")

    keys = [json.loads(line) for line in printed.splitlines()]
    assert sorted((k["name"], k["tenant"], k["role"]) for k in keys) == [
        ("ci", "acme", "API_KEY_ROLE_USER"),
        ("ops", "acme", "API_KEY_ROLE_ADMIN"),
    ]
    for key in keys:
        assert set(key) == {"key_id", "tenant", "name", "role", "create_time"}
        assert re.fullmatch(r"stn_[0-9a-f]{32}", key["key_id"])
        assert key["create_time"].endswith("Z")


def test_tenants_quota_json_is_the_tenant_quota_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STENO_QUOTA_STORED_AUDIO_BYTES", "5000")

    changed = steno(capsys, "tenants", "set-quota", "acme", "--concurrent-jobs", "3", "--json")

    assert json.loads(changed) == {
        "tenant": "acme",
        "overrides": {"concurrent_jobs": "3"},
        "limits": {
            "stored_audio_bytes": "5000",
            "concurrent_jobs": "3",
            "audio_hours_per_day": 0.0,
        },
        "usage": {"stored_audio_bytes": "0", "concurrent_jobs": "0", "audio_hours_per_day": 0.0},
    }
    assert steno(capsys, "tenants", "get-quota", "acme", "--json") == changed
