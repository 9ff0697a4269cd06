// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";
import {CalldataGas} from "../src/CalldataGas.sol";

/// Exposes CalldataGas.cost() for the call that carries `payload`, next to a naive byte count.
contract CalldataGasHarness {
    function packed(bytes calldata) external pure returns (uint256) {
        return CalldataGas.cost();
    }

    function naive(bytes calldata) external pure returns (uint256 total) {
        bytes calldata all = msg.data;
        for (uint256 i; i < all.length; ++i) {
            total += all[i] == 0 ? 4 : 16;
        }
    }
}

contract FuzzTest is Base {
    CalldataGasHarness internal harness;

    function setUp() public override {
        super.setUp();
        harness = new CalldataGasHarness();
    }

    /// The word-folding count equals a byte-by-byte count, for any calldata (any length, any tail).
    function testFuzz_calldataGas_matchesNaiveCount(bytes calldata payload) public view {
        // both functions have the same selector length and ABI layout, so the calldata differs
        // only in the 4-byte selector: compare each to its own naive count of the same bytes
        uint256 packed = harness.packed(payload);
        bytes memory cd = abi.encodeCall(CalldataGasHarness.packed, (payload));
        uint256 expected;
        for (uint256 i; i < cd.length; ++i) {
            expected += cd[i] == 0 ? 4 : 16;
        }
        assertEq(packed, expected, "packed count");
        bytes memory cd2 = abi.encodeCall(CalldataGasHarness.naive, (payload));
        uint256 expected2;
        for (uint256 i; i < cd2.length; ++i) {
            expected2 += cd2[i] == 0 ? 4 : 16;
        }
        assertEq(harness.naive(payload), expected2, "naive harness sanity");
    }

    /// Odd-length calldata (not a multiple of 32 after the selector) is counted exactly too.
    function testFuzz_calldataGas_rawUnalignedCalldata(bytes calldata tail) public view {
        bytes memory cd = bytes.concat(CalldataGasHarness.packed.selector, abi.encode(uint256(32), tail.length), tail);
        (bool ok, bytes memory ret) = address(harness).staticcall(cd);
        assertTrue(ok, "call");
        uint256 expected;
        for (uint256 i; i < cd.length; ++i) {
            expected += cd[i] == 0 ? 4 : 16;
        }
        assertEq(abi.decode(ret, (uint256)), expected, "unaligned");
    }

    /// Whatever the gas price, owner cap, premium, fee cap and balance: the fee is never above
    /// maxFeePerRun, never above what the owner holds, and balances stay exact.
    function testFuzz_feeBounds(
        uint64 gasPrice,
        uint64 baseFee,
        uint64 ownerCap,
        uint16 premium,
        uint80 maxFee,
        uint96 deposit,
        bool succeed
    ) public {
        premium = uint16(premium % 5_001);
        maxFee = uint80(1 + maxFee % 1 ether);
        deposit = uint96(deposit % 2 ether);
        gasPrice = uint64(gasPrice % 1_000 gwei);
        vm.prank(admin);
        core.setPremium(premium);
        vm.prank(alice);
        core.setMaxGasPrice(ownerCap);
        if (deposit != 0) _deposit(alice, deposit);
        WorkflowSpec memory s = _timeSpec(T0);
        s.maxFeePerRun = maxFee;
        if (!succeed) s.target = address(new Refuser());
        uint256 id = _create(alice, s);
        vm.txGasPrice(gasPrice);
        baseFee = uint64(baseFee % (uint256(gasPrice) + 1)); // a transaction pays at least the base fee
        vm.fee(baseFee);
        uint256 before = core.balanceOf(alice);
        VmLog[] memory logs = _exec(id, 0);
        Executed[] memory ex = _executed(logs);
        if (ex.length == 0) {
            assertEq(_skipReason(logs), SKIP_INSUFFICIENT_ESCROW, "only skipped for escrow");
            assertEq(core.balanceOf(alice), before, "skip is free");
            return;
        }
        Executed memory e = ex[0];
        assertLe(e.fee, maxFee, "fee <= maxFeePerRun");
        assertLe(e.fee, before, "fee <= balance");
        // min(gas price, base fee + the deployment's tip cap, the owner's cap)
        uint256 price = gasPrice;
        if (uint256(baseFee) + core.maxTipPerGas() < price) price = uint256(baseFee) + core.maxTipPerGas();
        if (ownerCap != 0 && ownerCap < price) price = ownerCap;
        assertEq(e.gasPrice, price, "min(gas price, cap)");
        uint256 uncapped = (e.gasUsed * price * (10_000 + uint256(premium))) / 10_000;
        assertEq(e.fee, uncapped < maxFee ? uncapped : maxFee, "formula");
        uint256 spent = e.success ? 0.1 ether : 0;
        assertEq(core.balanceOf(alice), before - spent - e.fee, "owner balance exact");
        assertEq(core.balanceOf(executor), e.fee, "executor credited");
        assertEq(address(core).balance, core.balanceOf(alice) + core.balanceOf(executor), "solvent");
    }

    struct RawSpec {
        uint8 triggerKind;
        uint8 comparator;
        uint40 startTime;
        uint40 endTime;
        uint32 interval;
        uint64 priceUsd;
        bool withAsset;
        uint8 actionKind;
        uint8 targetPick;
        uint256 amount;
        uint32 maxRuns;
        uint24 gasLimit;
        uint80 maxFee;
        bool withData;
    }

    /// Random specs, biased towards the edges each rule checks.
    function _shape(RawSpec memory r) internal view returns (WorkflowSpec memory s) {
        s.triggerKind = r.triggerKind % 4;
        s.comparator = r.comparator % 3;
        s.startTime = r.startTime % 2 == 0 ? uint40(T0 + (r.startTime % 1000)) : r.startTime % 3 == 0 ? 0 : r.startTime;
        s.endTime = r.endTime % 2 == 0 ? 0 : uint40(T0 - 500 + (r.endTime % 2000));
        s.interval = r.interval % 3 == 0 ? 0 : r.interval;
        s.priceUsd = r.priceUsd % 3 == 0 ? 0 : r.priceUsd;
        s.asset = r.withAsset ? ETH : bytes32(0);
        s.actionKind = r.actionKind % 4;
        address[5] memory targets = [address(0), address(core), recipient, address(token), address(feed)];
        s.target = targets[r.targetPick % 5];
        s.token = r.targetPick % 2 == 0 ? address(token) : address(0);
        s.amount = r.amount % 4 == 0 ? 0 : r.amount % 4 == 1 ? uint256(type(uint96).max) + 1 : r.amount % 1 ether;
        s.data = r.withData ? bytes(hex"d09de08a") : bytes("");
        s.maxRuns = r.maxRuns % 4;
        s.gasLimit = r.gasLimit;
        s.maxFeePerRun = r.maxFee % 3 == 0 ? 0 : r.maxFee;
    }

    function _checkValid(WorkflowSpec memory s, WorkflowView memory v) internal view {
        WorkflowSpec memory w = v.spec;
        assertEq(v.owner, alice, "owner");
        assertEq(v.status, STATUS_ACTIVE, "active");
        assertTrue(w.triggerKind <= TRIGGER_PRICE && w.actionKind <= ACTION_CALL, "kinds");
        assertTrue(w.maxRuns >= 1, "maxRuns");
        assertTrue(w.gasLimit >= 10_000 && w.gasLimit <= 5_000_000, "gasLimit");
        assertTrue(w.maxFeePerRun > 0, "maxFee");
        assertTrue(w.endTime == 0 || (w.endTime > w.startTime && w.endTime > block.timestamp), "endTime");
        if (w.triggerKind == TRIGGER_TIME) assertTrue(w.startTime != 0 && w.maxRuns == 1, "time");
        if (w.triggerKind == TRIGGER_INTERVAL) assertTrue(w.interval != 0, "interval");
        if (w.triggerKind == TRIGGER_PRICE) {
            assertTrue(w.priceUsd != 0 && w.asset != bytes32(0) && w.comparator <= 1, "price");
            assertLe(w.interval, (1 << 24) - 1, "price cooldown fits its 24 stored bits");
        } else {
            assertTrue(s.priceUsd == 0 && s.comparator == 0 && s.asset == bytes32(0), "no price fields");
        }
        assertTrue(w.target != address(0) && w.target != address(core), "target");
        if (w.actionKind == ACTION_ERC20) assertTrue(w.token.code.length != 0 && w.amount != 0, "erc20");
        else assertTrue(s.token == address(0) && s.amount <= type(uint96).max, "no token");
        if (w.actionKind == ACTION_NATIVE) assertTrue(w.amount != 0, "native amount");
        if (w.actionKind == ACTION_CALL) assertTrue(w.target.code.length != 0, "call target");
        else assertTrue(s.data.length == 0, "no data");
        assertEq(core.hashSpec(w), core.hashSpec(s), "stored exactly what was asked");
    }

    /// Any spec either reverts with InvalidSpec or creates a workflow that satisfies every rule.
    function testFuzz_specValidation(RawSpec memory r) public {
        WorkflowSpec memory s = _shape(r);
        vm.prank(alice);
        try core.createWorkflow(s) returns (uint256 id) {
            _checkValid(s, core.getWorkflow(id));
        } catch (bytes memory err) {
            assertEq(bytes4(err), InvalidSpec.selector, "only InvalidSpec");
        }
    }
}
