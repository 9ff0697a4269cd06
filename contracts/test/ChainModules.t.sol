// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

interface IChainModuleT {
    function getCurrentL1Fee(bytes calldata txData) external view returns (uint256);
    function getMaxL1Fee(uint256 dataSize) external view returns (uint256);
}

interface DevGasPriceOracleT {
    function setL1Fees(uint256 l1BaseFee, uint256 blobBaseFee, uint32 baseFeeScalar, uint32 blobBaseFeeScalar, bool fjord)
        external;
    function getL1Fee(bytes memory data) external view returns (uint256);
}

interface DevArbGasInfoT {
    function setL1Prices(uint256 l1PricePerUnit, uint256 perL2Tx) external;
    function setCurrentTxSize(uint256 compressedSize) external;
    function getCurrentTxL1GasFees() external view returns (uint256);
}

/// Issue 14: on a rollup a run's fee includes its share of the transaction's L1 data fee, priced
/// by the chain module chosen at deployment (changed only through the timelock), and every owner
/// cap still bounds it. The predeploys are stand-ins etched at their real addresses (one run or
/// one batch per test: the L1 fee, like the intrinsic gas, is charged once per transaction and a
/// forge test is one transaction).
contract ChainModulesTest is Base {
    address internal constant GAS_PRICE_ORACLE = 0x420000000000000000000000000000000000000F;
    address internal constant ARB_GAS_INFO = 0x000000000000000000000000000000000000006C;
    bytes32 internal constant L1_FEE_SHARED = keccak256("L1FeeShared(uint256,uint256)");
    // Base mainnet-like parameters: L1 base fee 20 gwei, blob base fee 1 gwei, Base's scalars.
    uint256 internal constant L1_BASE_FEE = 20 gwei;
    uint256 internal constant BLOB_BASE_FEE = 1 gwei;
    uint32 internal constant BASE_FEE_SCALAR = 2269;
    uint32 internal constant BLOB_FEE_SCALAR = 1_055_762;

    address internal opModule;
    address internal arbModule;

    function setUp() public override {
        super.setUp();
        _deposit(alice, 10 ether);
        address oracle = vm.deployCode("L2StandIns.sol:DevGasPriceOracle", "");
        vm.etch(GAS_PRICE_ORACLE, oracle.code);
        DevGasPriceOracleT(GAS_PRICE_ORACLE).setL1Fees(L1_BASE_FEE, BLOB_BASE_FEE, BASE_FEE_SCALAR, BLOB_FEE_SCALAR, true);
        address arb = vm.deployCode("L2StandIns.sol:DevArbGasInfo", "");
        vm.etch(ARB_GAS_INFO, arb.code);
        DevArbGasInfoT(ARB_GAS_INFO).setL1Prices(30 gwei, 0);
        opModule = vm.deployCode("ChainModules.sol:OptimismModule", "");
        arbModule = vm.deployCode("ChainModules.sol:ArbitrumModule", "");
    }

    function _useModule(address module) internal {
        _adminChange(abi.encodeCall(IAutometa.setChainModule, (module)));
        assertEq(core.chainModule(), module, "module set");
    }

    /// The L1FeeShared event: the transaction's L1 fee (wei) and the gas each run carries for it.
    function _l1Shared(VmLog[] memory logs) internal pure returns (uint256 l1, uint256 gasPerRun) {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == L1_FEE_SHARED) (l1, gasPerRun) = abi.decode(logs[i].data, (uint256, uint256));
        }
    }

    /// gasUsed × gasPrice × (1 + premium): the fee promise (gasUsed includes the L1 share's gas).
    function _expectedFee(Executed memory e) internal pure returns (uint256) {
        return (e.gasUsed * e.gasPrice * (10_000 + e.premiumBps)) / 10_000;
    }

    /// The gas a run carries for its L1 share: ceil(share / the transaction's price ceiling).
    function _l1Gas(uint256 l1, uint256 n, uint256 price) internal pure returns (uint256) {
        return (l1 / n + price - 1) / price;
    }

    // ------------------------------------------------------------ OP stack

    function test_op_runChargeIncludesTheL1Fee() public {
        _useModule(opModule);
        uint256 id = _create(alice, _timeSpec(T0));
        uint256 before = core.balanceOf(alice);
        VmLog[] memory logs = _exec(id, 0);
        Executed memory e = _onlyExecuted(logs);
        (uint256 l1, uint256 gasPerRun) = _l1Shared(logs);
        assertEq(gasPerRun, _l1Gas(l1, 1, GWEI), "a lone run carries the whole L1 fee, as gas at the tx price");
        bytes memory data = abi.encodeCall(IAutometa.execute, (id, 0, 0));
        // at least the oracle's price of the bare calldata, at most the module's upper bound
        assertGe(l1, DevGasPriceOracleT(GAS_PRICE_ORACLE).getL1Fee(data), "envelope priced too");
        assertLe(l1, IChainModuleT(opModule).getMaxL1Fee(data.length), "within the Fjord upper bound");
        assertTrue(l1 > 1e11, "a real L1 fee at these prices (~0.18 gwei x 1e9)");
        assertGe(e.gasUsed, gasPerRun + 21_000, "gasUsed carries the L1 share");
        assertEq(e.fee, _expectedFee(e), "fee = gas (incl. the L1 share) x price x (1 + premium)");
        assertGe(e.fee * 10_000 / (10_000 + e.premiumBps), l1, "the executor is repaid the L1 fee");
        assertEq(before - core.balanceOf(alice), 0.1 ether + e.fee, "the owner paid amount + fee");
        assertEq(core.balanceOf(executor), e.fee, "the executor got it");
    }

    /// An expensive L1: the module prices the transaction exactly (on-chain compression, tens of
    /// thousands of gas). That gas is charged too, and a lone run's fee bound still covers it (the
    /// fee is the promise, not clipped), with a gas limit that the action uses up.
    function test_op_exactPricing_isChargedInFull() public {
        _useModule(opModule);
        DevGasPriceOracleT(GAS_PRICE_ORACLE).setL1Fees(100_000 gwei, BLOB_BASE_FEE, BASE_FEE_SCALAR, BLOB_FEE_SCALAR, true);
        GasBurner burner = new GasBurner();
        WorkflowSpec memory s = _nativeAction(_timeSpec(T0), address(burner), 1);
        s.maxFeePerRun = 1 ether;
        uint256 id = _create(alice, s);
        VmLog[] memory logs = _exec(id, 0);
        (uint256 l1, uint256 gasPerRun) = _l1Shared(logs);
        bytes memory data = abi.encodeCall(IAutometa.execute, (id, 0, 0));
        assertTrue(l1 != IChainModuleT(opModule).getMaxL1Fee(data.length), "the exact fee, not the bound");
        Executed memory e = _onlyExecuted(logs);
        assertEq(e.fee, _expectedFee(e), "not clipped by the fee bound");
        assertGe(e.gasUsed, gasPerRun + 21_000 + s.gasLimit, "the L1 share, the intrinsic gas and the burnt limit");
        assertGe(e.fee * 10_000 / (10_000 + e.premiumBps), l1, "the executor is repaid the L1 fee");
    }

    function test_op_batchSplitsTheL1FeeEvenly() public {
        _useModule(opModule);
        uint256[] memory runs = new uint256[](4);
        for (uint256 i; i < runs.length; ++i) {
            runs[i] = _create(alice, _timeSpec(T0)) << 96;
        }
        vm.recordLogs();
        vm.prank(executor);
        core.executeBatch(runs);
        VmLog[] memory logs = vm.getRecordedLogs();
        (uint256 l1, uint256 gasPerRun) = _l1Shared(logs);
        assertEq(gasPerRun, _l1Gas(l1, 4, GWEI), "each run carries a quarter");
        Executed[] memory ex = _executed(logs);
        assertEq(ex.length, 4, "four runs");
        uint256 shares;
        for (uint256 i; i < ex.length; ++i) {
            assertEq(ex[i].fee, _expectedFee(ex[i]), "each itemised");
            assertGe(ex[i].gasUsed, gasPerRun, "with its share");
            shares += gasPerRun * ex[i].gasPrice;
        }
        // rounded up to whole gas: at most one gas per run above the transaction's L1 fee
        assertGe(shares, l1, "the L1 fee is covered");
        assertLe(shares, l1 + 4 * GWEI, "and at most one gas per run more");
    }

    /// The owner's maxFeePerRun bounds the L1 share too: the fee is clipped, never above it.
    function test_op_maxFeePerRun_boundsTheL1Share() public {
        _useModule(opModule);
        // an L1 fee far above the L2 cost: L1 base fee 100,000 gwei
        DevGasPriceOracleT(GAS_PRICE_ORACLE).setL1Fees(100_000 gwei, BLOB_BASE_FEE, BASE_FEE_SCALAR, BLOB_FEE_SCALAR, true);
        WorkflowSpec memory s = _timeSpec(T0);
        s.maxFeePerRun = 0.0001 ether;
        uint256 id = _create(alice, s);
        VmLog[] memory logs = _exec(id, 0);
        (uint256 l1,) = _l1Shared(logs);
        assertTrue(l1 > 0.0001 ether, "the L1 fee alone is above the cap");
        assertEq(_onlyExecuted(logs).fee, 0.0001 ether, "charged exactly the cap");
    }

    /// The owner's gas-price cap bounds the L1 share too (it is charged as gas at the run's price):
    /// an owner capped at half the transaction's price pays half of it, like the rest of the fee.
    function test_op_ownersGasPriceCap_scalesTheL1Share() public {
        _useModule(opModule);
        DevGasPriceOracleT(GAS_PRICE_ORACLE).setL1Fees(100_000 gwei, BLOB_BASE_FEE, BASE_FEE_SCALAR, BLOB_FEE_SCALAR, true);
        vm.prank(alice);
        core.setMaxGasPrice(uint64(GWEI / 2));
        uint256 id = _create(alice, _timeSpec(T0));
        VmLog[] memory logs = _exec(id, 0);
        (uint256 l1, uint256 gasPerRun) = _l1Shared(logs);
        Executed memory e = _onlyExecuted(logs);
        assertEq(e.gasPrice, GWEI / 2, "the owner's cap");
        assertEq(e.fee, _expectedFee(e), "gas x capped price x (1 + premium)");
        assertLe(gasPerRun * e.gasPrice, l1 / 2 + GWEI, "half of the L1 fee, as for the rest");
    }

    /// The escrow check before the action counts the L1 share: an owner who cannot cover it is
    /// skipped (nothing charged, run still due), as for any other part of the fee.
    function test_op_escrowMustCoverTheL1Share() public {
        _useModule(opModule);
        DevGasPriceOracleT(GAS_PRICE_ORACLE).setL1Fees(100_000 gwei, BLOB_BASE_FEE, BASE_FEE_SCALAR, BLOB_FEE_SCALAR, true);
        WorkflowSpec memory s = _timeSpec(T0);
        s.maxFeePerRun = 1 ether;
        uint256 id = _create(bob, s);
        // bob's balance covers the amount and the L2 part of the bound, not the L1 share
        uint256 l2Bound = (uint256(s.gasLimit) + 200_000) * GWEI * 11_000 / 10_000;
        _deposit(bob, 0.1 ether + l2Bound);
        VmLog[] memory logs = _exec(id, 0);
        assertEq(_skipReason(logs), SKIP_INSUFFICIENT_ESCROW, "skipped");
        assertEq(core.balanceOf(bob), 0.1 ether + l2Bound, "nothing charged");
        assertEq(_runCount(id), 0, "still due");
    }

    // ------------------------------------------------------------ Arbitrum

    function test_arbitrum_chargesThePosterFeeOfTheTransaction() public {
        _useModule(arbModule);
        uint256 id = _create(alice, _timeSpec(T0));
        DevArbGasInfoT(ARB_GAS_INFO).setCurrentTxSize(140);
        uint256 posterFee = DevArbGasInfoT(ARB_GAS_INFO).getCurrentTxL1GasFees();
        assertEq(posterFee, 30 gwei * 140 * 16, "Nitro: price per unit x 16 x compressed size");
        VmLog[] memory logs = _exec(id, 0);
        (uint256 l1,) = _l1Shared(logs);
        assertEq(l1, posterFee, "the precompile's fee for this transaction");
        Executed memory e = _onlyExecuted(logs);
        assertEq(e.fee, _expectedFee(e), "fee = gas x price x (1 + premium)");
        assertGe(e.gasUsed, _l1Gas(posterFee, 1, GWEI) + 21_000, "gasUsed includes the poster fee's gas");
        assertEq(IChainModuleT(arbModule).getMaxL1Fee(100), 30 gwei * 16 * 150, "bound: every byte non-zero");
    }

    // ------------------------------------------------------------ L1 / dev chain

    function test_noL1FeeModule_chargesNothingMore() public {
        uint256 id = _create(alice, _timeSpec(T0));
        VmLog[] memory logs = _exec(id, 0);
        assertEq(_countTopic(logs, L1_FEE_SHARED), 0, "no L1 fee announced");
        Executed memory e = _onlyExecuted(logs);
        assertEq(e.fee, _expectedFee(e), "gas x price x (1 + premium)");
        assertLe(e.gasUsed, 100_000, "no L1 gas in it");
    }

    // ------------------------------------------------------------ who may set it, bad input, timelock

    function test_setChainModule_onlyAdmin_badInputRefused() public {
        address[3] memory strangers = [alice, executor, relayer];
        for (uint256 i; i < strangers.length; ++i) {
            vm.prank(strangers[i]);
            vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, strangers[i]));
            core.setChainModule(opModule);
        }
        address before = core.chainModule();
        address[3] memory bad = [address(0), address(0x1234), address(feed)]; // zero, no code, not a module
        for (uint256 i; i < bad.length; ++i) {
            vm.prank(admin);
            vm.expectRevert(abi.encodeWithSelector(InvalidChainModule.selector, bad[i]));
            core.setChainModule(bad[i]);
        }
        // the Optimism module on a chain without the GasPriceOracle: refused
        vm.etch(GAS_PRICE_ORACLE, "");
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(InvalidChainModule.selector, opModule));
        core.setChainModule(opModule);
        assertEq(core.chainModule(), before, "unchanged");
    }

    function test_constructor_refusesABadModule() public {
        vm.expectRevert(abi.encodeWithSelector(InvalidChainModule.selector, address(0)));
        vm.deployCode("Autometa.sol:Autometa", abi.encode(admin, DELAY, address(0)));
        vm.expectRevert(abi.encodeWithSelector(InvalidChainModule.selector, address(feed)));
        vm.deployCode("Autometa.sol:Autometa", abi.encode(admin, DELAY, address(feed)));
        IAutometa c = IAutometa(vm.deployCode("Autometa.sol:Autometa", abi.encode(admin, DELAY, opModule)));
        assertEq(c.chainModule(), opModule, "chosen at deployment");
    }

    /// Once workflows exist a new module waits the timelock (it can raise every fee): announced,
    /// not applicable early, cancellable, applied once.
    function test_setChainModule_waitsInTheTimelock() public {
        address old = core.chainModule();
        _create(alice, _timeSpec(T0 + 1 days));
        vm.prank(admin);
        uint256 changeId = core.setChainModule(opModule);
        assertTrue(changeId != 0, "queued");
        (uint8 kind,, uint256 value, uint256 eta) = core.pendingChange(changeId);
        assertEq(kind, CHANGE_CHAIN_MODULE, "kind");
        assertEq(value, uint256(uint160(opModule)), "value");
        assertEq(eta, block.timestamp + DELAY, "eta");
        assertEq(core.chainModule(), old, "not applied yet");
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(ChangeNotReady.selector, changeId, eta));
        core.applyChange(changeId);
        vm.warp(eta);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        core.applyChange(changeId);
        vm.prank(admin);
        core.applyChange(changeId);
        assertEq(core.chainModule(), opModule, "applied");
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(UnknownChange.selector, changeId));
        core.applyChange(changeId);
        // a queued change is cancellable
        vm.prank(admin);
        uint256 second = core.setChainModule(old);
        vm.prank(admin);
        core.cancelChange(second);
        vm.warp(block.timestamp + DELAY);
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(UnknownChange.selector, second));
        core.applyChange(second);
        assertEq(core.chainModule(), opModule, "cancelled: unchanged");
    }

    // ------------------------------------------------------------ fuzz: caps bound every charge

    function testFuzz_l1Fee_neverAboveTheOwnersCaps(uint64 l1BaseFee, uint80 maxFee, uint64 ownerPriceCap, uint8 n) public {
        _useModule(opModule);
        DevGasPriceOracleT(GAS_PRICE_ORACLE).setL1Fees(l1BaseFee, BLOB_BASE_FEE, BASE_FEE_SCALAR, BLOB_FEE_SCALAR, true);
        uint256 count = uint256(n) % 5 + 1;
        if (maxFee == 0) maxFee = 1; // a zero cap is refused at creation
        vm.prank(alice);
        core.setMaxGasPrice(ownerPriceCap);
        uint256[] memory runs = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            WorkflowSpec memory s = _timeSpec(T0);
            s.maxFeePerRun = maxFee;
            runs[i] = _create(alice, s) << 96;
        }
        uint256 before = core.balanceOf(alice);
        vm.recordLogs();
        vm.prank(executor);
        core.executeBatch(runs);
        VmLog[] memory logs = vm.getRecordedLogs();
        Executed[] memory ex = _executed(logs);
        uint256 total;
        for (uint256 i; i < ex.length; ++i) {
            assertLe(ex[i].fee, maxFee, "never above maxFeePerRun");
            if (ownerPriceCap != 0) assertLe(ex[i].gasPrice, ownerPriceCap, "gas price within the owner's cap");
            assertLe(ex[i].fee, _expectedFee(ex[i]), "never above the fee promise");
            total += ex[i].fee;
        }
        assertEq(before - core.balanceOf(alice), total + ex.length * 0.1 ether, "debited exactly the fees + amounts");
        assertEq(core.balanceOf(executor), total, "credited exactly the fees");
    }
}
