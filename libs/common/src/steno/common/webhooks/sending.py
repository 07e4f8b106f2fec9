"""One webhook request, to the address that was checked.

The URL's host is resolved here, every address it resolves to is checked against the
:class:`AddressPolicy`, and the request connects to the first of them by address: the name
is not looked up again between the check and the connection, so a name that changes its
answer (DNS rebinding) cannot slip a private address past the check. The request still
names the host in its ``Host`` header and, over TLS, in SNI, where the certificate is
checked against it too. Redirects are not followed: their target was never checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx

from steno.common.webhooks.addresses import AddressPolicy, IPAddress, WebhookRefused

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: dict[IPAddress, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        found[ipaddress.ip_address(str(sockaddr[0]).split("%")[0])] = None
    return list(found)


@dataclass(frozen=True, slots=True)
class Answer:
    """How an attempt went: the HTTP status (0 for none) and, unless it was 2xx, what went
    wrong. A ``final`` failure is not retried: no later attempt can go differently."""

    status_code: int
    error: str = ""
    final: bool = False

    @property
    def delivered(self) -> bool:
        return not self.error


class WebhookSender:
    """POSTs events to checked addresses only."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        timeout: float,
        resolver: Resolver = resolve,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._policy = policy
        self._timeout = timeout
        self._resolver = resolver
        self._client = httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, transport=transport, trust_env=False
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
        try:
            target = self._policy.check_url(url)
            literal = target.literal_address
            addresses = [literal] if literal else await self._resolver(target.host, target.port)
            self._policy.check_addresses(target, addresses)
        except WebhookRefused as refused:
            return Answer(0, f"refused: {refused}", final=True)
        except OSError as exc:
            return Answer(0, f"could not resolve {url}: {exc}")
        pinned = httpx.URL(url).copy_with(host=str(addresses[0]))
        request = self._client.build_request(
            "POST",
            pinned,
            headers={**headers, "host": httpx.URL(url).netloc.decode()},
            content=body,
            extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
        )
        try:
            response = await self._client.send(request)
        except httpx.TimeoutException:
            return Answer(0, f"no answer within {self._timeout:g} s")
        except httpx.HTTPError as exc:
            return Answer(0, f"could not reach the receiver: {exc or type(exc).__name__}")
        if response.is_success:
            return Answer(response.status_code)
        return Answer(response.status_code, f"the receiver answered {response.status_code}")
