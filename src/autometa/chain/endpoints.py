"""Several JSON-RPC endpoints for one chain, health-scored, for failover.

An operator with money on a chain lists two or three providers: one that goes down, throttles or
slows must not stop the worker. Each endpoint keeps a score (an exponentially weighted error rate
and latency). One that fails `failover_after` times in a row is skipped for `cooldown_s`
and tried again afterwards; one that answers 429 is skipped until its `Retry-After` ends. Requests stay on the
current endpoint while it is usable and not clearly worse than another: providers' mempools and
heads differ slightly, so hopping between them on every request would make reads (pending nonce
counts, the head) disagree for no gain.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import structlog

from autometa.chain.pacing import Pacer

log = structlog.get_logger("autometa.chain.endpoints")

ERROR_WEIGHT_S = 5.0  # an error rate of 1.0 weighs like 5 s of latency
SWITCH_MARGIN_S = 0.5  # another endpoint must score this much better to take over
ALPHA = 0.2  # weight of the newest sample in the moving averages


def public_url(url: str) -> str:
    """scheme://host[:port] of an RPC URL — what logs, errors and alerts may show. Providers put
    API keys in the path, the query or the user part, so none of those ever appears."""
    try:
        parts = urlsplit(url.strip())
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}"
    except ValueError:
        return "(unparsable URL)"


@dataclass
class Endpoint:
    url: str
    pacer: Pacer
    latency_s: float = 0.0
    error_rate: float = 0.0
    failures: int = 0  # in a row
    cooldown_until: float = -math.inf
    requests: int = 0
    errors: int = 0

    def available(self, now: float) -> bool:
        return now >= self.cooldown_until and now >= self.pacer.not_before

    @property
    def label(self) -> str:
        """The URL without anything secret, for logs and errors."""
        return public_url(self.url)

    @property
    def score(self) -> float:
        return self.latency_s + ERROR_WEIGHT_S * self.error_rate


@dataclass
class EndpointPool:
    """The endpoints of one chain and which one to ask next."""

    urls: list[str]
    failover_after: int = 2
    cooldown_s: float = 30.0
    max_pause_s: float = 5.0
    endpoints: list[Endpoint] = field(init=False)
    current: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("no RPC endpoint")
        self.endpoints = [Endpoint(url, Pacer(max_pause_s=self.max_pause_s)) for url in self.urls]

    @property
    def several(self) -> bool:
        return len(self.endpoints) > 1

    def pick(self, avoid: Endpoint | None = None) -> Endpoint:
        """The endpoint for the next request: the current one while usable and competitive, else
        the best usable one, else (all cooling down) the one that comes back first. `avoid` (the
        endpoint a retried request just failed on) is passed over while another is usable."""
        now = time.monotonic()
        usable = [i for i, e in enumerate(self.endpoints) if e.available(now)]
        if avoid is not None and len(usable) > 1:
            usable = [i for i in usable if self.endpoints[i] is not avoid] or usable
        if not usable:
            best = min(
                range(len(self.endpoints)),
                key=lambda i: max(self.endpoints[i].cooldown_until, self.endpoints[i].pacer.not_before),
            )
        else:
            best = min(usable, key=lambda i: (self.endpoints[i].score, i))
            here = self.endpoints[self.current]
            if self.current in usable and here.score <= self.endpoints[best].score + SWITCH_MARGIN_S:
                best = self.current
        if best != self.current:
            log.warning(
                "rpc.endpoint_switch", to=self.endpoints[best].label, away_from=self.endpoints[self.current].label
            )
            self.current = best
        return self.endpoints[best]

    def other_available(self, endpoint: Endpoint) -> bool:
        """Whether another endpoint can be asked right now (then a retry need not wait)."""
        now = time.monotonic()
        return any(e is not endpoint and e.available(now) for e in self.endpoints)

    def succeeded(self, endpoint: Endpoint, latency_s: float) -> None:
        endpoint.requests += 1
        endpoint.failures = 0
        first = endpoint.requests == 1
        endpoint.latency_s = latency_s if first else (1 - ALPHA) * endpoint.latency_s + ALPHA * latency_s
        endpoint.error_rate *= 1 - ALPHA

    def failed(self, endpoint: Endpoint, why: str, rate_limited: bool = False) -> None:
        endpoint.requests += 1
        endpoint.errors += 1
        endpoint.error_rate = (1 - ALPHA) * endpoint.error_rate + ALPHA
        if rate_limited:
            return  # its pacer holds it back until Retry-After ends: it is there, and busy
        endpoint.failures += 1
        if self.several and endpoint.failures >= self.failover_after:
            endpoint.cooldown_until = time.monotonic() + self.cooldown_s
            log.warning(
                "rpc.endpoint_cooldown",
                url=endpoint.label,
                error=why,
                failures=endpoint.failures,
                cooldown_s=self.cooldown_s,
            )

    def health(self) -> list[dict[str, object]]:
        """What each endpoint has shown so far (for logs and the doctor)."""
        now = time.monotonic()
        return [
            {
                "url": e.label,
                "available": e.available(now),
                "latency_ms": round(e.latency_s * 1000, 1),
                "error_rate": round(e.error_rate, 3),
                "requests": e.requests,
                "errors": e.errors,
            }
            for e in self.endpoints
        ]
