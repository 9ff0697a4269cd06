"""A JSON-RPC proxy that answers like a public provider (the `public` RPC profile) where providers
differ from anvil: 25 requests/s, then HTTP 429 with `Retry-After`; no `eth_simulateV1` (-32601,
as geth-based endpoints without the API answer); `eth_getLogs` limited to 1,000 blocks and 10,000
results with the providers' kind of error text; and (as every `RpcProxy`) no websocket. Everything
else is forwarded to the real node behind it. Public providers serve chains with 2 s blocks (Base,
OP): `public_chain` puts the proxy in front of an anvil mining every 2 s.

The figures follow what providers answer (the issue's figures): Infura's -32005 "query returned
more than 10000 results" (ethers-io/ethers.js#4703), "query exceeds max block range 100000" and
"eth_getLogs range is too large, max is 1k blocks" (foundry-rs/foundry#12687), thirdweb's "Maximum
allowed number of requested blocks is 1000" (ponder-sh/ponder, packages/utils/src/_test).
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.rpc_proxy import RpcProxy

LOG_BLOCK_CAP = 1_000
LOG_RESULT_CAP = 10_000
RATE_PER_S = 25
RETRY_AFTER_S = 1.0
BLOCK_TIME_S = 2


class PublicProviderProxy(RpcProxy):
    def __init__(
        self,
        upstream: str,
        *,
        log_blocks: int = LOG_BLOCK_CAP,
        log_results: int = LOG_RESULT_CAP,
        rate: int | None = None,
        retry_after: float = RETRY_AFTER_S,
    ) -> None:
        """`rate`: requests per second before 429 (None: unlimited; `public` uses RATE_PER_S)."""
        super().__init__(upstream)
        self.log_blocks, self.log_results = log_blocks, log_results
        self.refused: dict[str, int] = {}
        self.rate_limit(rate, retry_after)

    @classmethod
    def public(cls, upstream: str) -> PublicProviderProxy:
        """The full `public` profile: every limit at the providers' figures."""
        return cls(upstream, rate=RATE_PER_S)

    def _refusal(self, call: dict[str, Any]) -> dict[str, Any] | None:
        method = call.get("method")
        if method == "eth_simulateV1":
            return {"code": -32601, "message": "the method eth_simulateV1 does not exist/is not available"}
        if method == "eth_getLogs":
            query = (call.get("params") or [{}])[0]
            span = None
            start, end = query.get("fromBlock", "0x0"), query.get("toBlock", "latest")
            if isinstance(start, str) and isinstance(end, str) and start.startswith("0x") and end.startswith("0x"):
                span = int(end, 16) - int(start, 16) + 1
            if span is not None and span > self.log_blocks:
                return {"code": -32602, "message": f"query exceeds max block range {self.log_blocks}"}
        return None

    async def _handle(self, body: bytes, writer: Any) -> bool:
        try:
            call = json.loads(body)
        except ValueError:
            return await super()._handle(body, writer)
        if not isinstance(call, dict):
            return await super()._handle(body, writer)
        method = str(call.get("method"))
        error = self._refusal(call)
        if error is None and method != "eth_getLogs":
            return await super()._handle(body, writer)
        if await self._refuse_over_limit([method], writer):  # answered here, limited all the same
            return True
        with self._lock:
            self.calls[method] += 1
        if error is None:
            assert self._client is not None
            reply = (
                await self._client.post(self.upstream, content=body, headers={"Content-Type": "application/json"})
            ).json()
            if len(reply.get("result") or []) <= self.log_results:
                self._respond(writer, 200, json.dumps(reply).encode())
                await writer.drain()
                return True
            error = {"code": -32005, "message": f"query returned more than {self.log_results} results"}
        self.refused[method] = self.refused.get(method, 0) + 1
        reply = {"jsonrpc": "2.0", "id": call.get("id"), "error": error}
        self._respond(writer, 200, json.dumps(reply).encode())
        await writer.drain()
        return True
