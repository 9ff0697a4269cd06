// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Chain modules — what a transaction costs on this chain beyond gas used × gas price.
/// @notice On a rollup the sender also pays for publishing the transaction on L1 (the "L1 data
/// fee"), which `gasleft()` cannot see. Autometa asks the module chosen at deployment (changed
/// only through the admin timelock) for the current transaction's L1 fee and charges each run its
/// share, inside every owner cap.
///
/// Why not Chainlink's (npm `chainlink/contracts` 1.2.0) `automation/chains/*Module.sol`, which this follows
/// (same roles: a base module that charges nothing, an Optimism and an Arbitrum module reading the
/// same predeploys): (1) they pin `pragma solidity 0.8.19` exactly, and this project builds with
/// one pinned solc (0.8.28, solcjs); (2) they are BUSL-1.1 licensed, Autometa is MIT; (3) their
/// `getCurrentL1Fee()` prices the module call's own `msg.data` (a selector plus 80 bytes of
/// 0xff padding), not the transaction's calldata, and `getMaxL1Fee` stands for n non-zero bytes
/// with 4n zero bytes — right for Ecotone's byte counting, far too low under Fjord's FastLZ
/// compression, where zero bytes compress away. These modules pass the transaction's real
/// calldata to the oracle instead.
interface IChainModule {
    /// @notice Whether this chain has an L1 data fee at all (false: Autometa skips the call, so an
    /// L1 deployment pays nothing for having a module). Reverts where the module cannot work
    /// (its predeploy is missing): how a deployment refuses the wrong module.
    function chargesL1Fee() external view returns (bool);

    /// @notice The L1 fee (wei) of the current transaction, whose calldata to Autometa is `txData`.
    function getCurrentL1Fee(bytes calldata txData) external view returns (uint256);

    /// @notice An upper bound of the L1 fee (wei) of a transaction with `dataSize` bytes of calldata
    /// (off-chain estimates; also how a deployment checks that the module answers on this chain).
    function getMaxL1Fee(uint256 dataSize) external view returns (uint256);
}

/// L1s, sidechains and dev chains: gas used × gas price is the whole cost.
contract NoL1FeeModule is IChainModule {
    function chargesL1Fee() external pure returns (bool) {
        return false;
    }

    function getCurrentL1Fee(bytes calldata) external pure returns (uint256) {
        return 0;
    }

    function getMaxL1Fee(uint256) external pure returns (uint256) {
        return 0;
    }
}

/// The OP stack's GasPriceOracle predeploy (0x420000000000000000000000000000000000000F), the
/// functions of it used here. https://specs.optimism.io/fjord/predeploys.html#gaspriceoracle
interface IGasPriceOracle {
    function getL1Fee(bytes memory unsignedTx) external view returns (uint256);
    function getL1FeeUpperBound(uint256 unsignedTxSize) external view returns (uint256);
}

