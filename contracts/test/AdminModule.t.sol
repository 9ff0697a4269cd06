// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";

interface IOwnable {
    function owner() external view returns (address);
}

/// The admin functions run in AutometaAdmin through Autometa's fallback (delegatecall), on a
/// storage layout the module mirrors by hand: these fail when the two drift apart.
contract AdminModuleTest is Base {
    function test_moduleWritesWhatAutometaReads() public {
        // owner (Ownable, read by the module's onlyOwner) sits where the module expects it
        assertEq(address(uint160(uint256(vm.load(address(core), bytes32(uint256(14)))))), admin, "owner slot");
        assertEq(IOwnable(address(core)).owner(), admin, "owner");
        // a feed set by the module is what Autometa's own view and runs read
        MockV3Aggregator f = _newFeed(18, 1e18);
        _adminChange(abi.encodeCall(IAutometa.setFeed, (bytes32("dai"), address(f), 600)));
        (uint16 id, address feed_, uint32 maxAge, uint8 decimals) = core.assetInfo(bytes32("dai"));
        assertTrue(id != 0, "asset registered");
        assertEq(feed_, address(f), "feed");
        assertEq(maxAge, 600, "max age");
        assertEq(decimals, 18, "decimals");
        // the executor flag the module set is the one execute checks (setUp allowed `executor`)
        _deposit(alice, 1 ether);
        uint256 wf = _create(alice, _timeSpec(T0));
        assertTrue(_onlyExecuted(_exec(wf, 0)).success, "the module's executor runs");
        // a premium the module set is what the run charges with
        vm.prank(admin);
        core.setPremium(0);
        uint256 wf2 = _create(alice, _timeSpec(T0));
        assertEq(_onlyExecuted(_exec(wf2, 0)).premiumBps, 0, "premium read by the run");
        // a pause the module set stops runs
        vm.prank(admin);
        core.setPaused(true);
        vm.prank(executor);
        vm.expectRevert(ExecutionIsPaused.selector);
        core.execute(wf2, 1, 0);
    }

    function test_moduleCalledDirectly_hasNoOwner() public {
        address module = core.adminModule();
        vm.prank(admin);
        (bool ok,) = module.call(abi.encodeCall(IAutometa.setPaused, (true)));
        assertTrue(!ok, "the module alone has no admin");
        (bool paused,,) = core.config();
        assertTrue(!paused, "Autometa untouched");
    }

    function test_strangerCannotAdmin_throughTheFallback() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSignature("OwnableUnauthorizedAccount(address)", alice));
        core.setPaused(true);
    }
}
