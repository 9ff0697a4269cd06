// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";

/// Reverts unless it was given at least `need` gas: shows whether an action got its gas limit.
contract GasProbe {
    uint256 public hits;

    function probe(uint256 need, bytes calldata) external {
        if (gasleft() < need) revert("starved");
        hits += 1;
    }
}

/// Execution semantics: exactly once per run index, triggers checked on-chain, every action kind,
/// failures that refund and pause, batches that never revert for one item.
contract ExecutionTest is Base {
    Recorder internal rec;

    function setUp() public override {
        super.setUp();
        rec = new Recorder();
        _deposit(alice, 10 ether);
    }

    // ------------------------------------------------------------ exactly once

    function test_run_exactlyOncePerIndex() public {
        uint256 id = _create(alice, _intervalSpec(T0, 60, 0, 5));
        _exec(id, 0);
        assertEq(_runCount(id), 1, "ran");
        uint256 esc = core.balanceOf(alice);
        uint256 rcpt = recipient.balance;
        uint256 exBal = core.balanceOf(executor);
        vm.warp(T0 + 600); // even once due again, index 0 is done
        VmLog[] memory logs = _exec(id, 0);
        assertEq(_skipReason(logs), SKIP_RUN_DONE, "run done");
        assertEq(_countTopic(logs, RUN_EXECUTED), 0, "no execution");
        assertEq(core.balanceOf(alice), esc, "owner not charged");
        assertEq(recipient.balance, rcpt, "nothing sent");
        assertEq(core.balanceOf(executor), exBal, "no fee");
        assertEq(_runCount(id), 1, "runCount unchanged");
    }

    function test_run_doneIndex_ofCompletedWorkflow_isRunDone() public {
        uint256 id = _create(alice, _timeSpec(T0));
        _exec(id, 0);
        assertEq(_status(id), STATUS_COMPLETED, "completed");
        assertEq(_skipReason(_exec(id, 0)), SKIP_RUN_DONE, "replay of a done run says so");
        assertEq(_skipReason(_exec(id, 1)), SKIP_NOT_ACTIVE, "the next one: not active");
    }

    function test_run_indexAhead_isSkipped() public {
        uint256 id = _create(alice, _intervalSpec(T0, 60, 0, 5));
        VmLog[] memory logs = _exec(id, 1);
        assertEq(_skipReason(logs), SKIP_BAD_RUN_INDEX, "ahead");
        assertEq(_runCount(id), 0, "not consumed");
        assertEq(core.balanceOf(alice), 10 ether, "free");
    }

    function test_run_notActive_isSkipped() public {
        uint256 id = _create(alice, _timeSpec(T0));
        vm.prank(alice);
        core.pauseWorkflow(id);
        assertEq(_skipReason(_exec(id, 0)), SKIP_NOT_ACTIVE, "paused");
        vm.prank(alice);
        core.cancelWorkflow(id);
        assertEq(_skipReason(_exec(id, 0)), SKIP_NOT_ACTIVE, "cancelled");
        assertEq(_skipReason(_exec(999, 0)), SKIP_NOT_ACTIVE, "unknown id");
    }

    // ------------------------------------------------------------ time triggers

    function test_time_notDueBeforeStart_thenRunsOnceAndCompletes() public {
        uint256 id = _create(alice, _timeSpec(T0 + 100));
        vm.warp(T0 + 99);
        assertEq(_skipReason(_exec(id, 0)), SKIP_NOT_DUE, "not yet");
        vm.warp(T0 + 100);
        uint256 before = recipient.balance;
        VmLog[] memory logs = _exec(id, 0);
        Executed memory e = _onlyExecuted(logs);
        assertTrue(e.success, "success");
        assertEq(e.status, STATUS_COMPLETED, "completed");
        assertEq(e.source, SOURCE_NONE, "no price");
        assertEq(recipient.balance, before + 0.1 ether, "paid");
        assertEq(_status(id), STATUS_COMPLETED, "stored");
        (uint8 st, uint8 why) = _statusChange(logs);
        assertEq(st, STATUS_COMPLETED, "status event");
        assertEq(why, CHANGE_BY_COMPLETION, "by completion");
    }

    function test_interval_dueAtStart_thenEveryInterval_thenExpires() public {
        uint256 id = _create(alice, _intervalSpec(T0 + 10, 100, T0 + 350, 10));
        assertEq(_skipReason(_exec(id, 0)), SKIP_NOT_DUE, "before start");
        vm.warp(T0 + 10);
        assertTrue(_onlyExecuted(_exec(id, 0)).success, "run 0 at start");
        vm.warp(T0 + 109);
        assertEq(_skipReason(_exec(id, 1)), SKIP_NOT_DUE, "lastRun + interval not reached");
        vm.warp(T0 + 110);
        assertTrue(_onlyExecuted(_exec(id, 1)).success, "run 1");
        vm.warp(T0 + 250); // late: the next is due lastRun + interval = T0 + 350
        assertTrue(_onlyExecuted(_exec(id, 2)).success, "run 2 late");
        vm.warp(T0 + 349);
        assertEq(_skipReason(_exec(id, 3)), SKIP_NOT_DUE, "from lastRun");
        vm.warp(T0 + 351);
        VmLog[] memory logs = _exec(id, 3);
        assertEq(_skipReason(logs), SKIP_EXPIRED, "expired");
        (uint8 st, uint8 why) = _statusChange(logs);
        assertEq(st, STATUS_COMPLETED, "completed");
        assertEq(why, CHANGE_BY_EXPIRY, "by expiry");
        assertEq(_status(id), STATUS_COMPLETED, "stored");
        assertEq(_runCount(id), 3, "three runs");
    }

    function test_maxRuns_completes() public {
        uint256 id = _create(alice, _intervalSpec(T0, 60, 0, 2));
        _exec(id, 0);
        assertEq(_status(id), STATUS_ACTIVE, "still active");
        vm.warp(T0 + 60);
        Executed memory e = _onlyExecuted(_exec(id, 1));
        assertEq(e.status, STATUS_COMPLETED, "event says completed");
        assertEq(_status(id), STATUS_COMPLETED, "completed");
        vm.warp(T0 + 120);
        assertEq(_skipReason(_exec(id, 2)), SKIP_NOT_ACTIVE, "no third run");
        assertEq(_runCount(id), 2, "runCount == maxRuns");
    }

    // ------------------------------------------------------------ price triggers

    function test_price_below_seedExample() public {
        uint256 id = _create(alice, _priceSpec(ETH, COMPARATOR_BELOW, 3200e8));
        feed.updateAnswer(3200e8);
        assertEq(_skipReason(_exec(id, 0)), SKIP_CONDITION_FALSE, "3200 is not below 3200");
        feed.updateAnswer(319815000000); // $3198.15
        Executed memory e = _onlyExecuted(_exec(id, 0));
        assertTrue(e.success, "fires");
        assertEq(e.price, 319815000000, "price reported");
        assertEq(e.source, SOURCE_ORACLE, "from the feed");
    }

    function test_price_above() public {
        uint256 id = _create(alice, _priceSpec(ETH, COMPARATOR_ABOVE, 3300e8));
        assertEq(_skipReason(_exec(id, 0)), SKIP_CONDITION_FALSE, "3250 not above");
        feed.updateAnswer(3300e8);
        assertEq(_skipReason(_exec(id, 0)), SKIP_CONDITION_FALSE, "equal not above");
        feed.updateAnswer(3300e8 + 1);
        assertTrue(_onlyExecuted(_exec(id, 0)).success, "fires");
    }

    function test_price_staleFeed_isUnavailable() public {
        uint256 id = _create(alice, _priceSpec(ETH, COMPARATOR_ABOVE, 3000e8));
        vm.warp(T0 + 3601); // maxAge is one hour
        assertEq(_skipReason(_exec(id, 0)), SKIP_PRICE_UNAVAILABLE, "stale");
        feed.updateAnswer(3250e8);
        assertTrue(_onlyExecuted(_exec(id, 0)).success, "fresh again");
    }

    function test_price_nonPositiveOrFutureAnswer_isUnavailable() public {
        uint256 id = _create(alice, _priceSpec(ETH, COMPARATOR_BELOW, 3000e8));
        feed.updateAnswer(0);
        assertEq(_skipReason(_exec(id, 0)), SKIP_PRICE_UNAVAILABLE, "zero");
        feed.updateAnswer(-5);
        assertEq(_skipReason(_exec(id, 0)), SKIP_PRICE_UNAVAILABLE, "negative");
        feed.updateRoundData(9, 100e8, block.timestamp + 1, block.timestamp + 1);
        assertEq(_skipReason(_exec(id, 0)), SKIP_PRICE_UNAVAILABLE, "from the future");
        assertEq(_runCount(id), 0, "never ran");
    }

    function test_price_revertingFeed_isUnavailable() public {
        uint256 id = _create(alice, _priceSpec(ETH, COMPARATOR_BELOW, 3300e8));
        vm.etch(address(feed), hex"fe"); // the feed breaks
        assertEq(_skipReason(_exec(id, 0)), SKIP_PRICE_UNAVAILABLE, "broken feed");
    }

    function test_price_assetWithoutFeed_usesAttestedPrice() public {
        uint256 id = _create(alice, _priceSpec(NO_FEED, COMPARATOR_BELOW, 2e8));
        assertEq(_skipReason(_exec(id, 0, 0)), SKIP_PRICE_UNAVAILABLE, "no attestation");
        assertEq(_skipReason(_exec(id, 0, 2e8)), SKIP_CONDITION_FALSE, "attested, not below");
        Executed memory e = _onlyExecuted(_exec(id, 0, 1.5e8));
        assertTrue(e.success, "fires on attestation");
        assertEq(e.source, SOURCE_ATTESTED, "attested");
        assertEq(e.price, 1.5e8, "price");
    }

    function test_price_falseAttestation_ignoredForOracleAsset() public {
        uint256 id = _create(alice, _priceSpec(ETH, COMPARATOR_BELOW, 3200e8));
        VmLog[] memory logs = _exec(id, 0, 100e8); // executor claims $100; the feed says $3250
        assertEq(_skipReason(logs), SKIP_CONDITION_FALSE, "feed wins");
        assertEq(_runCount(id), 0, "not run");
    }

    function test_price_cooldown() public {
        WorkflowSpec memory s = _priceSpec(ETH, COMPARATOR_ABOVE, 3000e8);
        s.interval = 600;
        s.maxRuns = 3;
        uint256 id = _create(alice, s);
        assertTrue(_onlyExecuted(_exec(id, 0)).success, "first at once");
        vm.warp(T0 + 599);
        feed.updateAnswer(3250e8);
        assertEq(_skipReason(_exec(id, 1)), SKIP_NOT_DUE, "cooling down");
        vm.warp(T0 + 600);
        assertTrue(_onlyExecuted(_exec(id, 1)).success, "after cooldown");
    }

    function test_price_notBeforeStartTime() public {
        WorkflowSpec memory s = _priceSpec(ETH, COMPARATOR_ABOVE, 3000e8);
        s.startTime = uint40(T0 + 50);
        uint256 id = _create(alice, s);
        assertEq(_skipReason(_exec(id, 0)), SKIP_NOT_DUE, "not before start");
    }

    // ------------------------------------------------------------ escrow

    function test_insufficientEscrow_skipsWithoutConsuming() public {
        uint256 id = _create(bob, _timeSpec(T0)); // bob has no escrow
        VmLog[] memory logs = _exec(id, 0);
        assertEq(_skipReason(logs), SKIP_INSUFFICIENT_ESCROW, "skipped");
        assertEq(_runCount(id), 0, "not consumed");
        _deposit(bob, 0.1 ether); // the amount but not the fee
        assertEq(_skipReason(_exec(id, 0)), SKIP_INSUFFICIENT_ESCROW, "fee not covered");
        _deposit(bob, 0.01 ether);
        assertTrue(_onlyExecuted(_exec(id, 0)).success, "runs once funded");
    }

    function test_native_debitsAmountAndFee_fromOwnerOnly() public {
        _deposit(bob, 1 ether);
        uint256 id = _create(alice, _timeSpec(T0));
        uint256 before = recipient.balance;
        Executed memory e = _onlyExecuted(_exec(id, 0));
        assertEq(recipient.balance, before + 0.1 ether, "sent");
        assertEq(core.balanceOf(alice), 10 ether - 0.1 ether - e.fee, "owner debited amount + fee");
        assertEq(core.balanceOf(executor), e.fee, "executor credited");
        assertEq(core.balanceOf(bob), 1 ether, "others untouched");
        assertEq(address(core).balance, core.balanceOf(alice) + core.balanceOf(bob) + core.balanceOf(executor), "solvent");
    }

    // ------------------------------------------------------------ ERC-20 actions

    function _erc20Spec(address tok, uint256 amount) internal view returns (WorkflowSpec memory s) {
        s = _timeSpec(T0);
        s.actionKind = ACTION_ERC20;
        s.token = tok;
        s.amount = amount;
    }

    function test_erc20_viaAllowance() public {
        token.mint(alice, 100e18);
        vm.prank(alice);
        token.approve(address(core), 40e18);
        uint256 id = _create(alice, _erc20Spec(address(token), 40e18));
        Executed memory e = _onlyExecuted(_exec(id, 0));
        assertTrue(e.success, "success");
        assertEq(token.balanceOf(recipient), 40e18, "tokens moved");
        assertEq(token.balanceOf(alice), 60e18, "from alice");
        assertEq(core.balanceOf(alice), 10 ether - e.fee, "only the fee in coin");
    }

    function test_erc20_withoutAllowance_failsRun() public {
        token.mint(alice, 100e18);
        uint256 id = _create(alice, _erc20Spec(address(token), 40e18));
        VmLog[] memory logs = _exec(id, 0);
        Executed memory e = _onlyExecuted(logs);
        assertTrue(!e.success, "failed");
        assertTrue(_failReason(logs).length >= 4, "reason carried");
        assertEq(_runCount(id), 0, "not consumed");
        assertEq(token.balanceOf(recipient), 0, "nothing moved");
    }

    function test_erc20_tokenReturningFalse_failsRun() public {
        FalseToken ft = new FalseToken();
        uint256 id = _create(alice, _erc20Spec(address(ft), 1));
        Executed memory e = _onlyExecuted(_exec(id, 0));
        assertTrue(!e.success, "false is failure");
        assertEq(_runCount(id), 0, "not consumed");
        assertTrue(e.fee > 0, "fee still charged");
    }

    // ------------------------------------------------------------ contract-call actions

    function _callSpec(address target, uint256 value, bytes memory data) internal view returns (WorkflowSpec memory s) {
        s = _timeSpec(T0);
        s.actionKind = ACTION_CALL;
        s.target = target;
        s.amount = value;
        s.data = data;
        s.gasLimit = 200_000;
    }

    function test_call_comesFromOwnerProxy_withValueFromEscrow() public {
        uint256 id = _create(alice, _callSpec(address(rec), 0.2 ether, abi.encodeCall(Recorder.poke, (7))));
        Executed memory e = _onlyExecuted(_exec(id, 0));
        assertTrue(e.success, "success");
        assertEq(rec.lastSender(), core.proxyOf(alice), "msg.sender is alice's proxy");
        assertEq(rec.lastValue(), 0.2 ether, "value forwarded");
        assertEq(address(rec).balance, 0.2 ether, "value arrived");
        assertEq(core.balanceOf(alice), 10 ether - 0.2 ether - e.fee, "value + fee from escrow");
    }

    function test_call_reverting_refundsValue_chargesFee() public {
        uint256 id = _create(alice, _callSpec(address(rec), 0.2 ether, abi.encodeCall(Recorder.boom, ())));
        VmLog[] memory logs = _exec(id, 0);
        Executed memory e = _onlyExecuted(logs);
        assertTrue(!e.success, "failed");
        assertEq(keccak256(_failReason(logs)), keccak256(abi.encodeWithSignature("Error(string)", "boom")), "reason");
        assertEq(core.balanceOf(alice), 10 ether - e.fee, "value refunded, fee charged");
        assertEq(core.balanceOf(executor), e.fee, "executor paid for the attempt");
        assertEq(address(core).balance, core.balanceOf(alice) + core.balanceOf(executor), "solvent");
    }

    function test_call_largeCalldata_cannotBeStarved() public {
        // The worst case for the gas check: 4 KiB of calldata loaded from storage right before the call.
        GasProbe p = new GasProbe();
        WorkflowSpec memory s = _callSpec(address(p), 0, abi.encodeCall(GasProbe.probe, (150_000, new bytes(3900))));
        s.gasLimit = 200_000; // the proxy needs a little of it; the probe needs 150k
        uint256 id = _create(alice, s);
        bool done;
        for (uint256 g = 200_000; g < 1_200_000 && !done; g += 1_000) {
            vm.recordLogs();
            vm.prank(executor);
            try core.execute{gas: g}(id, 0, 0) {
                VmLog[] memory logs = vm.getRecordedLogs();
                Executed memory e = _onlyExecuted(logs);
                assertTrue(e.success, string.concat("starved with gas ", _str(g)));
                done = true;
            } catch (bytes memory err) {
                vm.getRecordedLogs();
                assertEq(bytes4(err), NotEnoughGasForAction.selector, "only ever the gas check");
            }
        }
        assertTrue(done, "ran at some gas");
        assertEq(p.hits(), 1, "probe hit once");
    }

    function test_call_proxyRejectsOthers() public {
        _create(alice, _callSpec(address(rec), 0, abi.encodeCall(Recorder.poke, (1))));
        address proxy = core.proxyOf(alice);
        (bool ok,) = proxy.call(abi.encodeWithSignature("forward(address,bytes)", address(rec), ""));
        assertTrue(!ok, "stranger cannot use the proxy");
        vm.prank(alice);
        (ok,) = proxy.call(abi.encodeWithSignature("forward(address,bytes)", address(rec), abi.encodeCall(Recorder.poke, (1))));
        assertTrue(ok, "the owner can");
        vm.prank(address(core)); // re-initialising is refused
        (ok,) = proxy.call(abi.encodeWithSignature("initialize(address)", bob));
        assertTrue(!ok, "no re-init");
    }

    // ------------------------------------------------------------ failures

    function test_failures_pauseAfterMax_resumeResets() public {
        Refuser r = new Refuser();
        WorkflowSpec memory s = _intervalSpec(T0, 60, 0, 10);
        s.target = address(r);
        uint256 id = _create(alice, s);
        uint256 fees;
        for (uint256 i; i < 2; ++i) {
            VmLog[] memory logs = _exec(id, 0);
            Executed memory e = _onlyExecuted(logs);
            assertTrue(!e.success, "fails");
            assertEq(e.status, STATUS_ACTIVE, "still active");
            assertEq(keccak256(_failReason(logs)), keccak256(abi.encodeWithSignature("Error(string)", "no thanks")), "why");
            fees += e.fee;
        }
        assertEq(core.getWorkflow(id).failures, 2, "two in a row");
        VmLog[] memory last = _exec(id, 0);
        Executed memory e3 = _onlyExecuted(last);
        fees += e3.fee;
        assertEq(e3.status, STATUS_PAUSED, "paused by failures");
        (uint8 st, uint8 why) = _statusChange(last);
        assertEq(st, STATUS_PAUSED, "event");
        assertEq(why, CHANGE_BY_FAILURES, "by failures");
        assertEq(_runCount(id), 0, "never consumed");
        assertEq(core.balanceOf(alice), 10 ether - fees, "amounts refunded, fees charged");
        assertEq(core.balanceOf(executor), fees, "executor paid");
        assertEq(_skipReason(_exec(id, 0)), SKIP_NOT_ACTIVE, "paused now");
        vm.prank(alice);
        core.resumeWorkflow(id);
        assertEq(core.getWorkflow(id).failures, 0, "resume resets");
    }

    function test_failures_resetBySuccess() public {
        WorkflowSpec memory s = _callSpec(address(rec), 0, abi.encodeCall(Recorder.boom, ()));
        s.triggerKind = TRIGGER_INTERVAL;
        s.interval = 60;
        s.maxRuns = 5;
        uint256 id = _create(alice, s);
        _exec(id, 0);
        assertEq(core.getWorkflow(id).failures, 1, "one failure");
        // the target gets fixed
        vm.etch(address(rec), hex""); // (a plain account accepts any call)
        assertTrue(_onlyExecuted(_exec(id, 0)).success, "now succeeds");
        assertEq(core.getWorkflow(id).failures, 0, "reset");
    }

    function test_batch_oneFailingItemNeverRevertsOthers() public {
        Refuser r = new Refuser();
        uint256 good1 = _create(alice, _timeSpec(T0));
        WorkflowSpec memory bad = _timeSpec(T0);
        bad.target = address(r);
        uint256 failing = _create(alice, bad);
        uint256 notDue = _create(alice, _timeSpec(T0 + 1000));
        uint256 good2 = _create(alice, _priceSpec(ETH, COMPARATOR_ABOVE, 3000e8));
        uint256[] memory runs = new uint256[](5);
        runs[0] = good1 << 96;
        runs[1] = failing << 96;
        runs[2] = notDue << 96;
        runs[3] = good2 << 96;
        runs[4] = good1 << 96; // a duplicate in the same batch runs once
        uint256 before = recipient.balance;
        vm.recordLogs();
        vm.prank(executor);
        core.executeBatch(runs);
        VmLog[] memory logs = vm.getRecordedLogs();
        Executed[] memory ex = _executed(logs);
        assertEq(ex.length, 3, "three attempts charged");
        uint256 fees;
        for (uint256 i; i < ex.length; ++i) {
            fees += ex[i].fee;
            assertTrue(ex[i].success == (ex[i].id != failing), "only the refuser failed");
        }
        assertEq(_countTopic(logs, RUN_SKIPPED), 2, "not-due and duplicate skipped");
        assertEq(recipient.balance, before + 0.2 ether, "two paid");
        assertEq(core.balanceOf(executor), fees, "fees summed to the executor");
        assertEq(core.balanceOf(alice), 10 ether - 0.2 ether - fees, "owner");
    }

    function test_batch_attestedPricePacking() public {
        uint256 id = _create(alice, _priceSpec(NO_FEED, COMPARATOR_BELOW, 2e8));
        uint256[] memory runs = new uint256[](1);
        runs[0] = (id << 96) | (uint256(0) << 64) | 1.25e8;
        vm.recordLogs();
        vm.prank(executor);
        core.executeBatch(runs);
        Executed memory e = _onlyExecuted(vm.getRecordedLogs());
        assertEq(e.price, 1.25e8, "attested price unpacked");
        assertEq(e.source, SOURCE_ATTESTED, "source");
    }

    /// A lone `execute` short of gas reverts (only its own run is at stake; eth_estimateGas
    /// keeps working); a batch item skips instead (below).
    function test_tooLittleGas_single_revertsNotEnoughGasForAction() public {
        WorkflowSpec memory s = _timeSpec(T0);
        s.target = address(new GasBurner());
        s.gasLimit = 1_000_000;
        uint256 id = _create(alice, s);
        vm.prank(executor);
        vm.expectRevert(abi.encodeWithSelector(NotEnoughGasForAction.selector, id, 1_000_000));
        core.execute{gas: 900_000}(id, 0, 0);
        assertEq(_runCount(id), 0, "nothing happened");
        assertEq(core.balanceOf(alice), 10 ether, "charged nothing");
        // with enough gas the action gets its full limit (and burns it: a failed run, not a revert)
        vm.prank(executor);
        core.execute{gas: 1_300_000}(id, 0, 0);
        assertEq(core.getWorkflow(id).failures, 1, "failed run recorded");
    }

    function test_batch_tooLittleGas_isASkip() public {
        WorkflowSpec memory s = _timeSpec(T0);
        s.gasLimit = 1_000_000;
        uint256 id = _create(alice, s);
        uint256[] memory runs = new uint256[](1);
        runs[0] = id << 96;
        vm.prank(executor);
        vm.recordLogs();
        core.executeBatch{gas: 800_000}(runs);
        assertEq(_skipReason(vm.getRecordedLogs()), SKIP_OUT_OF_GAS, "skipped: out of gas");
        assertEq(_runCount(id), 0, "not consumed");
    }
}
