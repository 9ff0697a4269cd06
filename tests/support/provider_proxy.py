"""A JSON-RPC proxy that answers like a public provider where providers differ from anvil:
no `eth_simulateV1` (-32601, as geth-based endpoints without the API answer), `eth_getLogs`
limited to a block range and a result count with the providers' kind of error text, and (as
every `RpcProxy`) no websocket. Everything else is forwarded to the real node behind it."""

from __future__ import annotations

import json
from typing import Any

from tests.support.rpc_proxy import RpcProxy

LOG_BLOCK_CAP = 1_000
LOG_RESULT_CAP = 10_000


class PublicProviderProxy(RpcProxy):
    def __init__(self, upstream: str, *, log_blocks: int = LOG_BLOCK_CAP, log_results: int = LOG_RESULT_CAP) -> None:
        super().__init__(upstream)
        self.log_blocks, self.log_results = log_blocks, log_results
        self.refused: dict[str, int] = {}

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
        error = self._refusal(call) if isinstance(call, dict) else None
        if error is None and isinstance(call, dict) and call.get("method") == "eth_getLogs":
            assert self._client is not None
            reply = (
                await self._client.post(self.upstream, content=body, headers={"Content-Type": "application/json"})
            ).json()
            if len(reply.get("result") or []) <= self.log_results:
                self._respond(writer, 200, json.dumps(reply).encode())
                await writer.drain()
                return True
            error = {"code": -32005, "message": f"query returned more than {self.log_results} results"}
        if error is None:
            return await super()._handle(body, writer)
        self.refused[str(call.get("method"))] = self.refused.get(str(call.get("method")), 0) + 1
        reply = {"jsonrpc": "2.0", "id": call.get("id"), "error": error}
        self._respond(writer, 200, json.dumps(reply).encode())
        await writer.drain()
        return True
