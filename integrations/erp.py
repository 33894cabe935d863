"""The ERP: what BPMN service tasks named ``erp.<operation>`` call.

``request_invoice`` posts the contract and acceptance data to
``<base>/invoice-requests``, signed like the ERP's own webhook
(``X-BPM-Timestamp``, ``X-BPM-Signature: sha256=HMAC(secret, "<ts>.<body>")``)
and carrying an ``Idempotency-Key`` that stays the same across retries, so the
ERP can answer a repeated request with the invoice request it already made.
The ERP answers 2xx with a JSON object (e.g. ``{"request_id": "..."}``) and
later calls ``POST /api/v1/messages`` with ``invoice_issued``.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from integrations.base import CallResult
from integrations.http import post_json
from integrations.signing import signed_headers

OPERATIONS = {"request_invoice": "/invoice-requests"}


class ErpAdapter:
    system = "erp"

    def __init__(self, base_url: str, secret: str | None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.timeout = timeout

    def call(self, operation: str, params: Mapping[str, Any], *, idempotency_key: str,
             now: datetime) -> CallResult:
        path = OPERATIONS.get(operation)
        if path is None:
            return CallResult(ok=False, endpoint=f"erp.{operation}", status="unknown_operation", duration_ms=0.0,
                              request=dict(params), error=f"the ERP adapter has no operation {operation!r} "
                                                          f"(known: {', '.join(sorted(OPERATIONS))})")
        body = json.dumps(dict(params), separators=(",", ":"), sort_keys=True, default=str).encode()
        headers = {**signed_headers(self.secret, int(now.timestamp()), body), "Idempotency-Key": idempotency_key}
        result = post_json(self.base_url + path, dict(params), headers=headers, timeout=self.timeout, body=body)
        if result.ok and not isinstance(result.response, dict):
            return CallResult(ok=False, endpoint=result.endpoint, status=result.status,
                              duration_ms=result.duration_ms, request=result.request, response=result.response,
                              error="the ERP answered without a JSON object")
        return result
