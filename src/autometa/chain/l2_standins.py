"""Rollup fee predeploys on a dev chain: stand-ins installed at the real addresses (anvil_setCode),
so an OP-stack or Arbitrum deployment's chain module runs the same bytes as on the rollup; and the
L1 data fee a sent transaction really costs there (what the executor pays on top of its gas).

Used by tests and bench/gas.py; never on a real chain (where the predeploys exist).
"""

from __future__ import annotations

from typing import Any

import rlp
from eth_utils import to_bytes, to_checksum_address
from web3 import Web3
from web3.contract import Contract

from autometa.chain.contracts import bind
from autometa.contracts import load_artifact

OP_GAS_PRICE_ORACLE = "0x420000000000000000000000000000000000000F"
ARB_GAS_INFO = "0x000000000000000000000000000000000000006C"
# Base-like Ecotone scalars (L1Block.baseFeeScalar / blobBaseFeeScalar): the L1 fee is dominated
# by the blob base fee term once blobs are cheap.
BASE_FEE_SCALAR = 2269
BLOB_BASE_FEE_SCALAR = 1_055_762


def _install(w3: Web3, name: str, address: str) -> Contract:
    code = load_artifact(name).deployed_bytecode
    w3.provider.make_request("anvil_setCode", [address, code if code.startswith("0x") else "0x" + code])  # type: ignore[arg-type]
    return bind(w3, name, address)


def install_op_oracle(w3: Web3, sender: Any, l1_base_fee: int, blob_base_fee: int, *, fjord: bool = True) -> Contract:
    """The GasPriceOracle stand-in at 0x42…0F, with the L1 prices the attributes deposit would set."""
    from autometa.chain.deploy import transact

    oracle = _install(w3, "DevGasPriceOracle", OP_GAS_PRICE_ORACLE)
    call = oracle.functions.setL1Fees(l1_base_fee, blob_base_fee, BASE_FEE_SCALAR, BLOB_BASE_FEE_SCALAR, fjord)
    transact(w3, sender, call)
    return oracle


def install_arb_gas_info(w3: Web3, sender: Any, l1_price_per_unit: int, per_l2_tx: int = 0) -> Contract:
    """The ArbGasInfo stand-in at 0x…6C."""
    from autometa.chain.deploy import transact

    info = _install(w3, "DevArbGasInfo", ARB_GAS_INFO)
    transact(w3, sender, info.functions.setL1Prices(l1_price_per_unit, per_l2_tx))
    return info


def unsigned_tx(tx: Any) -> bytes:
    """The unsigned EIP-1559 encoding 0x02 ‖ rlp([chainId, nonce, tip, maxFee, gas, to, value, data,
    accessList]) of a mined transaction: what GasPriceOracle.getL1Fee takes (it adds the signature)."""
    access = [
        [to_bytes(hexstr=entry["address"]), [to_bytes(hexstr=key) for key in entry["storageKeys"]]]
        for entry in tx.get("accessList", [])
    ]
    fields = [
        int(tx["chainId"]),
        int(tx["nonce"]),
        int(tx["maxPriorityFeePerGas"]),
        int(tx["maxFeePerGas"]),
        int(tx["gas"]),
        to_bytes(hexstr=to_checksum_address(tx["to"])),
        int(tx["value"]),
        bytes(tx["input"]),
        access,
    ]
    encoded: bytes = rlp.encode(fields)
    return b"\x02" + encoded


def op_l1_fee(w3: Web3, tx_hash: Any) -> int:
    """The L1 data fee an OP-stack sequencer charges the sender of mined transaction `tx_hash`,
    from the oracle's state at that block."""
    tx = w3.eth.get_transaction(tx_hash)
    oracle = bind(w3, "DevGasPriceOracle", OP_GAS_PRICE_ORACLE)
    return int(oracle.functions.getL1Fee(unsigned_tx(tx)).call(block_identifier=tx["blockNumber"]))
