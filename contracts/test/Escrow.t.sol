// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";

/// FeeEscrow: anyone deposits for anyone; only the owner of a balance withdraws it.
contract EscrowTest is Base {
    function test_deposit_creditsSender() public {
        vm.prank(alice);
        core.deposit{value: 1 ether}();
        assertEq(core.balanceOf(alice), 1 ether, "alice balance");
        assertEq(address(core).balance, 1 ether, "core holds it");
    }

    function test_depositFor_creditsUser() public {
        vm.prank(bob);
        core.depositFor{value: 2 ether}(alice);
        assertEq(core.balanceOf(alice), 2 ether, "alice credited");
        assertEq(core.balanceOf(bob), 0, "bob not credited");
    }

    function test_depositFor_zeroAddress_reverts() public {
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(TransferFailed.selector, address(0), 1 ether));
        core.depositFor{value: 1 ether}(address(0));
    }

    function test_receive_isDepositForSender() public {
        vm.prank(alice);
        (bool ok,) = address(core).call{value: 3 ether}("");
        assertTrue(ok, "plain transfer accepted");
        assertEq(core.balanceOf(alice), 3 ether, "credited to sender");
    }

    function test_withdraw_paysOwner() public {
        vm.prank(alice);
        core.deposit{value: 5 ether}();
        uint256 before = alice.balance;
        vm.prank(alice);
        core.withdraw(2 ether);
        assertEq(core.balanceOf(alice), 3 ether, "remaining");
        assertEq(alice.balance, before + 2 ether, "paid out");
    }

    function test_withdraw_moreThanBalance_reverts() public {
        vm.prank(alice);
        core.deposit{value: 1 ether}();
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(InsufficientEscrow.selector, alice, 1 ether, 1 ether + 1));
        core.withdraw(1 ether + 1);
    }

    function test_withdraw_zero_reverts() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(InsufficientEscrow.selector, alice, 0, 0));
        core.withdraw(0);
    }

    function test_withdraw_cannotTakeSomeoneElsesBalance() public {
        vm.prank(alice);
        core.deposit{value: 1 ether}();
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(InsufficientEscrow.selector, bob, 0, 1 ether));
        core.withdraw(1 ether);
        assertEq(core.balanceOf(alice), 1 ether, "untouched");
    }

    function test_withdrawTo_paysRecipient() public {
        vm.prank(alice);
        core.deposit{value: 1 ether}();
        uint256 before = recipient.balance;
        vm.prank(alice);
        core.withdrawTo(payable(recipient), 0.4 ether);
        assertEq(recipient.balance, before + 0.4 ether, "recipient paid");
        assertEq(core.balanceOf(alice), 0.6 ether, "debited");
    }

    function test_withdrawTo_zeroAddress_reverts() public {
        vm.prank(alice);
        core.deposit{value: 1 ether}();
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(TransferFailed.selector, address(0), 1 ether));
        core.withdrawTo(payable(address(0)), 1 ether);
    }

    function test_withdrawTo_refusingRecipient_revertsAndKeepsBalance() public {
        Refuser r = new Refuser();
        vm.prank(alice);
        core.deposit{value: 1 ether}();
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(TransferFailed.selector, address(r), 1 ether));
        core.withdrawTo(payable(address(r)), 1 ether);
        assertEq(core.balanceOf(alice), 1 ether, "kept");
    }

    function test_setMaxGasPrice_perUser() public {
        vm.prank(alice);
        core.setMaxGasPrice(7 gwei);
        (uint256 bal, uint256 cap, bool isEx) = core.accountOf(alice);
        assertEq(bal, 0, "balance");
        assertEq(cap, 7 gwei, "cap set");
        assertTrue(!isEx, "not executor");
        (, cap,) = core.accountOf(bob);
        assertEq(cap, 0, "bob untouched");
    }

    function test_withdraw_worksWhileExecutionPaused() public {
        vm.prank(alice);
        core.deposit{value: 1 ether}();
        vm.prank(admin);
        core.setPaused(true);
        vm.prank(alice);
        core.withdraw(1 ether);
        assertEq(core.balanceOf(alice), 0, "withdrawn while paused");
        vm.prank(alice);
        core.deposit{value: 1 ether}();
        assertEq(core.balanceOf(alice), 1 ether, "deposit while paused");
    }

    function test_executorFlagSurvivesDepositAndWithdraw() public {
        vm.deal(executor, 1 ether);
        vm.prank(executor);
        core.deposit{value: 1 ether}();
        vm.prank(executor);
        core.withdraw(1 ether);
        (,, bool isEx) = core.accountOf(executor);
        assertTrue(isEx, "still executor");
    }
}
