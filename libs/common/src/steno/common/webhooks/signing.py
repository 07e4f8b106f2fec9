"""Standard Webhooks signatures (https://www.standardwebhooks.com), with a secret per tenant.

A tenant's secret is derived from the operator's master secret, ``STENO_WEBHOOK_SECRET``:
HMAC-SHA256(master, tenant). Nothing new is stored, every process that sends computes the
same secret, one tenant's secret tells nothing of another's or of the master, and the
operator gives a tenant its secret with ``steno tenants webhook-secret TENANT``. Changing
the master secret rotates every tenant's at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SECRET_PREFIX = "whsec_"
# Keeps these keys apart from anything else the master secret might ever be used for.
_DERIVATION_LABEL = b"steno webhook signing secret\x00"


def tenant_secret(master: str, tenant: str) -> str:
    """The tenant's signing secret, as Standard Webhooks libraries take it: ``whsec_`` and
    the base64 of the key."""
    key = hmac.digest(master.encode(), _DERIVATION_LABEL + tenant.encode(), hashlib.sha256)
    return SECRET_PREFIX + base64.b64encode(key).decode()


def signature(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    """``v1,`` and the base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}`` under the secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{event_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.digest(key, signed, hashlib.sha256)).decode()


def signed_headers(secret: str, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of a signed request: the receiver checks the signature, and that the
    timestamp is recent (replays), and may drop an id it has seen (retries)."""
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, event_id, timestamp, body),
        "content-type": "application/json",
    }