/// OP stack (OP Mainnet, Base, …): the L1 data fee the GasPriceOracle computes for the unsigned
/// RLP-encoded transaction (Fjord and later: from its FastLZ-compressed size).
///
/// Pricing it exactly means compressing the transaction on-chain (`getL1Fee`: some 50,000 gas for
/// one run, 100–200 gas per byte, paid by the owners as gas), which is waste while L1 data is
/// cheap. So the module first asks for Fjord's upper bound (`getL1FeeUpperBound`, a few thousand
/// gas) and charges it while it is at most BOUND_GAS_PER_BYTE gas (at the transaction's price)
/// per byte: its overcharge then stays below ~2 % of a run's cost (a lone run: ≥ 64,000 gas for
/// ~150 bytes, where the bound is ≤ 1.6× the exact fee because of Fjord's 100-byte floor; a batch
/// item: ≥ 30,000 gas per 32 bytes). Above that, the exact fee is worth its gas.
///
/// For the exact fee the contract only sees its own calldata, so the EIP-1559 envelope around it
/// (type, chain id, nonce, fees, gas, to, value, access list) is rebuilt here from what the EVM
/// exposes; the oracle itself adds the 68 bytes a signature takes.
contract OptimismModule is IChainModule {
    IGasPriceOracle public constant ORACLE = IGasPriceOracle(0x420000000000000000000000000000000000000F);
    /// Envelope bytes besides the calldata, for the upper bound (a 3-byte chain id, nonce and gas,
    /// 5-byte fees, 21-byte `to`, list and data headers).
    uint256 public constant ENVELOPE_BYTES = 50;
    /// The upper bound is charged while it is at most this many gas (at the transaction's gas
    /// price) per byte of the transaction.
    uint256 public constant BOUND_GAS_PER_BYTE = 16;

    /// The oracle answers (a Fjord chain: the upper bound needs Fjord, the regime priced here).
    function chargesL1Fee() external view returns (bool) {
        ORACLE.getL1FeeUpperBound(0);
        return true;
    }

    function getCurrentL1Fee(bytes calldata txData) external view returns (uint256) {
        uint256 size = txData.length + ENVELOPE_BYTES;
        uint256 bound = ORACLE.getL1FeeUpperBound(size);
        if (bound <= BOUND_GAS_PER_BYTE * size * tx.gasprice) return bound;
        return ORACLE.getL1Fee(_unsignedTx(txData));
    }

    function getMaxL1Fee(uint256 dataSize) external view returns (uint256) {
        return ORACLE.getL1FeeUpperBound(dataSize + ENVELOPE_BYTES);
    }

    /// 0x02 ‖ rlp([chainId, nonce, tip, maxFee, gas, to, value, data, accessList]) as the sender
    /// signed it, to within a byte or two per field: the nonce and gas limit are not visible to a
    /// contract, so block number and remaining gas stand in for values of the same size. The
    /// caller (Autometa) is the transaction's `to`.
    function _unsignedTx(bytes calldata data) private view returns (bytes memory) {
        uint256 tip = tx.gasprice > block.basefee ? tx.gasprice - block.basefee : 0;
        bytes memory fields = bytes.concat(
            _rlpUint(block.chainid),
            _rlpUint(block.number & 0xffffff),
            _rlpUint(tip),
            _rlpUint(tx.gasprice),
            _rlpUint(gasleft()),
            bytes1(0x94),
            bytes20(msg.sender),
            bytes1(0x80),
            _rlpHeader(0x80, data.length),
            data,
            bytes1(0xc0)
        );
        return bytes.concat(bytes1(0x02), _rlpHeader(0xc0, fields.length), fields);
    }

    function _rlpUint(uint256 v) private pure returns (bytes memory) {
        if (v == 0) return hex"80";
        if (v < 0x80) return abi.encodePacked(uint8(v));
        uint256 n = _byteLength(v);
        return bytes.concat(bytes1(uint8(0x80 + n)), _bigEndian(v, n));
    }

    /// An RLP string (offset 0x80) or list (0xc0) header for a payload of `len` bytes.
    function _rlpHeader(uint8 offset, uint256 len) private pure returns (bytes memory) {
        if (len < 56) return abi.encodePacked(uint8(offset + len));
        uint256 n = _byteLength(len);
        return bytes.concat(bytes1(uint8(offset + 55 + n)), _bigEndian(len, n));
    }

    function _byteLength(uint256 v) private pure returns (uint256 n) {
        while (v != 0) {
            ++n;
            v >>= 8;
        }
    }

    function _bigEndian(uint256 v, uint256 n) private pure returns (bytes memory out) {
        out = new bytes(n);
        for (uint256 i = n; i > 0; --i) {
            out[i - 1] = bytes1(uint8(v));
            v >>= 8;
        }
    }
}

/// Arbitrum's ArbGasInfo precompile (0x000000000000000000000000000000000000006C), the functions
/// of it used here (OffchainLabs/nitro-contracts src/precompiles/ArbGasInfo.sol).
interface IArbGasInfo {
    function getPricesInWei() external view returns (uint256, uint256, uint256, uint256, uint256, uint256);
    function getCurrentTxL1GasFees() external view returns (uint256);
}

/// Arbitrum One / Nova / Sepolia: the precompile knows the fee the current transaction pays the
/// batch poster for its L1 calldata (`getCurrentTxL1GasFees`), so nothing needs estimating.
contract ArbitrumModule is IChainModule {
    IArbGasInfo public constant ARB_GAS_INFO = IArbGasInfo(0x000000000000000000000000000000000000006C);
    /// Envelope bytes besides the calldata, for the upper bound (as OptimismModule's).
    uint256 public constant ENVELOPE_BYTES = 50;

    /// The precompile answers.
    function chargesL1Fee() external view returns (bool) {
        ARB_GAS_INFO.getPricesInWei();
        return true;
    }

    function getCurrentL1Fee(bytes calldata) external view returns (uint256) {
        return ARB_GAS_INFO.getCurrentTxL1GasFees();
    }

    /// perL2Tx (the fixed per-transaction poster cost) + perL1CalldataByte × size: every byte
    /// priced as an uncompressed non-zero byte.
    function getMaxL1Fee(uint256 dataSize) external view returns (uint256) {
        (uint256 perL2Tx, uint256 perL1CalldataByte,,,,) = ARB_GAS_INFO.getPricesInWei();
        return perL2Tx + perL1CalldataByte * (dataSize + ENVELOPE_BYTES);
    }
}
