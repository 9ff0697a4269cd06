// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";

/// WorkflowRegistry: creating workflows (every trigger × every action), every validation branch,
/// and the owner-only status transitions.
contract RegistryTest is Base {
    Recorder internal rec;

    function setUp() public override {
        super.setUp();
        rec = new Recorder();
    }

    // ------------------------------------------------------------ create: trigger × action

    function _trigger(uint8 kind) internal view returns (WorkflowSpec memory s) {
        if (kind == TRIGGER_TIME) return _timeSpec(T0 + 60);
        if (kind == TRIGGER_INTERVAL) return _intervalSpec(T0, 3600, 0, 10);
        return _priceSpec(ETH, COMPARATOR_BELOW, 3200e8);
    }

    function _withAction(WorkflowSpec memory s, uint8 kind) internal view returns (WorkflowSpec memory) {
        s.actionKind = kind;
        if (kind == ACTION_NATIVE) {
            s.target = recipient;
            s.amount = 0.1 ether;
        } else if (kind == ACTION_ERC20) {
            s.target = recipient;
            s.token = address(token);
            s.amount = 5e18;
        } else {
            s.target = address(rec);
            s.amount = 0.01 ether;
            s.data = abi.encodeCall(Recorder.poke, (7));
        }
        return s;
    }

    function test_create_everyTriggerTimesEveryAction() public {
        for (uint8 t = 0; t <= TRIGGER_PRICE; ++t) {
            for (uint8 a = 0; a <= ACTION_CALL; ++a) {
                WorkflowSpec memory s = _withAction(_trigger(t), a);
                uint256 id = _create(alice, s);
                WorkflowView memory v = core.getWorkflow(id);
                assertEq(v.owner, alice, "owner");
                assertEq(v.status, STATUS_ACTIVE, "active");
                assertEq(v.runCount, 0, "runCount");
                assertEq(v.spec.triggerKind, t, "triggerKind");
                assertEq(v.spec.actionKind, a, "actionKind");
                assertEq(v.spec.target, s.target, "target");
                assertEq(v.spec.token, s.token, "token");
                assertEq(v.spec.amount, s.amount, "amount");
                assertEq(keccak256(v.spec.data), keccak256(s.data), "data");
                assertEq(v.spec.asset, s.asset, "asset");
                assertEq(v.spec.priceUsd, s.priceUsd, "priceUsd");
                assertEq(v.spec.comparator, s.comparator, "comparator");
                assertEq(v.spec.startTime, s.startTime, "startTime");
                assertEq(v.spec.interval, s.interval, "interval");
                assertEq(v.spec.maxRuns, s.maxRuns, "maxRuns");
                assertEq(v.spec.gasLimit, s.gasLimit, "gasLimit");
                assertEq(v.spec.maxFeePerRun, s.maxFeePerRun, "maxFeePerRun");
                // the view re-hashes to what the owner would have signed
                assertEq(core.hashSpec(v.spec), core.hashSpec(s), "round trip");
            }
        }
        assertEq(core.workflowCount(), 9, "nine workflows");
        assertEq(core.workflowCountOf(alice), 9, "all alice's");
        WorkflowView[] memory page = core.workflowsOf(alice, 7, 5);
        assertEq(page.length, 2, "page clipped");
        assertEq(page[0].id, 8, "oldest first");
        assertEq(core.workflowsOf(alice, 9, 5).length, 0, "past the end");
    }

    function test_create_callAction_deploysOwnerProxyOnce() public {
        address predicted = core.proxyOf(alice);
        assertEq(predicted.code.length, 0, "no proxy yet");
        _create(alice, _withAction(_trigger(TRIGGER_TIME), ACTION_CALL));
        assertTrue(predicted.code.length != 0, "proxy deployed");
        _create(alice, _withAction(_trigger(TRIGGER_TIME), ACTION_CALL)); // no second deployment
        assertTrue(core.proxyOf(bob) != predicted, "one proxy per owner");
    }

    /// Issue 12 item 6: creating a price workflow no longer registers its asset — only the admin
    /// does (setFeed / registerAsset), so outsiders cannot exhaust the 65,535 asset ids.
    function test_create_priceOnUnregisteredAsset_refused_registersNothing() public {
        bytes32 fresh = bytes32("never-registered");
        uint16 before = core.assetId(NO_FEED);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(UnknownAsset.selector, fresh));
        core.createWorkflow(_priceSpec(fresh, COMPARATOR_ABOVE, 1e8));
        assertEq(core.assetId(fresh), 0, "not registered");
        // the attested asset the admin registered works
        _create(alice, _priceSpec(NO_FEED, COMPARATOR_ABOVE, 1e8));
        (uint16 id, address f,,) = core.assetInfo(NO_FEED);
        assertEq(id, before, "the admin's id");
        assertTrue(id != 0, "registered");
        assertEq(f, address(0), "no feed: attested");
    }

    function test_create_closedWhileExecutionPaused() public {
        vm.prank(admin);
        core.setPaused(true);
        vm.prank(alice);
        vm.expectRevert(ExecutionIsPaused.selector);
        core.createWorkflow(_timeSpec(T0 + 60));
    }

    // ------------------------------------------------------------ create: every InvalidSpec branch

    function _expectInvalid(WorkflowSpec memory s, string memory field) internal {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(InvalidSpec.selector, field));
        core.createWorkflow(s);
    }

    function test_invalid_triggerKind() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        s.triggerKind = TRIGGER_LOG + 1;
        _expectInvalid(s, "triggerKind");
    }

    function test_invalid_maxRunsZero() public {
        WorkflowSpec memory s = _intervalSpec(T0, 60, 0, 0);
        _expectInvalid(s, "maxRuns");
    }

    function test_invalid_endTimeNotAfterStart() public {
        _expectInvalid(_intervalSpec(T0 + 100, 60, T0 + 100, 5), "endTime");
    }

    function test_invalid_endTimeInThePast() public {
        WorkflowSpec memory s = _priceSpec(ETH, COMPARATOR_BELOW, 3200e8);
        s.endTime = uint40(T0); // not after now
        _expectInvalid(s, "endTime");
    }

    function test_invalid_timeWithoutStart() public {
        _expectInvalid(_timeSpec(0), "startTime");
    }

    function test_invalid_timeWithSeveralRuns() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        s.maxRuns = 2;
        _expectInvalid(s, "maxRuns");
    }

    function test_invalid_intervalZero() public {
        _expectInvalid(_intervalSpec(T0, 0, 0, 5), "interval");
    }

    function test_invalid_comparator() public {
        _expectInvalid(_priceSpec(ETH, 2, 3200e8), "comparator");
    }

    function test_invalid_priceZero() public {
        _expectInvalid(_priceSpec(ETH, COMPARATOR_BELOW, 0), "priceUsd");
    }

    function test_invalid_priceAssetZero() public {
        _expectInvalid(_priceSpec(bytes32(0), COMPARATOR_BELOW, 1e8), "asset");
    }

    function test_invalid_priceFieldsOnTimeTrigger() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        s.priceUsd = 1;
        _expectInvalid(s, "priceUsd");
        s = _timeSpec(T0 + 60);
        s.comparator = 1;
        _expectInvalid(s, "priceUsd");
        s = _intervalSpec(T0, 60, 0, 3);
        s.asset = ETH;
        _expectInvalid(s, "priceUsd");
    }

    function test_invalid_gasLimitBounds() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        s.gasLimit = 9_999;
        _expectInvalid(s, "gasLimit");
        s.gasLimit = 5_000_001;
        _expectInvalid(s, "gasLimit");
        s.gasLimit = 10_000;
        _create(alice, s); // bounds are inclusive
        s.gasLimit = 5_000_000;
        _create(alice, s);
    }

    function test_invalid_maxFeeZero() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        s.maxFeePerRun = 0;
        _expectInvalid(s, "maxFeePerRun");
    }

    function test_invalid_actionKind() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        s.actionKind = 3;
        _expectInvalid(s, "actionKind");
    }

    function test_invalid_targetZeroOrCore() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        s.target = address(0);
        _expectInvalid(s, "target");
        s.target = address(core);
        _expectInvalid(s, "target");
    }

    function test_invalid_erc20TokenNotContractOrCore() public {
        WorkflowSpec memory s = _withAction(_timeSpec(T0 + 60), ACTION_ERC20);
        s.token = address(0x1234);
        _expectInvalid(s, "token");
        s.token = address(core);
        _expectInvalid(s, "token");
    }

    function test_invalid_erc20AmountZero() public {
        WorkflowSpec memory s = _withAction(_timeSpec(T0 + 60), ACTION_ERC20);
        s.amount = 0;
        _expectInvalid(s, "amount");
    }

    function test_invalid_tokenOnNonErc20Action() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        s.token = address(token);
        _expectInvalid(s, "token");
    }

    function test_invalid_amountAboveUint96() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        s.amount = uint256(type(uint96).max) + 1;
        _expectInvalid(s, "amount");
    }

    function test_invalid_nativeAmountZero() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        s.amount = 0;
        _expectInvalid(s, "amount");
    }

    function test_invalid_callTargetWithoutCode() public {
        WorkflowSpec memory s = _withAction(_timeSpec(T0 + 60), ACTION_CALL);
        s.target = address(0x5555);
        _expectInvalid(s, "target");
    }

    function test_invalid_callDataTooLong() public {
        WorkflowSpec memory s = _withAction(_timeSpec(T0 + 60), ACTION_CALL);
        s.data = new bytes(4097);
        _expectInvalid(s, "data");
        s.data = new bytes(4096);
        _create(alice, s); // the limit itself is fine
    }

    function test_invalid_dataOnNonCallAction() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        s.data = hex"01";
        _expectInvalid(s, "data");
    }

    // ------------------------------------------------------------ status transitions

    function test_owner_pauseResumeCancel() public {
        uint256 id = _create(alice, _timeSpec(T0 + 60));
        vm.prank(alice);
        core.pauseWorkflow(id);
        assertEq(_status(id), STATUS_PAUSED, "paused");
        vm.prank(alice);
        core.resumeWorkflow(id);
        assertEq(_status(id), STATUS_ACTIVE, "resumed");
        vm.prank(alice);
        core.cancelWorkflow(id);
        assertEq(_status(id), STATUS_CANCELLED, "cancelled");
    }

    function test_cancel_fromPaused() public {
        uint256 id = _create(alice, _timeSpec(T0 + 60));
        vm.prank(alice);
        core.pauseWorkflow(id);
        vm.prank(alice);
        core.cancelWorkflow(id);
        assertEq(_status(id), STATUS_CANCELLED, "cancelled");
    }

    function test_nonOwner_cannotPauseResumeCancel() public {
        uint256 id = _create(alice, _timeSpec(T0 + 60));
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(NotWorkflowOwner.selector, id, bob));
        core.pauseWorkflow(id);
        vm.prank(alice);
        core.pauseWorkflow(id);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(NotWorkflowOwner.selector, id, bob));
        core.resumeWorkflow(id);
        vm.prank(admin); // not even the admin
        vm.expectRevert(abi.encodeWithSelector(NotWorkflowOwner.selector, id, admin));
        core.cancelWorkflow(id);
        vm.prank(executor);
        vm.expectRevert(abi.encodeWithSelector(NotWorkflowOwner.selector, id, executor));
        core.cancelWorkflow(id);
        assertEq(_status(id), STATUS_PAUSED, "unchanged");
    }

    function test_unknownWorkflow_reverts() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(UnknownWorkflow.selector, 42));
        core.pauseWorkflow(42);
        vm.expectRevert(abi.encodeWithSelector(UnknownWorkflow.selector, 42));
        core.getWorkflow(42);
    }

    function test_invalidTransitions() public {
        uint256 id = _create(alice, _timeSpec(T0 + 60));
        vm.startPrank(alice);
        vm.expectRevert(abi.encodeWithSelector(InvalidTransition.selector, id, STATUS_ACTIVE, OP_RESUME));
        core.resumeWorkflow(id);
        core.pauseWorkflow(id);
        vm.expectRevert(abi.encodeWithSelector(InvalidTransition.selector, id, STATUS_PAUSED, OP_PAUSE));
        core.pauseWorkflow(id);
        core.cancelWorkflow(id);
        vm.expectRevert(abi.encodeWithSelector(InvalidTransition.selector, id, STATUS_CANCELLED, OP_PAUSE));
        core.pauseWorkflow(id);
        vm.expectRevert(abi.encodeWithSelector(InvalidTransition.selector, id, STATUS_CANCELLED, OP_RESUME));
        core.resumeWorkflow(id);
        vm.expectRevert(abi.encodeWithSelector(InvalidTransition.selector, id, STATUS_CANCELLED, OP_CANCEL));
        core.cancelWorkflow(id);
        vm.stopPrank();
    }

    function test_completedWorkflow_cannotBeResumedOrCancelled() public {
        _deposit(alice, 1 ether);
        uint256 id = _create(alice, _timeSpec(T0));
        _exec(id, 0);
        assertEq(_status(id), STATUS_COMPLETED, "completed");
        vm.startPrank(alice);
        vm.expectRevert(abi.encodeWithSelector(InvalidTransition.selector, id, STATUS_COMPLETED, OP_RESUME));
        core.resumeWorkflow(id);
        vm.expectRevert(abi.encodeWithSelector(InvalidTransition.selector, id, STATUS_COMPLETED, OP_CANCEL));
        core.cancelWorkflow(id);
        vm.stopPrank();
    }

    function test_pauseAndCancel_workWhileExecutionPaused() public {
        uint256 id = _create(alice, _timeSpec(T0 + 60));
        uint256 id2 = _create(alice, _timeSpec(T0 + 60));
        vm.prank(admin);
        core.setPaused(true);
        vm.startPrank(alice);
        core.pauseWorkflow(id);
        core.resumeWorkflow(id);
        core.cancelWorkflow(id2);
        vm.stopPrank();
        assertEq(_status(id), STATUS_ACTIVE, "paused and resumed");
        assertEq(_status(id2), STATUS_CANCELLED, "cancelled");
    }
}
