"""The notification signature: `X-FHIR-Alerts-Signature: sha256=<hex>`, the HMAC-SHA256 of the
exact body bytes (empty for an empty notification) under the subscription's secret.

A receiver recomputes it over the raw body it received and compares in constant time; it drops
duplicates by `X-FHIR-Alerts-Delivery` (the same on every retry of one notification).
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-FHIR-Alerts-Signature"
DELIVERY_HEADER = "X-FHIR-Alerts-Delivery"
SUBSCRIPTION_HEADER = "X-FHIR-Alerts-Subscription"
_PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    return _PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith(_PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body), header.strip())
