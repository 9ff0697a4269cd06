// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";

/// The cheatcodes this file needs besides Base's.
interface VmStorage {
    function record() external;
    function accesses(address target) external returns (bytes32[] memory reads, bytes32[] memory writes);
    function load(address target, bytes32 slot) external view returns (bytes32);
}

/// The packed workflow trigger: slot 1's last 112 bits are a union on the trigger kind (time
/// fields for TIME / INTERVAL; asset, comparator, threshold and cooldown for PRICE), and a price
/// trigger's optional time window lives in slot 3, read only when the comparator byte's
/// PRICE_WINDOW bit says it exists. None of it is visible outside: specs round-trip exactly.
contract TriggerEncodingTest is Base {
    VmStorage internal constant vms = VmStorage(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
    /// `_workflows` is storage slot 5 of Autometa (`forge inspect Autometa storageLayout`).
    uint256 internal constant WORKFLOWS_SLOT = 5;
    uint32 internal constant MAX_COOLDOWN = (1 << 24) - 1;

    function setUp() public override {
        super.setUp();
        _deposit(alice, 10 ether);
        vm.prank(admin);
        core.registerAsset(bytes32(type(uint256).max)); // the extreme asset id the specs use
    }

    function _slot(uint256 id, uint256 k) internal pure returns (bytes32) {
        return bytes32(uint256(keccak256(abi.encode(id, WORKFLOWS_SLOT))) + k);
    }

    /// Every spec field, as getWorkflow returns it, equals what was asked for.
    function _assertRoundTrip(uint256 id, WorkflowSpec memory s) internal view {
        WorkflowSpec memory v = core.getWorkflow(id).spec;
        assertEq(v.triggerKind, s.triggerKind, "triggerKind");
        assertEq(v.comparator, s.comparator, "comparator");
        assertEq(v.startTime, s.startTime, "startTime");
        assertEq(v.endTime, s.endTime, "endTime");
        assertEq(v.interval, s.interval, "interval");
        assertEq(v.priceUsd, s.priceUsd, "priceUsd");
        assertEq(v.asset, s.asset, "asset");
        assertEq(v.actionKind, s.actionKind, "actionKind");
        assertEq(v.target, s.target, "target");
        assertEq(v.token, s.token, "token");
        assertEq(v.amount, s.amount, "amount");
        assertEq(keccak256(v.data), keccak256(s.data), "data");
        assertEq(v.maxRuns, s.maxRuns, "maxRuns");
        assertEq(v.gasLimit, s.gasLimit, "gasLimit");
        assertEq(v.maxFeePerRun, s.maxFeePerRun, "maxFeePerRun");
        assertEq(core.hashSpec(v), core.hashSpec(s), "hash");
    }

    /// Extreme values in every field of each trigger kind.
    function _specs() internal view returns (WorkflowSpec[] memory out) {
        out = new WorkflowSpec[](9);
        out[0] = _timeSpec(type(uint40).max);
        out[1] = _intervalSpec(type(uint40).max - 1, type(uint32).max, type(uint40).max, type(uint32).max);
        out[2] = _intervalSpec(0, 1, 0, 7);
        out[3] = _priceSpec(ETH, COMPARATOR_BELOW, type(uint64).max); // no window, no cooldown
        out[4] = _priceSpec(NO_FEED, COMPARATOR_ABOVE, 1);
        out[4].interval = MAX_COOLDOWN;
        out[4].startTime = type(uint40).max; // window: start only
        out[5] = _priceSpec(ETH, COMPARATOR_ABOVE, 3000e8);
        out[5].endTime = type(uint40).max; // window: end only
        out[5].interval = 1;
        out[6] = _priceSpec(NO_FEED, COMPARATOR_BELOW, 42);
        (out[6].startTime, out[6].endTime, out[6].interval) = (uint40(T0 + 1), uint40(T0 + 2), 3);
        out[7] = _priceSpec(bytes32(type(uint256).max), COMPARATOR_ABOVE, type(uint64).max);
        out[7].interval = MAX_COOLDOWN;
        out[8] = _priceSpec(ETH, COMPARATOR_ABOVE, 3000e8);
        for (uint256 i; i < out.length; ++i) {
            out[i].maxRuns = out[i].triggerKind == TRIGGER_TIME ? 1 : out[i].maxRuns == 1 ? type(uint32).max : out[i].maxRuns;
            out[i].gasLimit = uint24(i % 2 == 0 ? 5_000_000 : 10_000);
            out[i].maxFeePerRun = i % 2 == 0 ? type(uint80).max : 1;
            out[i].amount = i % 3 == 0 ? type(uint96).max : 1;
        }
    }

    function test_roundTrip_everyTriggerKind_extremeValues() public {
        WorkflowSpec[] memory specs = _specs();
        for (uint256 i; i < specs.length; ++i) {
            uint256 id = _create(alice, specs[i]);
            _assertRoundTrip(id, specs[i]);
        }
        // and through workflowsOf
        WorkflowView[] memory page = core.workflowsOf(alice, 0, 100);
        assertEq(page.length, specs.length, "all listed");
        for (uint256 i; i < specs.length; ++i) {
            assertEq(core.hashSpec(page[i].spec), core.hashSpec(specs[i]), "workflowsOf round trip");
        }
    }

    function test_roundTrip_everyTriggerKind_everyAction() public {
        WorkflowSpec[] memory specs = _specs();
        Recorder rec = new Recorder();
        for (uint256 i; i < specs.length; ++i) {
            for (uint8 a = ACTION_NATIVE; a <= ACTION_CALL; ++a) {
                WorkflowSpec memory s = specs[i];
                s.actionKind = a;
                if (a == ACTION_ERC20) {
                    (s.target, s.token, s.amount) = (recipient, address(token), type(uint256).max);
                } else if (a == ACTION_CALL) {
                    (s.target, s.token, s.amount) = (address(rec), address(0), 0);
                    s.data = abi.encodeCall(Recorder.poke, (i));
                } else {
                    (s.target, s.token, s.amount, s.data) = (recipient, address(0), 1, "");
                }
                _assertRoundTrip(_create(alice, s), s);
            }
        }
    }

    /// Runs write slot 1 (failures) and slot 0; the trigger union must survive them.
    function test_roundTrip_survivesRunsAndFailures() public {
        WorkflowSpec memory s = _priceSpec(ETH, COMPARATOR_ABOVE, 3000e8);
        (s.startTime, s.endTime, s.interval, s.maxRuns) = (uint40(T0), uint40(T0 + 10_000), 100, 5);
        s.target = address(new Refuser());
        uint256 id = _create(alice, s);
        assertEq(_onlyExecuted(_exec(id, 0)).success ? 1 : 0, 0, "fails");
        assertEq(core.getWorkflow(id).failures, 1, "one failure");
        _assertRoundTrip(id, s);
        WorkflowSpec memory t = _priceSpec(ETH, COMPARATOR_ABOVE, 3000e8);
        (t.interval, t.maxRuns) = (MAX_COOLDOWN, 2);
        uint256 id2 = _create(alice, t);
        assertTrue(_onlyExecuted(_exec(id2, 0)).success, "runs");
        assertEq(_runCount(id2), 1, "consumed");
        _assertRoundTrip(id2, t);
    }

    // ------------------------------------------------------------ storage

    function test_storage_priceTriggerPacksIntoSlot1() public {
        WorkflowSpec memory s = _priceSpec(ETH, COMPARATOR_ABOVE, 0x0123456789abcdef);
        s.interval = 0xabcdef;
        uint256 id = _create(alice, s);
        uint256 s1 = uint256(vms.load(address(core), _slot(id, 1)));
        uint256 t = s1 >> 144;
        assertEq(uint16(t), core.assetId(ETH), "assetId");
        assertEq(uint8(t >> 16), COMPARATOR_ABOVE | 4, "comparator, no window bit, the oracle-required bit (ETH has a feed)");
        assertEq(uint64(t >> 24), 0x0123456789abcdef, "priceUsd");
        assertEq(uint24(t >> 88), 0xabcdef, "cooldown");
        assertEq(uint256(vms.load(address(core), _slot(id, 3))), 0, "no window stored");

        s.startTime = uint40(T0 + 5);
        s.endTime = uint40(T0 + 500);
        uint256 id2 = _create(alice, s);
        uint256 t2 = uint256(vms.load(address(core), _slot(id2, 1))) >> 144;
        assertEq(uint8(t2 >> 16), COMPARATOR_ABOVE | 2 | 4, "comparator with the window bit");
        uint256 s3 = uint256(vms.load(address(core), _slot(id2, 3)));
        assertEq(uint40(s3), T0 + 5, "window start");
        assertEq(uint40(s3 >> 40), T0 + 500, "window end");
    }

    function test_storage_timeTriggerPacksIntoSlot1() public {
        WorkflowSpec memory s = _intervalSpec(T0 + 7, 0x89abcdef, T0 + 0x1234567, 3);
        uint256 id = _create(alice, s);
        uint256 t = uint256(vms.load(address(core), _slot(id, 1))) >> 144;
        assertEq(uint40(t), T0 + 7, "startTime");
        assertEq(uint32(t >> 40), 0x89abcdef, "interval");
        assertEq(uint40(t >> 72), T0 + 0x1234567, "endTime");
        assertEq(uint256(vms.load(address(core), _slot(id, 3))), 0, "slot 3 unused");
    }

    function _readsSlot(uint256 id, bytes32 slot) internal returns (bool) {
        vms.record();
        _exec(id, core.getWorkflow(id).runCount);
        (bytes32[] memory reads,) = vms.accesses(address(core));
        for (uint256 i; i < reads.length; ++i) {
            if (reads[i] == slot) return true;
        }
        return false;
    }

    function test_priceRun_withoutWindow_neverReadsSlot3() public {
        uint256 id = _create(alice, _priceSpec(ETH, COMPARATOR_ABOVE, 3000e8));
        vms.record();
        Executed memory e = _onlyExecuted(_exec(id, 0));
        assertTrue(e.success, "ran");
        (bytes32[] memory reads,) = vms.accesses(address(core));
        for (uint256 i; i < reads.length; ++i) {
            assertTrue(reads[i] != _slot(id, 3), "slot 3 read");
        }
        assertTrue(_readsSlot(id, _slot(id, 1)), "slot 1 is read (the check above sees reads)");
        WorkflowSpec memory w = _priceSpec(ETH, COMPARATOR_ABOVE, 3000e8);
        w.endTime = uint40(T0 + 1000);
        uint256 id2 = _create(alice, w);
        assertTrue(_readsSlot(id2, _slot(id2, 3)), "a window is read");
    }

    // ------------------------------------------------------------ behaviour

    function test_priceWindow_notBefore_thenRuns_thenExpires() public {
        WorkflowSpec memory s = _priceSpec(ETH, COMPARATOR_ABOVE, 3000e8);
        (s.startTime, s.endTime, s.interval, s.maxRuns) = (uint40(T0 + 100), uint40(T0 + 1000), 300, 10);
        uint256 id = _create(alice, s);
        assertEq(_skipReason(_exec(id, 0)), SKIP_NOT_DUE, "not before startTime");
        vm.warp(T0 + 100);
        feed.updateAnswer(3250e8);
        assertTrue(_onlyExecuted(_exec(id, 0)).success, "in the window");
        vm.warp(T0 + 399);
        feed.updateAnswer(3250e8);
        assertEq(_skipReason(_exec(id, 1)), SKIP_NOT_DUE, "cooldown");
        vm.warp(T0 + 400);
        feed.updateAnswer(3250e8);
        assertTrue(_onlyExecuted(_exec(id, 1)).success, "after the cooldown");
        vm.warp(T0 + 1001);
        feed.updateAnswer(3250e8);
        VmLog[] memory logs = _exec(id, 2);
        assertEq(_skipReason(logs), SKIP_EXPIRED, "not after endTime");
        (uint8 status, uint8 reason) = _statusChange(logs);
        assertEq(status, STATUS_COMPLETED, "completed");
        assertEq(reason, CHANGE_BY_EXPIRY, "by expiry");
        assertEq(_runCount(id), 2, "two runs");
    }

    function test_priceWindow_endOnly_startsAtOnce() public {
        WorkflowSpec memory s = _priceSpec(ETH, COMPARATOR_ABOVE, 3000e8);
        s.endTime = uint40(T0 + 10);
        uint256 id = _create(alice, s);
        assertTrue(_onlyExecuted(_exec(id, 0)).success, "no start: at once");
    }

    /// The window bit shares the comparator byte: both comparators keep their meaning with a window.
    function test_priceWindow_comparatorsKeepMeaning() public {
        for (uint8 c = COMPARATOR_BELOW; c <= COMPARATOR_ABOVE; ++c) {
            for (uint256 windowed; windowed < 2; ++windowed) {
                // $3250 now: BELOW 3300 and ABOVE 3200 hold, BELOW 3200 and ABOVE 3300 do not
                uint64 holds = c == COMPARATOR_BELOW ? 3300e8 : 3200e8;
                uint64 fails = c == COMPARATOR_BELOW ? 3200e8 : 3300e8;
                WorkflowSpec memory yes = _priceSpec(ETH, c, holds);
                WorkflowSpec memory no = _priceSpec(ETH, c, fails);
                if (windowed == 1) {
                    (yes.startTime, yes.endTime) = (uint40(T0), uint40(T0 + 60));
                    (no.startTime, no.endTime) = (uint40(T0), uint40(T0 + 60));
                }
                Executed memory e = _onlyExecuted(_exec(_create(alice, yes), 0));
                assertTrue(e.success, "condition holds");
                assertEq(e.price, 3250e8, "price");
                assertEq(_skipReason(_exec(_create(alice, no), 0)), SKIP_CONDITION_FALSE, "condition false");
            }
        }
    }

    function test_priceWithoutWindow_cooldownUpToMax() public {
        WorkflowSpec memory s = _priceSpec(ETH, COMPARATOR_ABOVE, 3000e8);
        (s.interval, s.maxRuns) = (MAX_COOLDOWN, 2);
        uint256 id = _create(alice, s);
        assertTrue(_onlyExecuted(_exec(id, 0)).success, "first at once");
        vm.warp(T0 + MAX_COOLDOWN - 1);
        feed.updateAnswer(3250e8);
        assertEq(_skipReason(_exec(id, 1)), SKIP_NOT_DUE, "cooling down");
        vm.warp(T0 + MAX_COOLDOWN);
        feed.updateAnswer(3250e8);
        Executed memory e = _onlyExecuted(_exec(id, 1));
        assertTrue(e.success, "after the full cooldown");
        assertEq(e.status, STATUS_COMPLETED, "maxRuns");
    }

    // ------------------------------------------------------------ validation

    function test_invalid_priceCooldownAbove24Bits() public {
        WorkflowSpec memory s = _priceSpec(ETH, COMPARATOR_ABOVE, 3000e8);
        s.interval = MAX_COOLDOWN + 1;
        vm.expectRevert(abi.encodeWithSelector(InvalidSpec.selector, "interval"));
        vm.prank(alice);
        core.createWorkflow(s);
        s.interval = type(uint32).max;
        vm.expectRevert(abi.encodeWithSelector(InvalidSpec.selector, "interval"));
        vm.prank(alice);
        core.createWorkflow(s);
        s.interval = MAX_COOLDOWN;
        _assertRoundTrip(_create(alice, s), s);
    }

    function test_intervalTrigger_keepsFull32BitInterval() public {
        WorkflowSpec memory s = _intervalSpec(T0, MAX_COOLDOWN + 1, 0, 3);
        _assertRoundTrip(_create(alice, s), s);
        s.interval = type(uint32).max;
        _assertRoundTrip(_create(alice, s), s);
    }

    /// Any valid price spec round-trips exactly; a cooldown above 24 bits is the only new refusal.
    function testFuzz_priceRoundTrip(uint8 comparator, uint40 start, uint40 end, uint32 cooldown, uint64 price, bytes32 asset)
        public
    {
        if (asset == bytes32(0)) asset = ETH;
        vm.prank(admin);
        core.registerAsset(asset); // only registered assets can be priced (a no-op for ETH)
        WorkflowSpec memory s = _priceSpec(asset, comparator % 2, price == 0 ? 1 : price);
        s.startTime = start;
        s.endTime = end % 3 == 0 ? 0 : uint40(T0 + 1 + end % 1e9);
        if (s.endTime != 0 && s.endTime <= s.startTime) s.startTime = uint40(s.endTime - 1);
        s.interval = cooldown;
        vm.prank(alice);
        try core.createWorkflow(s) returns (uint256 id) {
            assertLe(cooldown, MAX_COOLDOWN, "accepted cooldown fits 24 bits");
            _assertRoundTrip(id, s);
        } catch (bytes memory err) {
            assertTrue(cooldown > MAX_COOLDOWN, "refused only for the cooldown");
            assertEq(keccak256(err), keccak256(abi.encodeWithSelector(InvalidSpec.selector, "interval")), "interval");
        }
    }
}
