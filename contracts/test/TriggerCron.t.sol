// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";

interface ITriggerSpecs {
    function cronBits(string calldata cron) external pure returns (uint256);
    function cronNextTick(string calldata cron) external view returns (uint256);
    function cronLastTick(string calldata cron) external view returns (uint256);
}

/// CRON: due only at a tick the spec allows, once per tick; missed ticks run once.
contract TriggerCronTest is Base {
    // T0 = 2023-11-14 22:13:20 UTC, a Tuesday
    uint256 internal constant NOV15 = 1_700_006_400; // 2023-11-15 00:00 UTC (Wednesday)
    uint256 internal constant DAY = 86_400;

    function setUp() public override {
        super.setUp();
        _deposit(alice, 10 ether);
    }

    function _cronSpec(string memory cron) internal view returns (WorkflowSpec memory s) {
        s = _base();
        s.triggerKind = TRIGGER_CRON;
        s.triggerData = bytes(cron);
        s.maxRuns = 1000;
        s = _nativeAction(s, recipient, 0.01 ether);
    }

    function _expectInvalid(WorkflowSpec memory s, string memory field) internal {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(InvalidSpec.selector, field));
        core.createWorkflow(s);
    }

    function test_create_refusesWhatChainlinkRefuses() public {
        string[7] memory bad = ["", "0 9 * *", "61 * * * *", "a * * * *", "0 9 * * 7", "0 9  * * *", "0 9 31 2 *"];
        for (uint256 i; i < bad.length; ++i) {
            _expectInvalid(_cronSpec(bad[i]), "triggerData");
        }
        WorkflowSpec memory s = _cronSpec("0 9 * * *");
        s.interval = 60;
        _expectInvalid(s, "interval");
        uint256 id = _create(alice, _cronSpec("0 9 * * *"));
        assertEq(keccak256(core.getWorkflow(id).spec.triggerData), keccak256("0 9 * * *"), "view returns the spec");
    }

    function test_daily_oncePerTick_andNotBeforeCreation() public {
        uint256 id = _create(alice, _cronSpec("0 9 * * *"));
        uint64 first = uint64(NOV15 + 9 hours);
        vm.warp(first + 30);
        assertEq(_skipReason(_exec(id, 0, uint64(NOV15 - DAY + 9 hours))), SKIP_NOT_DUE, "a tick before creation");
        assertEq(_skipReason(_exec(id, 0, first + 60)), SKIP_NOT_DUE, "09:01 is not a tick");
        assertEq(_skipReason(_exec(id, 0, first + uint64(DAY))), SKIP_NOT_DUE, "tomorrow's tick is in the future");
        assertEq(_skipReason(_exec(id, 0, first + 1)), SKIP_NOT_DUE, "not a whole minute");
        uint256 before = core.balanceOf(alice);
        Executed memory e = _onlyExecuted(_exec(id, 0, first));
        assertTrue(e.success, "runs at its tick");
        assertLe(e.fee, MAX_FEE, "fee within maxFeePerRun");
        assertEq(core.balanceOf(alice), before - 0.01 ether - e.fee, "charged the fee it reports");
        assertEq(_skipReason(_exec(id, 1, first)), SKIP_NOT_DUE, "the same tick never runs twice");
        assertEq(_skipReason(_exec(id, 0, first)), SKIP_RUN_DONE, "nor the same run index");
    }

    function test_missedTicks_runOnce() public {
        uint256 id = _create(alice, _cronSpec("0 9 * * *"));
        uint64 first = uint64(NOV15 + 9 hours);
        vm.warp(first + 3 * DAY + 3 hours); // down for four ticks
        assertTrue(_onlyExecuted(_exec(id, 0, first + uint64(3 * DAY))).success, "the latest missed tick runs");
        for (uint256 k; k < 3; ++k) {
            assertEq(_skipReason(_exec(id, 1, uint64(first + k * DAY))), SKIP_NOT_DUE, "earlier missed ticks do not");
        }
        assertEq(_runCount(id), 1, "once");
    }

    function test_weekday_and_window() public {
        WorkflowSpec memory s = _cronSpec("30 8 * * 1"); // Mondays 08:30
        s.endTime = uint40(NOV15 + 30 * DAY);
        uint256 id = _create(alice, s);
        uint64 monday = uint64(NOV15 + 5 * DAY + 8 hours + 30 minutes); // 2023-11-20
        vm.warp(monday + DAY);
        assertEq(_skipReason(_exec(id, 0, monday + uint64(DAY))), SKIP_NOT_DUE, "a Tuesday");
        assertTrue(_onlyExecuted(_exec(id, 0, monday)).success, "a Monday");
        vm.warp(NOV15 + 31 * DAY);
        assertEq(_skipReason(_exec(id, 1, monday + uint64(28 * DAY))), SKIP_EXPIRED, "after endTime");
    }

    function test_batch_carriesTheTick() public {
        uint256 id = _create(alice, _cronSpec("*/15 * * * *"));
        uint256 tick = NOV15 + 45 minutes;
        vm.warp(tick + 5);
        uint256[] memory runs = new uint256[](1);
        runs[0] = (id << 96) | tick;
        vm.recordLogs();
        vm.prank(executor);
        core.executeBatch(runs);
        assertTrue(_onlyExecuted(vm.getRecordedLogs()).success, "a batch item names its tick in the price word");
    }

    function test_feeNeverAboveCap() public {
        WorkflowSpec memory s = _cronSpec("* * * * *");
        s.maxFeePerRun = 1e12;
        uint256 id = _create(alice, s);
        vm.warp(NOV15 + 60);
        _gasPrice(100 * GWEI);
        assertLe(_onlyExecuted(_exec(id, 0, uint64(NOV15 + 60))).fee, 1e12, "fee capped");
    }

    /// The run-time bit test agrees with Chainlink's own `Cron.lastTick`: the last tick at or
    /// before now runs, no minute after it (up to now) does.
    function testFuzz_agreesWithChainlinkLastTick(uint256 which, uint256 offset, uint256 k) public {
        string[8] memory specs = [
            "0 9 * * *",
            "*/15 * * * *",
            "30 8 * * 1",
            "0 0 1 * *",
            "5,35 */6 * * *",
            "0 12 * 1-6 *",
            "0 9-17 * * 1-5",
            "15 10 13 * 5"
        ];
        string memory cron = specs[which % specs.length];
        uint256 id = _create(alice, _cronSpec(cron));
        vm.warp(T0 + 400 days + offset % (400 days));
        uint256 last = ITriggerSpecs(core.triggerSpecs()).cronLastTick(cron);
        uint256 minutesSince = (block.timestamp - last) / 60;
        if (minutesSince > 0) {
            uint256 later = last + 60 * (1 + k % minutesSince);
            assertEq(_skipReason(_exec(id, 0, uint64(later))), SKIP_NOT_DUE, "a minute after Chainlink's last tick");
        }
        assertTrue(_onlyExecuted(_exec(id, 0, uint64(last))).success, "Chainlink's last tick runs");
    }
}
