"""Per-client token buckets for the relayer endpoints: in-process by default, in Redis when
configured so every API replica shares the budget. A client that runs out gets 429 with
Retry-After instead of making the relayer spend gas or RPC calls."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from redis.asyncio import Redis


class RateLimiter(Protocol):
    async def take(self, client: str) -> float:
        """0 if the request may go ahead, else seconds until a token is free."""
        ...


class MemoryRateLimiter:
    """`per_minute` tokens per client, refilled continuously; bounded memory (LRU of clients)."""

    def __init__(self, per_minute: int, *, max_clients: int = 100_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max_clients = max_clients

    async def take(self, client: str) -> float:
        now = time.monotonic()
        tokens, at = self._buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        return wait


# KEYS[1] bucket; ARGV: capacity, rate per ms, now ms. Returns ms to wait (0 = allowed).
_LUA = """
local b = redis.call('HMGET', KEYS[1], 't', 'at')
local cap, rate, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t, at = tonumber(b[1]) or cap, tonumber(b[2]) or now
t = math.min(cap, t + math.max(0, now - at) * rate)
local wait = 0
if t >= 1 then t = t - 1 else wait = math.ceil((1 - t) / rate) end
redis.call('HSET', KEYS[1], 't', tostring(t), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(cap / rate) + 1000)
return wait
"""


class RedisRateLimiter:
    """The same bucket in Redis, updated atomically by a Lua script (time from the caller)."""

    def __init__(self, redis: Redis, per_minute: int, *, prefix: str = "autometa:ratelimit:") -> None:
        self._redis = redis
        self.capacity = per_minute
        self.rate_per_ms = per_minute / 60_000.0
        self.prefix = prefix
        self._script = redis.register_script(_LUA)

    async def take(self, client: str) -> float:
        now_ms = int(time.time() * 1000)
        wait_ms = await self._script(keys=[self.prefix + client], args=[self.capacity, self.rate_per_ms, now_ms])
        return int(wait_ms) / 1000.0
