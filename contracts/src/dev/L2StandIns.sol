// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// Stand-ins for the L2 fee predeploys, installed at their real addresses on anvil (anvil_setCode in
// Python tests, vm.etch in forge tests) so the chain modules run the same bytes as on a rollup.
// Test money only: anyone may set their parameters.
import {LibZip} from "@chainlink/contracts/src/v0.8/vendor/@eth-optimism/contracts-bedrock/v0.17.3/src/deps/LibZip.sol";

/// The OP stack GasPriceOracle's fee functions, with the parameters L1Block would hold kept here.
/// Formulas (ethereum-optimism/specs): Fjord — specs/protocol/fjord/exec-engine.md "Fjord L1-Cost
/// fee changes (FastLZ estimator)" (FastLZ size + 68, linear regression to the Brotli size with
/// intercept −42,585,600 and coefficient 836,500 scaled 1e6, 100-byte floor) and
/// specs/protocol/fjord/predeploys.md (`getL1FeeUpperBound`: size + 68, + size/255 + 16);
/// Ecotone — specs/protocol/exec-engine.md "Ecotone L1-Cost fee changes" (16 per non-zero
/// byte, 4 per zero byte, + 68 × 16 for the signature). Published at https://specs.optimism.io.
/// FastLZ is Solady's `LibZip.flzCompress`, the library the real predeploy uses (optimism
/// packages/contracts-bedrock/src/L2/GasPriceOracle.sol 1.3.0, vendored in the Chainlink package).
contract DevGasPriceOracle {
    uint256 public constant DECIMALS = 6;
    int256 private constant COST_INTERCEPT = -42_585_600;
    uint256 private constant COST_FASTLZ_COEF = 836_500;
    uint256 private constant MIN_TRANSACTION_SIZE = 100;

    bool public isEcotone;
    bool public isFjord;
    uint32 public baseFeeScalar;
    uint32 public blobBaseFeeScalar;
    uint256 public l1BaseFee;
    uint256 public blobBaseFee;

    /// What the L1 attributes deposit sets on a real chain (L1Block.setL1BlockValuesEcotone).
    function setL1Fees(uint256 l1BaseFee_, uint256 blobBaseFee_, uint32 baseFeeScalar_, uint32 blobBaseFeeScalar_, bool fjord)
        external
    {
        (l1BaseFee, blobBaseFee, baseFeeScalar, blobBaseFeeScalar) = (l1BaseFee_, blobBaseFee_, baseFeeScalar_, blobBaseFeeScalar_);
        (isEcotone, isFjord) = (true, fjord);
    }

    /// @param data the unsigned, fully RLP-encoded transaction
    function getL1Fee(bytes memory data) external view returns (uint256) {
        if (isFjord) return _fjordL1Cost(LibZip.flzCompress(data).length + 68);
        uint256 l1Gas = 68 * 16;
        for (uint256 i; i < data.length; ++i) {
            l1Gas += data[i] == 0 ? 4 : 16;
        }
        return l1Gas * (uint256(baseFeeScalar) * 16 * l1BaseFee + uint256(blobBaseFeeScalar) * blobBaseFee) / (16 * 10 ** DECIMALS);
    }

    /// Fjord only: the FastLZ size bound txSize + txSize / 255 + 16 (covers 99.99 % of transactions).
    function getL1FeeUpperBound(uint256 unsignedTxSize) external view returns (uint256) {
        require(isFjord, "GasPriceOracle: getL1FeeUpperBound only supports Fjord");
        uint256 txSize = unsignedTxSize + 68;
        return _fjordL1Cost(txSize + txSize / 255 + 16);
    }

    function _fjordL1Cost(uint256 fastLzSize) private view returns (uint256) {
        int256 estimated = COST_INTERCEPT + int256(COST_FASTLZ_COEF * fastLzSize);
        if (estimated < int256(MIN_TRANSACTION_SIZE * 1e6)) estimated = int256(MIN_TRANSACTION_SIZE * 1e6);
        uint256 feeScaled = uint256(baseFeeScalar) * 16 * l1BaseFee + uint256(blobBaseFeeScalar) * blobBaseFee;
        return uint256(estimated) * feeScaled / 10 ** (DECIMALS * 2);
    }
}

/// Arbitrum's ArbGasInfo precompile, the functions the chain module reads. On Nitro,
/// `getCurrentTxL1GasFees` returns the poster fee of the transaction being executed
/// (OffchainLabs/nitro precompiles/ArbGasInfo.go: `c.txProcessor.PosterFee`), which is the L2's
/// L1 price per unit × the transaction's Brotli-compressed size × 16 (nitro docs/arbos/gas.md,
/// arbos/l1pricing); it is bought as extra L2 gas before execution, so `gasleft()` never sees it.
/// `getPricesInWei` returns
/// (perL2Tx, perL1CalldataByte = l1PricePerUnit × 16, perStorageAllocation, perArbGasBase,
/// perArbGasCongestion, perArbGasTotal). A contract cannot see its transaction's bytes, so the
/// test sets the current transaction's poster fee before sending it.
contract DevArbGasInfo {
    uint256 public l1PricePerUnit;
    uint256 public perL2Tx;
    uint256 public currentTxL1GasFees;

    function setL1Prices(uint256 l1PricePerUnit_, uint256 perL2Tx_) external {
        (l1PricePerUnit, perL2Tx) = (l1PricePerUnit_, perL2Tx_);
    }

    /// The poster fee of a transaction of `compressedSize` bytes (after Brotli), as Nitro prices it.
    function setCurrentTxSize(uint256 compressedSize) external {
        currentTxL1GasFees = l1PricePerUnit * compressedSize * 16;
    }

    function getCurrentTxL1GasFees() external view returns (uint256) {
        return currentTxL1GasFees;
    }

    function getL1BaseFeeEstimate() external view returns (uint256) {
        return l1PricePerUnit;
    }

    function getPricesInWei() external view returns (uint256, uint256, uint256, uint256, uint256, uint256) {
        uint256 gasPrice = block.basefee;
        return (perL2Tx, l1PricePerUnit * 16, 0, gasPrice, 0, gasPrice);
    }
}
