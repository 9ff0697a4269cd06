"""Web3 connections, with the middleware a chain needs (Moonbase/anvil are plain EVM)."""

from __future__ import annotations

from typing import Any

from web3 import AsyncHTTPProvider, AsyncWeb3, HTTPProvider, Web3


def connect(rpc_url: str, timeout: float = 30.0) -> Web3:
    """A synchronous Web3 for scripts, deployment and the CLI."""
    return Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))


def connect_async(rpc_url: str, timeout: float = 30.0) -> AsyncWeb3[Any]:
    """An asyncio Web3 for the long-running services."""
    return AsyncWeb3(AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))


async def close_async(w3: AsyncWeb3[Any]) -> None:
    """Close the provider's HTTP sessions (else aiohttp warns "Unclosed client session" at exit)."""
    disconnect = getattr(w3.provider, "disconnect", None)
    if disconnect is not None:
        await disconnect()
