"""``steno tenants webhook-secret TENANT`` prints the secret the tenant's webhooks are signed
with, derived from STENO_WEBHOOK_SECRET; without it, webhooks are off and it says so."""

from __future__ import annotations

import pytest

from steno.cli import main
from steno.common.webhooks.signing import tenant_secret


def test_it_prints_the_tenants_derived_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STENO_WEBHOOK_SECRET", "master")
    assert main(["tenants", "webhook-secret", "acme"]) == 0
    assert capsys.readouterr().out == tenant_secret("master", "acme") + "\n"


def test_without_a_master_secret_it_says_webhooks_are_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STENO_WEBHOOK_SECRET", raising=False)
    assert main(["tenants", "webhook-secret", "acme"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "STENO_WEBHOOK_SECRET is not set" in captured.err
