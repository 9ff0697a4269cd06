"""What an RPC endpoint offers, and what Autometa does about each gap (`autometa doctor`).

Public endpoints and node implementations differ in exactly the places the worker leans on:
`eth_simulateV1` (batch simulation), the `finalized` tag (what the indexer may treat as
settled), how many blocks one `eth_getLogs` may span, websockets (new blocks without polling),
the fee market, Multicall3 and a rollup's L1-fee predeploy. Each probe is one or two cheap
calls; none sends a transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from web3 import Web3

from autometa.chain.contracts import MODULE_CONTRACTS, autometa, bind, deployed_module
from autometa.chain.rpc_support import method_unsupported
from autometa.config import Settings
from autometa.networks import MULTICALL3, ChainModule, Network, Preset, by_chain_id

# The OP stack's GasPriceOracle and Arbitrum's ArbGasInfo (fixed addresses on those chains)
OP_GAS_PRICE_ORACLE = "0x420000000000000000000000000000000000000F"
ARB_GAS_INFO = "0x000000000000000000000000000000000000006C"
L1_BASE_FEE = "0x519b4bd3"  # GasPriceOracle.l1BaseFee()
GET_PRICES_IN_WEI = "0x41b247a8"  # ArbGasInfo.getPricesInWei()
LATEST_ROUND_DATA = "0xfeaf968c"  # AggregatorV3Interface.latestRoundData()
EXECUTE_CALLDATA_BYTES = 4 + 3 * 32  # execute(uint256,uint32,uint64)
LOG_RANGES = (100_000, 10_000, 5_000, 2_000, 1_000, 500, 100)


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # "ok", "gap" (Autometa works around it), "fail" (Autometa cannot run this way), "info"
    seen: str
    action: str  # what Autometa will do about it


def _rpc(w3: Web3, method: str, params: list[Any]) -> tuple[Any, dict[str, Any] | None]:
    reply = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    error = reply.get("error")
    return reply.get("result"), dict(error) if error is not None else None


class Doctor:
    """Runs each probe against one endpoint; `run()` returns the findings in a fixed order."""

    def __init__(
        self, w3: Web3, settings: Settings, contract: str | None = None, feeds: dict[str, str] | None = None
    ) -> None:
        self.w3, self.settings, self.contract = w3, settings, contract
        self.feeds = feeds or {}
        self.preset: Preset | None = None

    def run(self) -> list[Finding]:
        try:
            chain_id = int(self.w3.eth.chain_id)
        except Exception as exc:  # nothing else can be asked
            why = "connection refused" if "refused" in str(exc).lower() else f"{type(exc).__name__}: {str(exc)[:160]}"
            return [
                Finding(
                    "endpoint",
                    "fail",
                    f"{self.settings.rpc_url}: {why}",
                    "nothing: check the URL (MOONBASE_RPC / RPC_URL / --rpc-url) and the network",
                )
            ]
        findings = [self._chain(chain_id)]
        probes: list[Callable[[], Finding | list[Finding]]] = [
            self._client,
            self._simulate,
            self._finality,
            self._logs,
            self._websocket,
            self._fees,
            self._multicall,
            self._chain_module,
            self._feeds,
            self._contract,
        ]
        for probe in probes:
            try:
                found = probe()
            except Exception as exc:  # one broken probe must not hide the others
                found = Finding(
                    probe.__name__.strip("_"),
                    "gap",
                    f"probe failed: {type(exc).__name__}: {exc}",
                    "treated as unsupported",
                )
            findings.extend(found if isinstance(found, list) else [found])
        return findings

    # ------------------------------------------------------------------ probes

    def _chain(self, chain_id: int) -> Finding:
        self.preset = by_chain_id(chain_id)
        expected = self.settings.expected_chain_id
        name = self.preset.name if self.preset else "no preset"
        if expected is not None and expected != chain_id:
            return Finding(
                "chain id",
                "fail",
                f"{chain_id} ({name}), but NETWORK={self.settings.NETWORK} expects {expected}",
                "refuses to start: fix NETWORK / CHAIN_ID or the endpoint",
            )
        if self.preset is None:
            return Finding(
                "chain id",
                "gap",
                f"{chain_id}: no preset",
                "runs with generic defaults; set CHAIN_ID, CONFIRMATIONS and POLL_INTERVAL yourself",
            )
        if self.settings.NETWORK is Network.DEV and self.preset.network is not Network.DEV:
            return Finding(
                "chain id",
                "gap",
                f"{chain_id} = preset {name}, but NETWORK=dev",
                f"set NETWORK={name} for its finality, block time and chain module",
            )
        return Finding("chain id", "ok", f"{chain_id} = preset {name}", "uses the preset's defaults")

    def _client(self) -> Finding:
        version, error = _rpc(self.w3, "web3_clientVersion", [])
        return Finding("node", "info", str(version) if version else f"unknown ({error})", "—")

    def _simulate(self) -> Finding:
        params = [{"blockStateCalls": [{"calls": []}]}, "latest"]
        result, error = _rpc(self.w3, "eth_simulateV1", params)
        if result is not None:
            return Finding("eth_simulateV1", "ok", "supported", "simulates each batch in one call, with its logs")
        if method_unsupported(error):
            return Finding(
                "eth_simulateV1",
                "gap",
                f"not supported ({(error or {}).get('message')})",
                "simulates each batch with eth_call + eth_estimateGas instead (one more call per batch)",
            )
        return Finding(
            "eth_simulateV1",
            "gap",
            f"answered an error: {error}",
            "keeps trying it; falls back to eth_call + eth_estimateGas per batch when it fails",
        )

    def _finality(self) -> Finding:
        head = int(self.w3.eth.block_number)
        block, error = _rpc(self.w3, "eth_getBlockByNumber", ["finalized", False])
        if block:
            lag = head - int(block["number"], 16)
            return Finding(
                "finalized tag",
                "ok",
                f"finalized = head − {lag} blocks",
                self._confirmations_action(),
            )
        return Finding(
            "finalized tag",
            "gap",
            f"not available ({(error or {}).get('message', 'null')})",
            f"relies on CONFIRMATIONS={self.settings.CONFIRMATIONS} blocks and its 64-block reorg window"
            + (" — CONFIRMATIONS=finalized cannot work here" if isinstance(self.settings.CONFIRMATIONS, str) else ""),
        )

    def _confirmations_action(self) -> str:
        if isinstance(self.settings.CONFIRMATIONS, str):
            tag = self.settings.CONFIRMATIONS
            return f"CONFIRMATIONS={tag}: indexes only blocks the node calls {tag}"
        return (
            f"indexes up to CONFIRMATIONS={self.settings.CONFIRMATIONS} blocks behind the head, watching the last 64 "
            "for reorgs; CONFIRMATIONS=finalized indexes only final blocks"
        )

    def _logs(self) -> Finding:
        head = int(self.w3.eth.block_number)
        address = self.contract or MULTICALL3
        batch = self.settings.INDEXER_BATCH_BLOCKS
        for span in LOG_RANGES:
            start = max(head - span + 1, 0)
            _, error = _rpc(
                self.w3, "eth_getLogs", [{"address": address, "fromBlock": hex(start), "toBlock": hex(head)}]
            )
            if error is None:
                whole = start == 0
                seen = f"a range of {head - start + 1} blocks is accepted" + (" (the whole chain)" if whole else "")
                if span >= batch or whole:
                    return Finding("eth_getLogs range", "ok", seen, f"reads {batch} blocks per request")
                return Finding(
                    "eth_getLogs range",
                    "gap",
                    seen + f", {batch} may not be",
                    f"set INDEXER_BATCH_BLOCKS={span} (now {batch}); ranges the node refuses are split",
                )
        return Finding(
            "eth_getLogs range",
            "fail",
            f"even {LOG_RANGES[-1]} blocks refused",
            "the indexer cannot read this endpoint's logs: use another endpoint",
        )

    def _websocket(self) -> Finding:
        from autometa.worker.blocks import ws_url_for

        url = ws_url_for(self.settings.rpc_url)
        if url is None:
            return Finding("websocket", "gap", "no websocket URL", f"polls for blocks every {self._poll()} s")
        if _subscribes(url):
            return Finding("websocket", "ok", f"{url} accepts eth_subscribe newHeads", "follows new blocks as pushed")
        return Finding(
            "websocket", "gap", f"{url}: no newHeads subscription", f"polls for blocks every {self._poll()} s"
        )

    def _poll(self) -> float:
        block_time = self.preset.block_time_s if self.preset else self.settings.POLL_INTERVAL
        return min(self.settings.POLL_INTERVAL, block_time)

    def _fees(self) -> Finding:
        block = self.w3.eth.get_block("latest")
        base = block.get("baseFeePerGas")
        if base is None:
            return Finding(
                "fee market",
                "gap",
                "no base fee (legacy gas pricing)",
                f"bids a legacy gas price up to MAX_FEE_PER_GAS_GWEI={self.settings.MAX_FEE_PER_GAS_GWEI}",
            )
        return Finding(
            "fee market",
            "ok",
            f"EIP-1559, base fee {int(base) / 1e9:.4g} gwei",
            f"bids base fee × 2 + {self.settings.PRIORITY_FEE_GWEI} gwei tip, capped at "
            f"{self.settings.MAX_FEE_PER_GAS_GWEI} gwei; replaces after {self.settings.TX_REPLACE_AFTER_BLOCKS} "
            "blocks",
        )

    def _multicall(self) -> Finding:
        code = self.w3.eth.get_code(Web3.to_checksum_address(MULTICALL3))
        if code:
            return Finding("Multicall3", "ok", f"deployed at {MULTICALL3}", "batches view calls")
        return Finding("Multicall3", "gap", f"no code at {MULTICALL3}", "reads views one call at a time")

    def _chain_module(self) -> Finding:
        """Which chain module the deployment charges the L1 data fee with, against what the chain
        needs: a rollup deployment without its module leaves executors paying that fee unrepaid."""
        needed = self.preset.chain_module if self.preset else ChainModule.NONE
        seen = self._predeploy(needed)
        if seen is None:
            return Finding(
                "chain module",
                "fail",
                f"{needed} chain, but its fee predeploy does not answer",
                "the L1 data fee cannot be read: executors would pay it without being repaid",
            )
        if not self.contract or not self.w3.eth.get_code(Web3.to_checksum_address(self.contract)):
            action = f"`autometa deploy` uses the {needed} module"
            return Finding("chain module", "info", f"{needed} needed; {seen}", action)
        try:
            address = autometa(self.w3, self.contract).functions.chainModule().call()
        except Exception:
            return Finding(
                "chain module",
                "gap" if needed is ChainModule.NONE else "fail",
                f"{needed} needed; the contract predates chain modules",
                "the L1 data fee is not charged: executors pay it (redeploy with `autometa deploy`)",
            )
        used = deployed_module(self.w3, address)
        where = f"{used or 'unknown module'} at {address}; {seen}"
        if used is needed:
            if used is ChainModule.NONE:
                return Finding("chain module", "ok", where, "gas used × gas price is the whole cost")
            module = bind(self.w3, MODULE_CONTRACTS[used], address)
            bound = int(module.functions.getMaxL1Fee(EXECUTE_CALLDATA_BYTES).call())
            return Finding(
                "chain module",
                "ok",
                f"{where}; an execute's L1 fee ≤ {bound} wei now",
                "each run is charged its share of the L1 data fee",
            )
        return Finding(
            "chain module",
            "fail",
            f"{needed} needed, the deployment uses {where}",
            f"set the {needed} module: `autometa admin set-chain-module` (waits in the timelock)",
        )

    def _predeploy(self, module: ChainModule) -> str | None:
        """What the chain's fee predeploy answers (None: it does not)."""
        if module is ChainModule.OPTIMISM:
            result, _ = _rpc(self.w3, "eth_call", [{"to": OP_GAS_PRICE_ORACLE, "data": L1_BASE_FEE}, "latest"])
            return f"GasPriceOracle l1BaseFee = {int(result, 16)} wei" if result and result != "0x" else None
        if module is ChainModule.ARBITRUM:
            result, _ = _rpc(self.w3, "eth_call", [{"to": ARB_GAS_INFO, "data": GET_PRICES_IN_WEI}, "latest"])
            return "ArbGasInfo answers getPricesInWei" if result and result != "0x" else None
        return "no L1 data fee on this chain"

    def _feeds(self) -> list[Finding]:
        found = []
        now = int(self.w3.eth.get_block("latest")["timestamp"])
        for asset in self.settings.SUPPORTED_ASSETS:
            feed = self.feeds.get(asset)
            if feed is None:
                found.append(
                    Finding(
                        f"feed {asset}",
                        "gap",
                        "no Chainlink feed known on this network",
                        "price triggers on it use the executor-attested off-chain price",
                    )
                )
                continue
            result, error = _rpc(self.w3, "eth_call", [{"to": feed, "data": LATEST_ROUND_DATA}, "latest"])
            if not result or len(result) < 2 + 64 * 5:
                found.append(
                    Finding(
                        f"feed {asset}",
                        "fail",
                        f"{feed}: {error or 'no answer'}",
                        "price triggers on it cannot fire: check the feed address",
                    )
                )
                continue
            updated = int(result[2 + 64 * 3 : 2 + 64 * 4], 16)
            found.append(
                Finding(
                    f"feed {asset}",
                    "ok",
                    f"{feed}, updated {max(now - updated, 0)} s ago",
                    "the contract checks price triggers against it",
                )
            )
        return found

    def _contract(self) -> Finding:
        if not self.contract:
            return Finding(
                "Autometa contract",
                "gap",
                "none configured",
                "deploy one with `autometa deploy` and set REGISTRY_ADDRESS",
            )
        code = self.w3.eth.get_code(Web3.to_checksum_address(self.contract))
        if not code:
            return Finding(
                "Autometa contract",
                "fail",
                f"no code at {self.contract}",
                "refuses to start: wrong REGISTRY_ADDRESS or network",
            )
        return Finding("Autometa contract", "ok", f"{self.contract} ({len(code)} bytes)", "uses it")


def _subscribes(url: str) -> bool:
    import json

    import websockets

    async def attempt() -> bool:
        try:
            async with websockets.connect(url, open_timeout=3) as ws:
                await ws.send(
                    json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]})
                )
                reply = json.loads(await asyncio.wait_for(ws.recv(), 3))
                return "result" in reply
        except Exception:
            return False

    return asyncio.run(attempt())


def findings_as_dicts(findings: list[Finding]) -> list[dict[str, str]]:
    return [asdict(f) for f in findings]


def usable(findings: list[Finding]) -> bool:
    return all(f.status != "fail" for f in findings)
