"""SMS, fax and voicemail through an HTTP provider (httpx), with retries and backoff.

The provider API is a POST of JSON ``{channel, to, body, language, reference}`` to
``<url>/messages`` with the header ``Idempotency-Key``; a 2xx answer with ``{"id": …}``
means accepted. Connection errors, 429 and 5xx are retried here with exponential backoff
(a short, in-attempt retry); after that the attempt fails and the notification consumer
schedules a later attempt. Other 4xx answers are permanent failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from infra.settings import Settings
from infra.smtp import DeliveryError


@dataclass
class GatewaySender:
    url: str
    token: str | None = None
    retries: int = 3
    backoff: float = 0.5
    timeout: float = 10.0
    sleep: Callable[[float], None] = field(default=time.sleep)
    transport: httpx.BaseTransport | None = None

    @classmethod
    def from_settings(cls, st: Settings) -> GatewaySender | None:
        """The configured gateway; None when there is none."""
        if not st.sms_gateway_url:
            return None
        return cls(st.sms_gateway_url, st.sms_gateway_token, st.sms_gateway_retries, st.sms_gateway_backoff_seconds)

    def send(self, *, channel: str, to: str, body: str, language: str, key: str, reference: str | None = None) -> str:
        headers = {"Idempotency-Key": key}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        payload = {"channel": channel, "to": to, "body": body, "language": language, "reference": reference}
        last = "no attempt made"
        with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
            for attempt in range(self.retries + 1):
                if attempt:
                    self.sleep(self.backoff * (2 ** (attempt - 1)))
                try:
                    resp = client.post(self.url.rstrip("/") + "/messages", json=payload, headers=headers)
                except httpx.HTTPError as exc:
                    last = f"gateway unreachable: {exc}"
                    continue
                if resp.status_code < 300:
                    try:
                        return str(resp.json().get("id") or key)
                    except ValueError:
                        return key
                if resp.status_code == 429 or resp.status_code >= 500:
                    last = f"gateway answered {resp.status_code}"
                    continue
                raise DeliveryError(f"gateway refused the message: {resp.status_code} {resp.text[:300]}", permanent=True)
        raise DeliveryError(f"{last} (after {self.retries + 1} tries)")
