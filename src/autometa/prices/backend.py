"""The worker's client for the Autometa backend API (the seed's `BackendClient`).

Every method returns None on any failure and logs why: the backend is an optimisation (a shared
price cache, cached reads), never something a worker must have, so callers fall back instead of
handling exceptions.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, TypedDict, cast

import httpx
import structlog
from eth_utils import is_hex_address

from autometa.prices.models import Clock, Price, PriceSource, parse_usd, wall_clock

log = structlog.get_logger("autometa.prices.backend")


class ContractAddresses(TypedDict):
    """`GET /api/utils/contracts`: the seed's three names (one Autometa contract here) + chain."""

    WorkflowRegistry: str
    ActionExecutor: str
    FeeEscrow: str
    chain_id: int


class BackendClient:
    """Async httpx client for `BACKEND_API_URL` with the seed's 10 s timeout."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Clock = wall_clock,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)
        # False after a network error or 5xx: the backend is down, not merely missing one asset.
        self.available = True

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def _get(self, path: str, what: str, quiet: bool = False) -> Any | None:
        """GET a JSON body, or None (logged unless `quiet`) on network error, non-200 or unreadable JSON."""
        url = f"{self.base_url}{path}"
        try:
            response = await self._client.get(url)
        except httpx.HTTPError as exc:
            self.available = False
            if not quiet:
                log.warning("backend_unavailable", what=what, url=url, error=type(exc).__name__, detail=str(exc))
            return None
        self.available = response.status_code < 500
        if response.status_code != 200:
            log.warning("backend_error", what=what, url=url, status=response.status_code)
            return None
        try:
            return json.loads(response.text, parse_float=Decimal)
        except ValueError:
            log.warning("backend_bad_json", what=what, url=url, body=response.text[:80])
            return None

    async def health_check(self) -> bool:
        """True when `GET /api/utils/healthz` answers 200."""
        healthy = await self._get("/api/utils/healthz", "health", quiet=True) is not None
        log.debug("backend_health", url=self.base_url, healthy=healthy)  # the caller says it, once
        return healthy

    async def get_price(self, symbol: str) -> Price | None:
        """`GET /api/price/{symbol}` → a Price whose source says whether the backend answered from
        its Redis cache (`backend-redis`) or had to go upstream (`backend-api`)."""
        body = await self._get(f"/api/price/{symbol}", "price")
        if body is None:
            return None
        if not isinstance(body, dict):
            _rejected("price", asset=symbol, reason=f"body is a {type(body).__name__}")
            return None
        usd, reason = parse_usd(body.get("usd"))
        if usd is None or body.get("symbol", symbol) != symbol:
            _rejected("price", asset=symbol, reason=reason or f"answer is for {body.get('symbol')!r}")
            return None
        source = PriceSource.BACKEND_REDIS if body.get("source") == "backend-redis" else PriceSource.BACKEND_API
        age, _ = parse_usd(body.get("age_s"))  # absent or 0 → fresh
        age_s = float(age) if age is not None else 0.0
        return Price(symbol, usd, source, fetched_at=self._clock() - age_s, age=age_s)

    async def get_user_workflows(self, address: str) -> list[dict[str, Any]] | None:
        """`GET /api/workflow/user/{address}`: the owner's workflows (a list, or `{"workflows": [...]}`)."""
        body = await self._get(f"/api/workflow/user/{address}", "workflows")
        items = body.get("workflows") if isinstance(body, dict) else body
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            if body is not None:
                _rejected("workflows")
            return None
        return cast(list[dict[str, Any]], items)

    async def get_supported_assets(self) -> list[str] | None:
        """`GET /api/price/assets`: the asset ids the backend prices (a list, or `{"assets": [...]}`)."""
        body = await self._get("/api/price/assets", "assets")
        items = body.get("assets") if isinstance(body, dict) else body
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            if body is not None:
                _rejected("assets")
            return None
        return cast(list[str], items)

    async def get_contract_addresses(self) -> ContractAddresses | None:
        """`GET /api/utils/contracts`: WorkflowRegistry, ActionExecutor, FeeEscrow, chain_id."""
        body = await self._get("/api/utils/contracts", "contracts")
        if not isinstance(body, dict):
            if body is not None:
                _rejected("contracts")
            return None
        names = ("WorkflowRegistry", "ActionExecutor", "FeeEscrow")
        bad = [n for n in names if not (isinstance(body.get(n), str) and is_hex_address(body[n]))]
        chain_id = body.get("chain_id")
        if bad or isinstance(chain_id, bool) or not isinstance(chain_id, int):
            _rejected("contracts", bad=bad or ["chain_id"])
            return None
        addresses = ContractAddresses(
            WorkflowRegistry=body["WorkflowRegistry"],
            ActionExecutor=body["ActionExecutor"],
            FeeEscrow=body["FeeEscrow"],
            chain_id=chain_id,
        )
        log.info("backend_contracts", **addresses)
        return addresses


def _rejected(what: str, **fields: Any) -> None:
    """Log an answer we could not use; the caller then returns None."""
    log.warning("backend_bad_answer", what=what, **fields)
