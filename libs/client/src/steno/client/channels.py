"""How a client reaches the gateway: plaintext, TLS (optionally with a private CA) or mTLS
(with a client certificate), from arguments or the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from steno.client.retries import CHANNEL_OPTIONS

TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ClientTls:
    """TLS to the gateway. ``ca_file`` unset trusts the system's CAs; ``cert_file`` and
    ``key_file`` are the client's certificate for a gateway that requires one."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs its key, and a key its certificate")

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca_file),
            private_key=_read(self.key_file),
            certificate_chain=_read(self.cert_file),
        )


def client_tls(
    tls: bool = False,
    ca: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> ClientTls | None:
    """TLS if asked for (``tls``, or STENO_TLS=true) or implied by a CA or client
    certificate, given or in STENO_TLS_CA_FILE, STENO_TLS_CLIENT_CERT_FILE and
    STENO_TLS_CLIENT_KEY_FILE; None for plaintext."""
    ca = ca or environ.get("STENO_TLS_CA_FILE") or None
    cert = cert or environ.get("STENO_TLS_CLIENT_CERT_FILE") or None
    key = key or environ.get("STENO_TLS_CLIENT_KEY_FILE") or None
    wanted = tls or environ.get("STENO_TLS", "").lower() in TRUE
    if not (wanted or ca or cert or key):
        return None
    return ClientTls(*(Path(f) if f else None for f in (ca, cert, key)))


def open_channel(server: str, tls: ClientTls | None) -> grpc.Channel:
    """A channel to ``server`` that sends the idempotent calls again when the gateway is
    unavailable, after the delay it asks for (:mod:`steno.client.retries`)."""
    if tls is None:
        return grpc.insecure_channel(server, options=CHANNEL_OPTIONS)
    return grpc.secure_channel(server, tls.credentials(), options=CHANNEL_OPTIONS)


def _read(path: Path | None) -> bytes | None:
    return None if path is None else path.read_bytes()
