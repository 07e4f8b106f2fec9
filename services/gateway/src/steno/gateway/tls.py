"""The gateway's TLS: server credentials from the PEM files its settings name."""

from __future__ import annotations

from pathlib import Path

import grpc

from steno.common.errors import CannotStart
from steno.gateway.settings import TlsSettings


class TlsFilesUnreadable(CannotStart):
    """A certificate, key or CA file the settings name cannot be read."""


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials | None:
    """None when TLS is off; with a client CA, a client must present a certificate it
    signed (mTLS)."""
    if tls.cert_file is None or tls.key_file is None:
        return None
    chain = [
        (_read(tls.key_file, "STENO_TLS_KEY_FILE"), _read(tls.cert_file, "STENO_TLS_CERT_FILE"))
    ]
    if tls.client_ca_file is None:
        return grpc.ssl_server_credentials(chain)
    client_ca = _read(tls.client_ca_file, "STENO_TLS_CLIENT_CA_FILE")
    return grpc.ssl_server_credentials(chain, root_certificates=client_ca, require_client_auth=True)


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsFilesUnreadable(f"{setting}: cannot read {path}: {exc.strerror}") from None
