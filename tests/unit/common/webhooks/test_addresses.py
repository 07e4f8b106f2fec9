"""Webhooks never reach an address the operator has not allowed: the URL is checked at
upload, every resolved address at send time."""

from __future__ import annotations

import ipaddress

import pytest

from steno.common.webhooks.addresses import AddressPolicy, WebhookRefused

DEFAULT = AddressPolicy()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://hooks.example.com/", "http:// or https://"),
        ("https:///path", "must name a host"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https://hooks.example.com:99999/", "not a valid URL"),
        ("http://127.0.0.1:8080/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://192.168.0.10/", "private"),
        ("http://[fd00::1]/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://metadata.google.internal/", "metadata"),
        ("https://" + "a" * 2050 + ".com/", "at most"),
    ],
)
def test_a_url_that_cannot_be_called_is_refused_at_upload(url: str, why: str) -> None:
    with pytest.raises(WebhookRefused, match=why):
        DEFAULT.check_url(url)


def test_a_public_name_passes_at_upload_and_is_taken_apart() -> None:
    target = DEFAULT.check_url("https://Hooks.Example.com/steno?x=1")
    assert (target.scheme, target.host, target.port) == ("https", "hooks.example.com", 443)
    assert DEFAULT.check_url("http://8.8.8.8:8080/").port == 8080


def test_every_resolved_address_must_be_allowed() -> None:
    target = DEFAULT.check_url("https://rebind.example.com/")
    DEFAULT.check_addresses(target, [ipaddress.ip_address("93.184.216.34")])
    with pytest.raises(WebhookRefused, match=r"rebind.example.com resolves to 10.0.0.5, a private"):
        DEFAULT.check_addresses(
            target, [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.5")]
        )


def test_the_allow_list_takes_cidrs_and_hosts_with_or_without_a_port() -> None:
    policy = AddressPolicy.parse("10.0.0.0/8, hooks.internal, 127.0.0.1:8080, [::1]:9000")
    policy.check_url("http://10.20.30.40/")
    policy.check_url("http://127.0.0.1:8080/")
    policy.check_url("http://[::1]:9000/")
    with pytest.raises(WebhookRefused, match="loopback"):
        policy.check_url("http://127.0.0.1:8081/")
    # An allowed name is allowed whatever it resolves to; another is checked.
    internal = policy.check_url("https://hooks.internal/")
    policy.check_addresses(internal, [ipaddress.ip_address("192.168.1.1")])
    other = policy.check_url("http://localhost:8080/")
    with pytest.raises(WebhookRefused, match=r"localhost resolves to 127\.0\.0\.1, a loopback"):
        policy.check_addresses(other, [ipaddress.ip_address("127.0.0.1")])


@pytest.mark.parametrize("item", ["host:notaport", "host/path", ":80"])
def test_a_bad_allow_list_entry_is_an_error(item: str) -> None:
    with pytest.raises(ValueError, match="STENO_WEBHOOK_ALLOW"):
        AddressPolicy.parse(item)
