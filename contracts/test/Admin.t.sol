// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// Admin surface: only the admin configures executors, feeds, premium, failure limit and the
/// emergency pause; ownership moves in two steps; only executors execute.
contract AdminTest is Base {
    function _expectNotOwner(address who) internal {
        vm.prank(who);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, who));
    }

    function test_adminFunctions_revertForNonAdmin() public {
        address[3] memory strangers = [alice, executor, relayer];
        for (uint256 i; i < strangers.length; ++i) {
            address who = strangers[i];
            _expectNotOwner(who);
            core.setExecutor(who, true);
            _expectNotOwner(who);
            core.setFeed(ETH, address(0), 0);
            _expectNotOwner(who);
            core.setPremium(0);
            _expectNotOwner(who);
            core.setMaxFailures(5);
            _expectNotOwner(who);
            core.setPaused(true);
            _expectNotOwner(who);
            core.transferOwnership(who);
        }
        (bool paused, uint256 premium, uint256 maxFailures) = core.config();
        assertTrue(!paused, "not paused");
        assertEq(premium, 1_000, "default premium");
        assertEq(maxFailures, 3, "default maxFailures");
    }

    function test_setExecutor_allowAndRevoke() public {
        vm.prank(admin);
        core.setExecutor(relayer, true);
        (,, bool isEx) = core.accountOf(relayer);
        assertTrue(isEx, "allowed");
        vm.prank(admin);
        core.setExecutor(relayer, false);
        (,, isEx) = core.accountOf(relayer);
        assertTrue(!isEx, "revoked");
    }

    function test_setPremium_bounds() public {
        vm.startPrank(admin);
        core.setPremium(5_000);
        (, uint256 premium,) = core.config();
        assertEq(premium, 5_000, "max premium accepted");
        core.setPremium(0);
        vm.expectRevert(abi.encodeWithSelector(PremiumTooHigh.selector, 5_001, 5_000));
        core.setPremium(5_001);
        vm.stopPrank();
    }

    function test_setMaxFailures_bounds() public {
        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(MaxFailuresOutOfRange.selector, 0));
        core.setMaxFailures(0);
        vm.expectRevert(abi.encodeWithSelector(MaxFailuresOutOfRange.selector, 21));
        core.setMaxFailures(21);
        core.setMaxFailures(1);
        core.setMaxFailures(20);
        vm.stopPrank();
        (,, uint256 maxFailures) = core.config();
        assertEq(maxFailures, 20, "set");
    }

    function test_setFeed_validation() public {
        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(InvalidFeed.selector, bytes32(0), address(feed)));
        core.setFeed(bytes32(0), address(feed), 60);
        vm.expectRevert(abi.encodeWithSelector(InvalidFeed.selector, ETH, address(feed)));
        core.setFeed(ETH, address(feed), 0); // a feed needs a max age
        vm.expectRevert(abi.encodeWithSelector(InvalidFeed.selector, ETH, address(0x1234)));
        core.setFeed(ETH, address(0x1234), 60); // not a contract
        MockV3Aggregator wide = _newFeed(37, 1);
        vm.expectRevert(abi.encodeWithSelector(InvalidFeed.selector, ETH, address(wide)));
        core.setFeed(ETH, address(wide), 60);
        // removing a feed makes the asset attested
        core.setFeed(ETH, address(0), 0);
        vm.stopPrank();
        (, address f,,) = core.assetInfo(ETH);
        assertEq(f, address(0), "removed");
        (bool ok, uint256 price, uint8 source) = core.currentPrice(ETH, 123e8);
        assertTrue(ok, "attested ok");
        assertEq(price, 123e8, "attested price");
        assertEq(source, SOURCE_ATTESTED, "source");
    }

    function test_setFeed_scalesDecimals() public {
        MockV3Aggregator f18 = _newFeed(18, 3000e18);
        MockV3Aggregator f6 = _newFeed(6, 3000e6);
        vm.startPrank(admin);
        core.setFeed(bytes32("a18"), address(f18), 60);
        core.setFeed(bytes32("a6"), address(f6), 60);
        vm.stopPrank();
        (, uint256 p18,) = core.currentPrice(bytes32("a18"), 0);
        (, uint256 p6,) = core.currentPrice(bytes32("a6"), 0);
        assertEq(p18, 3000e8, "18 decimals scaled down");
        assertEq(p6, 3000e8, "6 decimals scaled up");
    }

    function test_ownership_twoStep() public {
        vm.prank(admin);
        core.transferOwnership(alice);
        assertEq(core.owner(), admin, "not yet");
        assertEq(core.pendingOwner(), alice, "pending");
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, bob));
        core.acceptOwnership();
        vm.prank(alice);
        core.acceptOwnership();
        assertEq(core.owner(), alice, "moved");
        _expectNotOwner(admin);
        core.setPaused(true);
        vm.prank(alice);
        core.setPaused(true);
    }

    function test_execute_byNonExecutor_reverts() public {
        _deposit(alice, 1 ether);
        uint256 id = _create(alice, _timeSpec(T0));
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(NotExecutor.selector, alice));
        core.execute(id, 0, 0);
        vm.prank(admin); // the admin is not an executor either
        vm.expectRevert(abi.encodeWithSelector(NotExecutor.selector, admin));
        core.execute(id, 0, 0);
        uint256[] memory runs = new uint256[](1);
        runs[0] = id << 96;
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(NotExecutor.selector, relayer));
        core.executeBatch(runs);
        // a revoked executor is out
        vm.prank(admin);
        core.setExecutor(executor, false);
        vm.prank(executor);
        vm.expectRevert(abi.encodeWithSelector(NotExecutor.selector, executor));
        core.execute(id, 0, 0);
        assertEq(_runCount(id), 0, "nothing ran");
    }

    function test_executeBatch_badLength_reverts() public {
        vm.prank(executor);
        vm.expectRevert(abi.encodeWithSelector(BadBatch.selector, 0));
        core.executeBatch(new uint256[](0));
        vm.prank(executor);
        vm.expectRevert(abi.encodeWithSelector(BadBatch.selector, 257));
        core.executeBatch(new uint256[](257));
    }

    function test_pausedExecution_reverts_andResumes() public {
        _deposit(alice, 1 ether);
        uint256 id = _create(alice, _timeSpec(T0));
        vm.prank(admin);
        core.setPaused(true);
        vm.prank(executor);
        vm.expectRevert(ExecutionIsPaused.selector);
        core.execute(id, 0, 0);
        uint256[] memory runs = new uint256[](1);
        runs[0] = id << 96;
        vm.prank(executor);
        vm.expectRevert(ExecutionIsPaused.selector);
        core.executeBatch(runs);
        vm.prank(admin);
        core.setPaused(false);
        _exec(id, 0);
        assertEq(_runCount(id), 1, "runs after unpause");
    }
}
