"""Where webhooks may go: never to an address the operator has not allowed (SSRF).

A webhook URL comes from a client, and the request is made from inside the operator's
network, so by default every address that is not publicly routable is refused: loopback,
private (RFC 1918, fc00::/7), shared (100.64/10), link-local (169.254/16, where cloud
metadata answers, and fe80::/10), unspecified, reserved and multicast, and the cloud
metadata hostnames. ``STENO_WEBHOOK_ALLOW`` lists the exceptions.

The check runs twice. At upload, on the URL alone: its shape, and the address if it is a
literal one. At send time, on every address the host name resolves to, since a name can
point anywhere (and point somewhere else a second later): the request then goes to the
address that was checked, never to a fresh lookup (see :mod:`.delivery`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Names that reach a cloud instance's metadata service from inside it.
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
MAX_URL_LENGTH = 2048


class WebhookRefused(Exception):
    """A webhook URL or address Steno will not call; the message says why, for a person."""


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A checked webhook URL, taken apart for the request that is made to it."""

    url: str
    scheme: str
    host: str
    port: int

    @property
    def literal_address(self) -> IPAddress | None:
        return _literal(self.host)


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """The operator's exceptions: networks whose addresses are allowed, and host names
    (with a port, or any) allowed whatever they resolve to."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[tuple[str, int | None]] = frozenset()

    @classmethod
    def parse(cls, allow: str) -> AddressPolicy:
        """From ``STENO_WEBHOOK_ALLOW``: comma-separated CIDRs and host[:port]."""
        networks: list[IPNetwork] = []
        hosts: set[tuple[str, int | None]] = set()
        for item in filter(None, (part.strip() for part in allow.split(","))):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
                continue
            except ValueError:
                pass
            host, port = _host_and_port(item)
            hosts.add((host, port))
        return cls(tuple(networks), frozenset(hosts))

    def check_url(self, url: str) -> WebhookTarget:
        """What can be told from the URL itself; raises WebhookRefused."""
        target = parse_url(url)
        if not self._host_allowed(target):
            if target.host in METADATA_HOSTS:
                raise WebhookRefused(f"{target.host} is a cloud metadata service")
            address = target.literal_address
            if address is not None:
                self._check_address(address)
        return target

    def check_addresses(self, target: WebhookTarget, addresses: Iterable[IPAddress]) -> None:
        """Every address the target's host resolved to must be allowed, or none is used:
        raises WebhookRefused naming the first that is not."""
        if self._host_allowed(target):
            return
        for address in addresses:
            try:
                self._check_address(address)
            except WebhookRefused as refused:
                raise WebhookRefused(f"{target.host} resolves to {refused}") from None

    def _host_allowed(self, target: WebhookTarget) -> bool:
        return bool({(target.host, target.port), (target.host, None)} & self.hosts)

    def _check_address(self, address: IPAddress) -> None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.networks):
            return
        if address.is_multicast or not address.is_global:
            raise WebhookRefused(
                f"{address}, {_kind(address)} address that webhooks may not reach "
                "(the operator can allow it with STENO_WEBHOOK_ALLOW)"
            )


def parse_url(url: str) -> WebhookTarget:
    """An absolute http(s) URL with a host, or WebhookRefused saying what is wrong."""
    if len(url) > MAX_URL_LENGTH:
        raise WebhookRefused(f"a webhook URL is at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookRefused(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookRefused("a webhook URL must start with http:// or https://")
    if not parts.hostname:
        raise WebhookRefused("a webhook URL must name a host")
    if parts.username is not None or parts.password is not None:
        raise WebhookRefused("a webhook URL must not carry credentials")
    default = 443 if parts.scheme == "https" else 80
    return WebhookTarget(url, parts.scheme, parts.hostname.lower(), port or default)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _host_and_port(item: str) -> tuple[str, int | None]:
    """``host``, ``host:port`` or ``[v6]:port`` from the allow-list."""
    parts = urlsplit(f"//{item}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"STENO_WEBHOOK_ALLOW: {item!r}: {exc}") from None
    if not parts.hostname or parts.path:
        raise ValueError(f"STENO_WEBHOOK_ALLOW: {item!r} is neither a CIDR nor host[:port]")
    return parts.hostname.lower(), port


def _kind(address: IPAddress) -> str:
    # Most specific first: Python counts loopback, link-local and unspecified as private too.
    for kind in ("loopback", "link-local", "unspecified", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind.replace('-', '_')}"):
            return f"a {kind}"
    return "a non-public"
