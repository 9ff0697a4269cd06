// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";

/// Fees: gasUsed × min(tx.gasprice, owner's cap) × (1 + premium), never above maxFeePerRun,
/// credited to the executor's escrow balance, itemised in RunExecuted.
contract FeesTest is Base {
    function setUp() public override {
        super.setUp();
        _deposit(alice, 10 ether);
    }

    function _feeOf(Executed memory e) internal pure returns (uint256) {
        return (e.gasUsed * e.gasPrice * (10_000 + e.premiumBps)) / 10_000;
    }

    function test_fee_isGasTimesPriceTimesPremium_creditedToExecutor() public {
        _gasPrice(3 gwei);
        uint256 id = _create(alice, _priceSpec(ETH, COMPARATOR_ABOVE, 3000e8));
        Executed memory e = _onlyExecuted(_exec(id, 0));
        assertEq(e.gasPrice, 3 gwei, "tx gas price");
        assertEq(e.premiumBps, 1_000, "premium itemised");
        assertEq(e.fee, _feeOf(e), "fee formula");
        assertGe(e.gasUsed, 40_000, "counts the hidden overhead");
        assertLe(e.gasUsed, 150_000, "but no more than a run costs");
        assertEq(e.executor, executor, "executor itemised");
        assertEq(core.balanceOf(executor), e.fee, "credited to the executor's balance");
        assertEq(core.balanceOf(alice), 10 ether - 0.1 ether - e.fee, "debited from the owner");
        // the executor withdraws its fees like any balance
        vm.prank(executor);
        core.withdraw(e.fee);
        assertEq(executor.balance, e.fee, "withdrawn");
    }

    function test_fee_usesOwnersGasPriceCap() public {
        vm.prank(alice);
        core.setMaxGasPrice(2 gwei);
        vm.txGasPrice(5 gwei);
        uint256 id = _create(alice, _timeSpec(T0));
        Executed memory e = _onlyExecuted(_exec(id, 0));
        assertEq(e.gasPrice, 2 gwei, "min(tx gas price, cap)");
        assertEq(e.fee, _feeOf(e), "fee at the cap");
    }

    function test_fee_capBelowTxPriceIrrelevantWhenHigher() public {
        vm.prank(alice);
        core.setMaxGasPrice(50 gwei);
        _gasPrice(5 gwei);
        uint256 id = _create(alice, _timeSpec(T0));
        assertEq(_onlyExecuted(_exec(id, 0)).gasPrice, 5 gwei, "tx price when below the cap");
    }

    function test_fee_neverAboveMaxFeePerRun() public {
        _gasPrice(100 gwei);
        WorkflowSpec memory s = _timeSpec(T0);
        s.maxFeePerRun = 1_000_000 gwei; // 0.001 ether, below ~80k gas × 110 gwei
        uint256 id = _create(alice, s);
        Executed memory e = _onlyExecuted(_exec(id, 0));
        assertEq(e.fee, 1_000_000 gwei, "capped");
        assertTrue(_feeOf(e) > e.fee, "the uncapped fee was higher");
        assertEq(core.balanceOf(executor), e.fee, "executor gets the capped fee");
    }

    function test_fee_premiumBounds() public {
        vm.prank(admin);
        core.setPremium(0);
        uint256 id = _create(alice, _intervalSpec(T0, 60, 0, 3));
        Executed memory e = _onlyExecuted(_exec(id, 0));
        assertEq(e.fee, e.gasUsed * e.gasPrice, "no premium");
        _adminChange(abi.encodeCall(IAutometa.setPremium, (5_000))); // a raise waits in the timelock
        e = _onlyExecuted(_exec(id, 1));
        assertEq(e.fee, (e.gasUsed * e.gasPrice * 15_000) / 10_000, "+50 %");
    }

    function test_fee_zeroGasPrice_isFree() public {
        vm.txGasPrice(0);
        uint256 id = _create(alice, _timeSpec(T0));
        Executed memory e = _onlyExecuted(_exec(id, 0));
        assertEq(e.fee, 0, "free");
        assertEq(core.balanceOf(alice), 10 ether - 0.1 ether, "amount only");
    }

    function test_fee_batchSumsToExecutor_andEachItemCapped() public {
        uint256[] memory runs = new uint256[](3);
        for (uint256 i; i < 3; ++i) {
            runs[i] = _create(alice, _priceSpec(ETH, COMPARATOR_ABOVE, 3000e8)) << 96;
        }
        vm.recordLogs();
        vm.prank(executor);
        core.executeBatch(runs);
        Executed[] memory ex = _executed(vm.getRecordedLogs());
        uint256 total;
        for (uint256 i; i < ex.length; ++i) {
            assertEq(ex[i].fee, _feeOf(ex[i]), "each itemised");
            assertLe(ex[i].fee, MAX_FEE, "each capped");
            total += ex[i].fee;
        }
        assertEq(ex.length, 3, "three runs");
        assertEq(core.balanceOf(executor), total, "sum credited");
    }

    function test_skippedRun_costsOwnerNothing() public {
        uint256 id = _create(alice, _timeSpec(T0 + 1000));
        _exec(id, 0);
        assertEq(core.balanceOf(alice), 10 ether, "free skip");
        assertEq(core.balanceOf(executor), 0, "no fee for a skip");
    }
}
