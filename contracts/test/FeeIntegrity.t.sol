// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";

/// An allow-listed executor that is a contract: it makes several `execute` calls in one
/// transaction (what a batching contract, a multicall or an EIP-7702 account can do).
contract MultiCaller {
    function executeAll(IAutometa core, uint256[] calldata ids) external {
        for (uint256 i; i < ids.length; ++i) {
            core.execute(ids[i], 0, 0);
        }
    }
}

/// A call target whose gas use the caller cannot predict from a simulation: it burns all the gas
/// it is given when `armed` (flipped between simulation and inclusion), little otherwise.
contract MoodyTarget {
    bool public armed;
    uint256 public spins;

    function arm(bool on) external {
        armed = on;
    }

    function act() external {
        if (!armed) return;
        while (true) {
            spins += 1;
        }
    }
}

/// A target that copies the calldata it is given, so each call action has some memory to pay for.
contract Sink {
    uint256 public hits;

    function take(bytes calldata) external {
        hits += 1;
    }
}

/// Issue 12 items 1-5: what an executor can do to the fee an owner pays, and to other owners'
/// runs in its batch. Each test failed on the code before the fix (see docs/SECURITY.md).
contract FeeIntegrityTest is Base {
    function setUp() public override {
        super.setUp();
        _deposit(alice, 50 ether);
        _deposit(bob, 50 ether);
    }

    function _fees(VmLog[] memory logs) internal pure returns (uint256 total, uint256 gas) {
        Executed[] memory ex = _executed(logs);
        for (uint256 i; i < ex.length; ++i) {
            total += ex[i].fee;
            gas += ex[i].gasUsed;
        }
    }

    // ------------------------------------------------------------ 1. intrinsic gas once per transaction

    /// Ten runs executed by one transaction of a batching contract: the 21,000 intrinsic gas is
    /// charged once, so the gas charged is within 1 % of what the transaction really used (its
    /// measured execution + the intrinsic + its calldata). Before: 10 × 21,000 were charged.
    function test_item1_intrinsicGas_chargedOncePerTransaction() public {
        MultiCaller mc = new MultiCaller();
        vm.prank(admin);
        core.setExecutor(address(mc), true); // no workflow yet: applies at once
        uint256[] memory ids = new uint256[](10);
        for (uint256 i; i < ids.length; ++i) {
            ids[i] = _create(alice, _timeSpec(T0));
        }
        bytes memory data = abi.encodeCall(MultiCaller.executeAll, (core, ids));
        vm.recordLogs();
        uint256 before = gasleft();
        (bool ok,) = address(mc).call(data);
        uint256 used = before - gasleft();
        assertTrue(ok, "ran");
        (, uint256 charged) = _fees(vm.getRecordedLogs());
        uint256 real = used + 21_000 + 16 * data.length; // an upper bound on the real transaction
        assertLe(charged, (real * 101) / 100, "charged gas <= real gas + 1 %");
    }

    /// The same for relayed intents: a second relayed call in the same transaction is reimbursed
    /// no more than the gas it used (+ its calldata), without another 21,000.
    function test_item1_relayedIntents_shareTheIntrinsicGas() public {
        uint256 id = _create(alice, _timeSpec(T0 + 1 days));
        uint256 cap = 1 ether;
        bytes memory first = _signStatus(ALICE_KEY, alice, id, OP_PAUSE, 0, T0 + 1 hours, cap);
        bytes memory second = _signStatus(ALICE_KEY, alice, id, OP_RESUME, 1, T0 + 1 hours, cap);
        vm.prank(relayer);
        core.changeStatusBySig(id, OP_PAUSE, 0, T0 + 1 hours, cap, first);
        uint256 firstFee = core.balanceOf(relayer);
        bytes memory data = abi.encodeCall(IAutometa.changeStatusBySig, (id, OP_RESUME, 1, T0 + 1 hours, cap, second));
        vm.prank(relayer);
        uint256 before = gasleft();
        (bool ok,) = address(core).call(data);
        uint256 used = before - gasleft();
        assertTrue(ok, "relayed");
        uint256 secondGas = (core.balanceOf(relayer) - firstFee) / GWEI;
        assertLe(secondGas, used + 16 * data.length, "the second intent was not charged 21,000 again");
    }

    // ------------------------------------------------------------ 2. padded calldata

    function test_item2_paddedCalldata_refused() public {
        uint256 id = _create(alice, _timeSpec(T0));
        bytes memory exact = abi.encodeCall(IAutometa.execute, (id, 0, 0));
        bytes memory padded = bytes.concat(exact, new bytes(64));
        for (uint256 i = exact.length; i < padded.length; ++i) {
            padded[i] = 0xff;
        }
        vm.prank(executor);
        (bool ok, bytes memory err) = address(core).call(padded);
        assertTrue(!ok, "padded execute refused");
        assertEq(
            keccak256(err),
            keccak256(abi.encodeWithSelector(NonCanonicalCalldata.selector, padded.length, exact.length)),
            "NonCanonicalCalldata"
        );
        assertEq(_runCount(id), 0, "nothing ran");
        assertEq(core.balanceOf(alice), 50 ether, "nothing charged");

        uint256[] memory runs = new uint256[](1);
        runs[0] = id << 96;
        bytes memory batch = bytes.concat(abi.encodeCall(IAutometa.executeBatch, (runs)), hex"ffffffff");
        vm.prank(executor);
        (ok,) = address(core).call(batch);
        assertTrue(!ok, "padded executeBatch refused");
        // a non-canonical offset (the array placed further on, padding in between)
        bytes memory moved = abi.encodePacked(IAutometa.executeBatch.selector, uint256(0x40), uint256(type(uint256).max), uint256(1), runs[0]);
        vm.prank(executor);
        (ok, err) = address(core).call(moved);
        assertTrue(!ok, "moved array refused");
        assertEq(bytes4(err), NonCanonicalCalldata.selector, "NonCanonicalCalldata");

        // the exact encodings run
        vm.prank(executor);
        (ok,) = address(core).call(exact);
        assertTrue(ok && _runCount(id) == 1, "exact execute runs");
    }

    function test_item2_paddedRelayedIntent_refused() public {
        uint256 id = _create(alice, _timeSpec(T0 + 1 days));
        bytes memory sig = _signStatus(ALICE_KEY, alice, id, OP_PAUSE, 0, T0 + 1 hours, 1 ether);
        bytes memory exact = abi.encodeCall(IAutometa.changeStatusBySig, (id, OP_PAUSE, 0, T0 + 1 hours, 1 ether, sig));
        vm.prank(relayer);
        (bool ok, bytes memory err) = address(core).call(bytes.concat(exact, new bytes(32)));
        assertTrue(!ok, "refused");
        assertEq(bytes4(err), NonCanonicalCalldata.selector, "NonCanonicalCalldata");
        WorkflowSpec memory s = _timeSpec(T0 + 1 days);
        bytes32 structHash = keccak256(abi.encode(core.CREATE_TYPEHASH(), alice, core.hashSpec(s), 0, T0 + 1 hours, 1 ether));
        (uint8 v, bytes32 r, bytes32 ss) = vm.sign(ALICE_KEY, keccak256(abi.encodePacked(hex"1901", core.domainSeparator(), structHash)));
        bytes memory create = abi.encodeCall(IAutometa.createWorkflowFor, (alice, s, 0, T0 + 1 hours, 1 ether, abi.encodePacked(r, ss, v)));
        vm.prank(relayer);
        (ok, err) = address(core).call(bytes.concat(create, hex"ff"));
        assertTrue(!ok, "padded create refused");
        assertEq(bytes4(err), NonCanonicalCalldata.selector, "NonCanonicalCalldata");
        vm.prank(relayer);
        (ok,) = address(core).call(create);
        assertTrue(ok, "the exact create is relayed");
        vm.prank(relayer);
        (ok,) = address(core).call(exact);
        assertTrue(!ok, "(its nonce is used now)");
    }

    // ------------------------------------------------------------ 3. gas price

    /// An executor colluding with a builder pays a huge gas price: the fee is computed at most at
    /// base fee + the deployment's tip cap, though the owner set no cap of their own.
    function test_item3_gasPrice_atMostBaseFeePlusTipCap() public {
        vm.fee(10 * GWEI);
        vm.txGasPrice(10_000 * GWEI);
        uint256 id = _create(alice, _timeSpec(T0));
        Executed memory e = _onlyExecuted(_exec(id, 0));
        assertEq(e.gasPrice, 10 * GWEI + core.DEFAULT_MAX_TIP(), "base fee + the tip cap");
        assertEq(core.maxTipPerGas(), core.DEFAULT_MAX_TIP(), "the default cap of a new deployment");
        // an honest transaction below the ceiling pays its own price
        vm.txGasPrice(11 * GWEI);
        id = _create(alice, _timeSpec(T0));
        assertEq(_onlyExecuted(_exec(id, 0)).gasPrice, 11 * GWEI, "the transaction's price");
    }

    function test_item3_tipCap_bounds_access_timelock() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSignature("OwnableUnauthorizedAccount(address)", alice));
        core.setMaxTip(1);
        uint256 bound = core.MAX_TIP_BOUND();
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(TipTooHigh.selector, bound + 1, bound));
        core.setMaxTip(uint64(bound + 1));
        _create(alice, _timeSpec(T0 + 1 days)); // from now on raises wait
        vm.prank(admin);
        uint256 changeId = core.setMaxTip(uint64(bound));
        assertTrue(changeId != 0, "a raise is queued");
        assertEq(core.maxTipPerGas(), core.DEFAULT_MAX_TIP(), "not applied yet");
        vm.warp(block.timestamp + DELAY);
        vm.prank(admin);
        core.applyChange(changeId);
        assertEq(core.maxTipPerGas(), bound, "applied after the delay");
        vm.prank(admin);
        assertEq(core.setMaxTip(1 gwei), 0, "a cut applies at once");
        assertEq(core.maxTipPerGas(), 1 gwei, "cut");
    }

    /// Relayer reimbursements are computed at the same ceiling.
    function test_item3_relayerReimbursement_atMostBaseFeePlusTipCap() public {
        uint256 id = _create(alice, _timeSpec(T0 + 1 days));
        bytes memory sig = _signStatus(ALICE_KEY, alice, id, OP_PAUSE, 0, T0 + 1 hours, 1 ether);
        vm.fee(1 * GWEI);
        vm.txGasPrice(100_000 * GWEI);
        vm.prank(relayer);
        core.changeStatusBySig(id, OP_PAUSE, 0, T0 + 1 hours, 1 ether, sig);
        // a status change costs < 100k gas: at 3 gwei that is < 0.0003 ether (at the tx price: 10 ether)
        assertLe(core.balanceOf(relayer), 100_000 * 3 * GWEI, "reimbursed at base fee + tip cap");
    }

    // ------------------------------------------------------------ 4. batch position

    /// 256 call actions in one batch: the last pays no more gas than the second (memory is
    /// released between items). Before: the last paid ~17k more for the earlier items' memory.
    function test_item4_batchPosition_lastItemPaysOnlyItsOwn() public {
        Sink sink = new Sink();
        uint256 n = 256;
        uint256[] memory runs = new uint256[](n);
        WorkflowSpec memory s = _timeSpec(T0);
        (s.actionKind, s.target, s.amount, s.data) = (ACTION_CALL, address(sink), 0, abi.encodeCall(Sink.take, (new bytes(600))));
        s.gasLimit = 30_000;
        for (uint256 i; i < n; ++i) {
            runs[i] = _create(i % 2 == 0 ? alice : bob, s) << 96;
        }
        vm.recordLogs();
        vm.prank(executor);
        core.executeBatch{gas: 30_000_000}(runs);
        Executed[] memory ex = _executed(vm.getRecordedLogs());
        assertEq(ex.length, n, "all ran");
        assertTrue(ex[n - 2].success && ex[2].success, "succeeded");
        // items 2 and n-2 are alike (alice's, warm owner, warm proxy): exactly the same gas
        assertLe(ex[n - 2].gasUsed, ex[2].gasUsed, "the last items pay only their own memory");
        assertEq(sink.hits(), n, "every action ran once");
    }

    // ------------------------------------------------------------ 5. one owner cannot revert a batch

    /// Bob's call action burns its whole gas limit at inclusion (it did not when the executor
    /// simulated); the executor sized the transaction from the simulation. Alice's run behind
    /// it cannot get its gas: it is skipped (not consumed, not charged) and the batch stands.
    /// Before: NotEnoughGasForAction reverted the whole batch and the executor paid for it.
    function test_item5_oneOwnerCannotRevertTheBatch() public {
        MoodyTarget moody = new MoodyTarget();
        WorkflowSpec memory s = _timeSpec(T0);
        (s.actionKind, s.target, s.amount, s.data) = (ACTION_CALL, address(moody), 0, abi.encodeCall(MoodyTarget.act, ()));
        s.gasLimit = 1_000_000;
        uint256 attacker = _create(bob, s);
        WorkflowSpec memory v = _timeSpec(T0);
        v.gasLimit = 1_000_000;
        uint256 victim = _create(alice, v);
        uint256[] memory runs = new uint256[](2);
        runs[0] = attacker << 96;
        runs[1] = victim << 96;
        // the gas the simulation (moody disarmed) needed for both, + the largest single limit
        uint256 limit = 1_000_000;
        uint256 gas = 600_000 + limit + limit / 63 + 40_000;
        moody.arm(true);
        uint256 aliceBefore = core.balanceOf(alice);
        vm.recordLogs();
        vm.prank(executor);
        core.executeBatch{gas: gas}(runs); // does not revert
        VmLog[] memory logs = vm.getRecordedLogs();
        Executed memory e = _onlyExecuted(logs);
        assertEq(e.id, attacker, "the attacker's run happened (failed, and it paid for it)");
        assertTrue(!e.success, "burnt its limit");
        assertEq(_skipReason(logs), SKIP_OUT_OF_GAS, "the victim was skipped: out of gas");
        assertEq(_runCount(victim), 0, "not consumed");
        assertEq(core.balanceOf(alice), aliceBefore, "the victim paid nothing");
        // the next batch, sized from the sum of the limits, runs it
        moody.arm(false);
        vm.warp(T0 + 1);
        runs = new uint256[](1);
        runs[0] = victim << 96;
        vm.prank(executor);
        core.executeBatch{gas: 200_000 + 2 * (limit + limit / 63) + 40_000}(runs);
        assertEq(_runCount(victim), 1, "ran");
    }

    /// A call action with 4 KiB of stored calldata (the gas between the check and the call is
    /// largest): at every gas, either it runs with its full limit, or it is skipped with nothing
    /// consumed, debited or counted as a failure.
    function test_item5_largeCalldata_skipOrRun_neverStarved() public {
        Sink sink = new Sink();
        WorkflowSpec memory s = _timeSpec(T0);
        (s.actionKind, s.target, s.amount, s.data) = (ACTION_CALL, address(sink), 0, abi.encodeCall(Sink.take, (new bytes(4000))));
        s.gasLimit = 100_000;
        uint256 id = _create(alice, s);
        uint256 before = core.balanceOf(alice);
        bool sawSkip;
        uint256[] memory runs = new uint256[](1);
        runs[0] = id << 96;
        for (uint256 g = 150_000; g < 700_000; g += 2_000) {
            vm.recordLogs();
            vm.prank(executor);
            core.executeBatch{gas: g}(runs);
            VmLog[] memory logs = vm.getRecordedLogs();
            if (_countTopic(logs, RUN_EXECUTED) != 0) {
                assertTrue(_onlyExecuted(logs).success, "never a starved failure");
                break;
            }
            assertEq(_skipReason(logs), SKIP_OUT_OF_GAS, "out of gas");
            assertEq(_runCount(id), 0, "not consumed");
            assertEq(core.balanceOf(alice), before, "nothing charged or debited");
            assertEq(core.getWorkflow(id).failures, 0, "no failure counted");
            sawSkip = true;
        }
        assertTrue(sawSkip, "some gas was too little");
        assertEq(sink.hits(), 1, "ran exactly once");
    }

    // ------------------------------------------------------------ helpers

    function _signStatus(uint256 key, address owner, uint256 id, uint8 op, uint256 nonce, uint256 deadline, uint256 maxFee)
        internal
        returns (bytes memory)
    {
        bytes32 typehash =
            op == OP_PAUSE ? core.PAUSE_TYPEHASH() : op == OP_RESUME ? core.RESUME_TYPEHASH() : core.CANCEL_TYPEHASH();
        bytes32 structHash = keccak256(abi.encode(typehash, owner, id, nonce, deadline, maxFee));
        (uint8 v, bytes32 r, bytes32 sig) =
            vm.sign(key, keccak256(abi.encodePacked(hex"1901", core.domainSeparator(), structHash)));
        return abi.encodePacked(r, sig, v);
    }
}
