"""The chains one API serves: per chain its configuration, gateway and relayer, picked by a
request's ``chain`` query parameter (a name from CHAINS or a chain id; none: the default chain,
the first configured, so the seed's paths keep meaning what they meant)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from autometa.api.chain import ChainGateway
from autometa.api.errors import ApiError
from autometa.api.relayer import Relayer
from autometa.chain.deploy import Deployment
from autometa.config import ChainConfig, Settings


@dataclass
class ServedChain:
    """One chain of this API: what its routes read and write through."""

    config: ChainConfig
    settings: Settings  # this chain's single-chain view (Settings.for_chain)
    gateway: ChainGateway
    relayer: Relayer | None = None

    @property
    def label(self) -> str:
        return self.config.label

    async def key(self) -> tuple[int, str]:
        """(chain id, contract): how the store keys this chain's rows. From the configuration or
        the dev deployment file when they name the contract, so store reads work while the node
        is down; else from the node (a 503 when it is unreachable)."""
        known = self.gateway.resolved
        if known is not None:
            return known.chain_id, known.contract
        contract = self.config.contract
        if contract is None:
            dep = Deployment.load(self.settings.DATA_DIR, self.config.id)
            contract = dep.address if dep is not None else None
        if contract is not None and self.settings.expected_chain_id is not None:
            return self.config.id, contract
        info = await self.gateway.info()
        return info.chain_id, info.contract


class ChainRegistry:
    """Served chains by name, in configuration order (the first is the default)."""

    def __init__(self, settings: Settings, chains: list[ServedChain]) -> None:
        if not chains:
            raise ValueError("an API serves at least one chain")
        self.settings = settings
        self._chains = {c.label: c for c in chains}

    def __iter__(self) -> Iterator[ServedChain]:
        return iter(self._chains.values())

    def __len__(self) -> int:
        return len(self._chains)

    @property
    def default(self) -> ServedChain:
        return next(iter(self._chains.values()))

    def get(self, key: str | int | None) -> ServedChain:
        """The chain a request names; 404 naming the served chains when none matches (a chain
        this API does not serve is a resource it does not have)."""
        if key is None or str(key).strip() == "":
            return self.default
        text = str(key).strip().lower()
        if text in self._chains:
            return self._chains[text]
        by_id = [c for c in self._chains.values() if (text.isascii() and text.isdigit()) and c.config.id == int(text)]
        if len(by_id) == 1:
            return by_id[0]
        served = ", ".join(f"{c.label} ({c.config.id})" for c in self._chains.values())
        if len(by_id) > 1:
            reason = f"chain: {text} is served by several deployments; name one: {served}"
        else:
            reason = f"chain: {key!r} is not served by this API; served: {served}"
        raise ApiError(404, "unknown_chain", reason, field="chain")

    def by_id(self, chain_id: int) -> ServedChain | None:
        """The served chain with this id (the first, when a chain id is served twice)."""
        return next((c for c in self._chains.values() if c.config.id == chain_id), None)

    def by_key(self, chain_id: int, contract: str) -> ServedChain | None:
        """The served deployment a stored row belongs to: the entry naming (or resolved to) that
        contract on that chain, else the chain's only entry, else None."""
        on_chain = [c for c in self._chains.values() if c.config.id == chain_id]
        for served in on_chain:
            known = served.config.contract or (served.gateway.resolved.contract if served.gateway.resolved else None)
            if known is not None and known.lower() == contract.lower():
                return served
        return on_chain[0] if len(on_chain) == 1 else None
