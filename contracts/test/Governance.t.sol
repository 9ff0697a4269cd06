// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// A token whose transferFrom moves the tokens and then answers 2 (neither true nor false).
contract OddAnswerToken {
    mapping(address => uint256) public balanceOf;

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (uint256) {
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        return 2;
    }
}

/// A token whose transferFrom returns nothing (USDT-style): a success.
contract SilentToken {
    mapping(address => uint256) public balanceOf;

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function transferFrom(address from, address to, uint256 amount) external {
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
    }
}

/// Issue 12 items 6-9: asset registration, the admin's timelock and the oracle requirement,
/// revoking signatures, and SafeERC20 semantics. Each test failed on the code before the fix.
contract GovernanceTest is Base {
    function setUp() public override {
        super.setUp();
        _deposit(alice, 10 ether);
        _deposit(bob, 10 ether);
    }

    function _expectNotOwner(address who) internal {
        vm.prank(who);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, who));
    }

    // ------------------------------------------------------------ 6. asset ids

    function test_item6_registerAsset_onlyAdmin_badInput() public {
        _expectNotOwner(alice);
        core.registerAsset(bytes32("dogecoin"));
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(UnknownAsset.selector, bytes32(0)));
        core.registerAsset(bytes32(0));
        vm.prank(admin);
        uint16 id = core.registerAsset(bytes32("dogecoin"));
        vm.prank(admin);
        assertEq(core.registerAsset(bytes32("dogecoin")), id, "registering twice: the same id");
        _create(alice, _priceSpec(bytes32("dogecoin"), COMPARATOR_ABOVE, 1e8));
        assertTrue(!core.requiresOracle(core.workflowCount()), "attested asset: no oracle required");
    }

    /// Many price workflows on fresh asset names register nothing, so the admin can always
    /// register a new asset afterwards. Before: each one took an asset id.
    function test_item6_outsidersCannotExhaustAssetIds() public {
        for (uint256 i; i < 50; ++i) {
            vm.prank(alice);
            try core.createWorkflow(_priceSpec(bytes32(1000 + i), COMPARATOR_ABOVE, 1e8)) {
                fail("an unregistered asset was accepted");
            } catch {}
        }
        assertEq(core.assetId(bytes32(uint256(1049))), 0, "nothing registered");
        vm.prank(admin);
        core.setFeed(bytes32("new-coin"), address(_newFeed(8, 1e8)), 3600);
        assertEq(core.assetId(bytes32("new-coin")), 3, "the admin's next id: 3 (ethereum 1, obscure-coin 2)");
    }

    // ------------------------------------------------------------ 7. oracle required + timelock

    /// A workflow created on ETH (which has a feed) never fires on an attested price, even once
    /// the admin removed the feed. Before: setFeed(ETH, 0, 0) let the executor fire it at any price.
    function test_item7_oracleBackedWorkflow_neverFallsBackToAttested() public {
        uint256 id = _create(alice, _priceSpec(ETH, COMPARATOR_BELOW, 3000e8)); // feed: 3250, not due
        assertTrue(core.requiresOracle(id), "recorded: oracle required");
        _adminChange(abi.encodeCall(IAutometa.setFeed, (ETH, address(0), 0))); // the feed removed
        (, address f,,) = core.assetInfo(ETH);
        assertEq(f, address(0), "feed removed");
        VmLog[] memory logs = _exec(id, 0, 1e8); // "ETH is $1"
        assertEq(_skipReason(logs), SKIP_PRICE_UNAVAILABLE, "no attested price for an oracle workflow");
        assertEq(_runCount(id), 0, "never fired");
        assertEq(core.balanceOf(alice), 10 ether, "nothing paid");
        // a workflow created now (asset without a feed) is an attested one, as its owner chose
        uint256 later = _create(bob, _priceSpec(ETH, COMPARATOR_BELOW, 3000e8));
        assertTrue(!core.requiresOracle(later), "created without a feed");
    }

    /// Once workflows exist, setFeed, setExecutor (grant), a premium raise and a tip-cap raise
    /// wait `timelockDelay`; events announce them, views list them; the admin applies or cancels.
    function test_item7_adminChanges_waitInTheTimelock() public {
        _create(alice, _timeSpec(T0 + 1 days));
        MockV3Aggregator evil = _newFeed(8, 1e8);
        vm.startPrank(admin);
        vm.recordLogs();
        uint256 feedChange = core.setFeed(ETH, address(evil), 60);
        uint256 exChange = core.setExecutor(relayer, true);
        uint256 premChange = core.setPremium(5_000);
        uint256 tipChange = core.setMaxTip(10 gwei);
        vm.stopPrank();
        assertEq(_countTopic(vm.getRecordedLogs(), keccak256("ChangeQueued(uint256,uint8,bytes32,uint256,uint256)")), 4, "announced");
        assertTrue(feedChange != 0 && exChange != 0 && premChange != 0 && tipChange != 0, "all queued");
        uint256[] memory open = core.pendingChangeIds();
        assertEq(open.length, 4, "four pending");
        (uint8 kind, bytes32 key, uint256 value, uint256 eta) = core.pendingChange(feedChange);
        assertEq(kind, CHANGE_FEED, "kind");
        assertEq(key, ETH, "key");
        assertEq(value, uint256(uint160(address(evil))) | (uint256(60) << 160), "value");
        assertEq(eta, T0 + DELAY, "eta");
        // nothing changed yet
        (, address f,,) = core.assetInfo(ETH);
        assertEq(f, address(feed), "old feed");
        (,, bool isEx) = core.accountOf(relayer);
        assertTrue(!isEx, "not an executor yet");
        (, uint256 premium,) = core.config();
        assertEq(premium, 1_000, "old premium");
        // too early, a stranger, an unknown id
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(ChangeNotReady.selector, feedChange, T0 + DELAY));
        core.applyChange(feedChange);
        vm.warp(T0 + DELAY);
        _expectNotOwner(alice);
        core.applyChange(feedChange);
        _expectNotOwner(alice);
        core.cancelChange(feedChange);
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(UnknownChange.selector, 99));
        core.applyChange(99);
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(UnknownChange.selector, 99));
        core.cancelChange(99);
        // the admin cancels the feed change, applies the rest
        vm.startPrank(admin);
        core.cancelChange(feedChange);
        vm.expectRevert(abi.encodeWithSelector(UnknownChange.selector, feedChange));
        core.applyChange(feedChange);
        core.applyChange(exChange);
        core.applyChange(premChange);
        core.applyChange(tipChange);
        vm.expectRevert(abi.encodeWithSelector(UnknownChange.selector, exChange));
        core.applyChange(exChange); // once only
        vm.stopPrank();
        (, f,,) = core.assetInfo(ETH);
        assertEq(f, address(feed), "the cancelled feed never applied");
        (,, isEx) = core.accountOf(relayer);
        assertTrue(isEx, "executor after the delay");
        (, premium,) = core.config();
        assertEq(premium, 5_000, "premium after the delay");
        assertEq(core.maxTipPerGas(), 10 gwei, "tip cap after the delay");
        assertEq(core.pendingChangeIds().length, 0, "none pending");
    }

    /// Taking power away applies at once: revoking an executor, lowering the premium or tip cap.
    function test_item7_reductionsApplyAtOnce_badInputStillRefused() public {
        _create(alice, _timeSpec(T0 + 1 days));
        vm.startPrank(admin);
        assertEq(core.setExecutor(executor, false), 0, "revoke: at once");
        assertEq(core.setPremium(500), 0, "lower premium: at once");
        vm.expectRevert(abi.encodeWithSelector(PremiumTooHigh.selector, 5_001, 5_000));
        core.setPremium(5_001);
        vm.expectRevert(abi.encodeWithSelector(NotExecutor.selector, address(0)));
        core.setExecutor(address(0), true);
        vm.expectRevert(abi.encodeWithSelector(InvalidFeed.selector, ETH, address(0x1234)));
        core.setFeed(ETH, address(0x1234), 60);
        vm.stopPrank();
        (,, bool isEx) = core.accountOf(executor);
        assertTrue(!isEx, "revoked");
        (, uint256 premium,) = core.config();
        assertEq(premium, 500, "lowered");
        assertEq(core.pendingChangeIds().length, 0, "nothing queued");
    }

    function test_item7_renounceOwnership_disabled() public {
        vm.prank(admin);
        vm.expectRevert(RenounceDisabled.selector);
        core.renounceOwnership();
        _expectNotOwner(alice);
        core.renounceOwnership();
        assertEq(core.owner(), admin, "still owned");
    }

    function test_item7_timelockDelay_withinHardBounds() public {
        uint256 lo = core.MIN_TIMELOCK();
        uint256 hi = core.MAX_TIMELOCK();
        address module = _noL1FeeModule();
        vm.expectRevert(abi.encodeWithSelector(TimelockOutOfRange.selector, lo - 1));
        vm.deployCode("Autometa.sol:Autometa", abi.encode(admin, lo - 1, module));
        vm.expectRevert(abi.encodeWithSelector(TimelockOutOfRange.selector, hi + 1));
        vm.deployCode("Autometa.sol:Autometa", abi.encode(admin, hi + 1, module));
        IAutometa c = IAutometa(vm.deployCode("Autometa.sol:Autometa", abi.encode(admin, lo, module)));
        assertEq(c.timelockDelay(), lo, "the minimum is accepted");
        assertEq(core.timelockDelay(), DELAY, "the tests' delay");
    }

    // ------------------------------------------------------------ 8. revoking signatures

    function _signStatus(uint256 key, address owner, uint256 id, uint8 op, uint256 nonce) internal returns (bytes memory) {
        bytes32 typehash =
            op == OP_PAUSE ? core.PAUSE_TYPEHASH() : op == OP_RESUME ? core.RESUME_TYPEHASH() : core.CANCEL_TYPEHASH();
        bytes32 structHash = keccak256(abi.encode(typehash, owner, id, nonce, T0 + 1 days, 0));
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(key, keccak256(abi.encodePacked(hex"1901", core.domainSeparator(), structHash)));
        return abi.encodePacked(r, s, v);
    }

    /// Alice signed a RESUME she never sent, then paused directly: the old RESUME is dead.
    /// Before: it revived the workflow.
    function test_item8_directStatusChange_consumesTheNonce() public {
        uint256 id = _create(alice, _timeSpec(T0 + 1 days));
        vm.prank(alice);
        core.pauseWorkflow(id); // nonce 0 -> 1
        bytes memory resume = _signStatus(ALICE_KEY, alice, id, OP_RESUME, 1); // signed, not sent
        vm.prank(alice);
        core.resumeWorkflow(id); // 1 -> 2
        vm.prank(alice);
        core.pauseWorkflow(id); // 2 -> 3
        assertEq(core.nonces(alice), 3, "each direct change used a nonce");
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, alice, 3));
        core.changeStatusBySig(id, OP_RESUME, 1, T0 + 1 days, 0, resume);
        assertEq(_status(id), STATUS_PAUSED, "still paused");
    }

    function test_item8_invalidateNonces_revokesEveryOutstandingSignature() public {
        uint256 id = _create(alice, _timeSpec(T0 + 1 days));
        bytes memory now_ = _signStatus(ALICE_KEY, alice, id, OP_CANCEL, 0);
        bytes memory ahead = _signStatus(ALICE_KEY, alice, id, OP_CANCEL, 5); // prepared ahead
        vm.recordLogs();
        vm.prank(alice);
        core.invalidateNonces();
        assertEq(_countTopic(vm.getRecordedLogs(), keccak256("NoncesInvalidated(address,uint256)")), 1, "announced");
        uint256 jump = core.NONCE_JUMP();
        assertEq(core.nonces(alice), jump, "moved past anything prepared");
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, alice, jump));
        core.changeStatusBySig(id, OP_CANCEL, 0, T0 + 1 days, 0, now_);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, alice, jump));
        core.changeStatusBySig(id, OP_CANCEL, 5, T0 + 1 days, 0, ahead);
        assertEq(_status(id), STATUS_ACTIVE, "nothing relayed");
        // only the sender's own nonce moves; a fresh signature works
        vm.prank(bob);
        core.invalidateNonces();
        assertEq(core.nonces(alice), jump, "bob cannot move alice's nonce");
        bytes memory fresh = _signStatus(ALICE_KEY, alice, id, OP_CANCEL, jump);
        vm.prank(relayer);
        core.changeStatusBySig(id, OP_CANCEL, jump, T0 + 1 days, 0, fresh);
        assertEq(_status(id), STATUS_CANCELLED, "the fresh signature works");
    }

    // ------------------------------------------------------------ 9. SafeERC20 semantics

    function _tokenSpec(address tok) internal view returns (WorkflowSpec memory s) {
        s = _intervalSpec(T0, 60, 0, 5);
        (s.actionKind, s.target, s.token, s.amount) = (ACTION_ERC20, recipient, tok, 100);
    }

    /// A token that moves the tokens and answers 2: a failed run whose transfer is undone, so
    /// retries never pay twice. Before: each retry transferred again.
    function test_item9_nonBoolAnswer_failsAndIsUndone() public {
        OddAnswerToken odd = new OddAnswerToken();
        odd.mint(alice, 1_000);
        uint256 id = _create(alice, _tokenSpec(address(odd)));
        for (uint256 i; i < 2; ++i) {
            Executed memory e = _onlyExecuted(_exec(id, 0));
            assertTrue(!e.success, "a failed run");
        }
        assertEq(odd.balanceOf(recipient), 0, "nothing moved, on any attempt");
        assertEq(odd.balanceOf(alice), 1_000, "alice keeps her tokens");
        assertEq(_runCount(id), 0, "not consumed");
    }

    function test_item9_tokenReturningNothing_succeeds() public {
        SilentToken silent = new SilentToken();
        silent.mint(alice, 1_000);
        uint256 id = _create(alice, _tokenSpec(address(silent)));
        Executed memory e = _onlyExecuted(_exec(id, 0));
        assertTrue(e.success, "returning nothing is a success");
        assertEq(silent.balanceOf(recipient), 100, "moved once");
        assertEq(_skipReason(_exec(id, 0)), SKIP_RUN_DONE, "a replay is a skip");
        assertEq(silent.balanceOf(recipient), 100, "still once");
    }

    function test_item9_falseAnswer_fails_andTheWrapperIsInternal() public {
        uint256 id = _create(alice, _tokenSpec(address(new FalseToken())));
        assertTrue(!_onlyExecuted(_exec(id, 0)).success, "false fails");
        // nobody but the core itself may use the wrapper
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(NotExecutor.selector, alice));
        core.transferFromForRun(address(token), alice, bob, 1, 100_000);
        vm.prank(executor);
        vm.expectRevert(abi.encodeWithSelector(NotExecutor.selector, executor));
        core.transferFromForRun(address(token), alice, bob, 1, 100_000);
    }
}
