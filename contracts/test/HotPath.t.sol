// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";

/// An admin contract that a workflow's call action can reach: while the action runs, it changes
/// the owner's Account word (isExecutor shares the slot with the balance) through an admin call.
contract ExecutorFlipper {
    IAutometa public core;
    address public who;

    function setCore(IAutometa core_, address who_) external {
        core = core_;
        who = who_;
    }

    function flip() external payable {
        core.setExecutor(who, false); // revoking applies at once (granting waits in the timelock)
    }
}

/// The executor's hot path writes the owner's Account word from what it read: before the action
/// from the word read at the escrow check (nothing runs in between), after it from a fresh read,
/// so a change made during the action (here: the admin setting the owner's executor flag) survives
/// and the balance is still exact.
contract HotPathTest is Base {
    function test_accountWord_rereadAfterTheAction() public {
        ExecutorFlipper flipper = new ExecutorFlipper();
        IAutometa c = _deployCore(address(flipper));
        flipper.setCore(c, alice);
        vm.startPrank(address(flipper));
        c.setExecutor(executor, true);
        c.setExecutor(alice, true); // no workflow yet: applies at once
        vm.stopPrank();

        WorkflowSpec memory s = _timeSpec(T0);
        (s.actionKind, s.target, s.amount, s.data) =
            (ACTION_CALL, address(flipper), 0.25 ether, abi.encodeCall(ExecutorFlipper.flip, ()));
        s.gasLimit = 100_000;
        vm.prank(alice);
        c.deposit{value: 2 ether}();
        vm.prank(alice);
        uint256 id = c.createWorkflow(s);
        (, , bool before) = c.accountOf(alice);
        assertTrue(before, "alice is an executor before the action");

        vm.recordLogs();
        vm.prank(executor);
        c.execute(id, 0, 0);
        Executed memory e = _onlyExecuted(vm.getRecordedLogs());
        assertTrue(e.success, "the action ran");
        (uint256 balance,, bool isExecutor) = c.accountOf(alice);
        assertTrue(!isExecutor, "the flag cleared during the action survives the fee debit");
        assertEq(balance, 2 ether - 0.25 ether - e.fee, "balance exact");
        assertEq(address(c).balance, balance + c.balanceOf(executor), "solvent");
    }
}
