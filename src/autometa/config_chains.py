"""One entry of the ``CHAINS`` setting: a chain Autometa serves, with its endpoints, contract and
keys. A deployment serving one chain needs none of this: the single-chain settings (``NETWORK``,
``MOONBASE_RPC``, ``REGISTRY_ADDRESS``, ``WORKER_PRIVATE_KEY``, …) read as a one-chain list.

``CHAINS`` is JSON (``[{"network": "base", "rpc": "https://…", "contract": "0x…"}, …]``) or, to
serve presets at their public endpoints, names (``base,arbitrum``). A chain is named by its
preset (``network``) or its ``chain_id`` (or both, which must agree); ``name`` (default: the
preset's name, else the chain id) is what the API's ``chain`` parameter and the dashboard call it.
"""

from __future__ import annotations

import json
from typing import Any

from eth_account import Account
from eth_utils import is_checksum_address, is_hex_address, to_checksum_address
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from autometa.networks import RETIRED, Network, Preset, by_chain_id, preset

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"


def private_key(value: Any, name: str) -> SecretStr | None:
    """A private-key setting as a secret, None when unset; a bad one is refused by `name`, never
    echoed (it may be a real key with a typo)."""
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if raw in (None, ""):
        return None
    try:
        Account.from_key(raw)
    except Exception:
        raise ValueError(f"{name} is not a valid 32-byte hex private key") from None
    return SecretStr(raw)


class ChainConfig(BaseModel):
    """A chain to serve. Keys left out fall back to the top-level ``WORKER_*`` / ``RELAYER_*``
    settings (one executor key on every chain is the common case)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    network: Network | None = None
    chain_id: int | None = Field(default=None, ge=1)
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    rpc: str | None = Field(default=None, description="endpoint(s), comma-separated (default: the preset's)")
    contract: str | None = Field(default=None, description="the Autometa contract (dev: the deployment file)")
    worker_signer: SecretStr | None = None
    worker_private_key: SecretStr | None = None
    relayer_signer: SecretStr | None = None
    relayer_private_key: SecretStr | None = None

    @field_validator("network")
    @classmethod
    def _live(cls, value: Network | None) -> Network | None:
        if value is not None and value in RETIRED:
            raise ValueError(RETIRED[value])
        return value

    @field_validator("contract", mode="before")
    @classmethod
    def _contract(cls, value: Any) -> str | None:
        if value in (None, ""):
            return None
        if not isinstance(value, str) or not is_hex_address(value):
            raise ValueError("contract must be a 0x-prefixed 20-byte hex address")
        if value != value.lower() and value != value.upper() and not is_checksum_address(value):
            raise ValueError("contract has an invalid EIP-55 checksum")
        return to_checksum_address(value)

    @field_validator("rpc")
    @classmethod
    def _rpc(cls, value: str | None) -> str | None:
        if value is None:
            return None
        urls = [u.strip().rstrip("/") for u in value.split(",") if u.strip()]
        if not urls:
            raise ValueError("rpc names no endpoint")
        bad = [u for u in urls if not u.startswith(("http://", "https://"))]
        if bad:
            raise ValueError(f"rpc: {bad[0]!r} is not an http(s) URL")
        return ",".join(urls)

    @field_validator("worker_private_key", "relayer_private_key", mode="before")
    @classmethod
    def _key(cls, value: Any, info: Any) -> Any:
        return private_key(value, info.field_name)

    @field_validator("worker_signer", "relayer_signer", mode="before")
    @classmethod
    def _signer(cls, value: Any, info: Any) -> Any:
        from autometa.chain.signers.spec import parse_spec

        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw in (None, ""):
            return None
        try:
            parse_spec(str(raw))
        except ValueError as exc:
            raise ValueError(f"{info.field_name} is not a signer spec: {exc}") from None
        return SecretStr(str(raw).strip())

    @model_validator(mode="after")
    def _named(self) -> ChainConfig:
        if self.network is None and self.chain_id is None:
            raise ValueError("name the chain: a preset (network) or a chain_id")
        if self.network is not None and self.chain_id is not None and self.chain_id != preset(self.network).chain_id:
            raise ValueError(
                f"network {self.network.value} is chain {preset(self.network).chain_id}, not chain_id {self.chain_id}"
            )
        if self.rpc is None and self.preset is None:
            raise ValueError(f"chain {self.chain_id} has no preset: give its rpc endpoint(s)")
        for role in ("worker", "relayer"):
            if getattr(self, f"{role}_signer") is not None and getattr(self, f"{role}_private_key") is not None:
                raise ValueError(f"{role}_signer and {role}_private_key are both set: keep one")
        return self

    @property
    def preset(self) -> Preset | None:
        if self.network is not None:
            return preset(self.network)
        return by_chain_id(self.chain_id) if self.chain_id is not None else None

    @property
    def id(self) -> int:
        """The chain id (the preset's when only the network is named)."""
        if self.chain_id is not None:
            return self.chain_id
        assert self.network is not None
        return preset(self.network).chain_id

    @property
    def label(self) -> str:
        """What the API and the dashboard call this chain."""
        if self.name is not None:
            return self.name
        return self.network.value if self.network is not None else str(self.id)


def parse_chains(value: Any) -> Any:
    """``CHAINS`` as given: JSON, or comma-separated preset names."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} at character {exc.pos}") from None
    return [{"network": item.strip()} for item in text.split(",") if item.strip()]


def check_unique(chains: list[ChainConfig]) -> list[ChainConfig]:
    """Names are how a request picks a chain, so they must differ; one contract on one chain is
    one deployment, listed once."""
    if not chains:
        raise ValueError("lists no chain")
    seen: dict[str, int] = {}
    for i, chain in enumerate(chains):
        if chain.label in seen:
            raise ValueError(
                f"entries {seen[chain.label]} and {i} are both called {chain.label!r}: give one a different name"
            )
        seen[chain.label] = i
    keys = [(c.id, c.contract) for c in chains]
    for i, key in enumerate(keys):
        if keys.index(key) != i:
            raise ValueError(f"entries {keys.index(key)} and {i} are the same chain {key[0]} and contract")
    return chains
