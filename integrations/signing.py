"""HMAC-SHA256 signatures over ``<timestamp>.<raw body>``, as the ERP webhook uses.

The same scheme signs our outbound calls (ERP, generic webhooks), so one
verifier on the other side covers both directions.
"""
from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def signature_matches(secret: str, timestamp: str, body: bytes, given: str) -> bool:
    """Constant-time comparison, so response timing leaks nothing about the secret."""
    return hmac.compare_digest(signature(secret, timestamp, body).encode(), given.strip().encode())


def signed_headers(secret: str | None, timestamp: int, body: bytes) -> dict[str, str]:
    if not secret:
        return {"X-BPM-Timestamp": str(timestamp)}
    return {"X-BPM-Timestamp": str(timestamp), "X-BPM-Signature": signature(secret, str(timestamp), body)}
