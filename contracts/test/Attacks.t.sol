// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

// Attacks that the per-module test files do not already cover (see docs/SECURITY.md for the
// full checklist): the wrong party on every state-changing function with the whole state
// compared before and after, a re-entry into *every* state-changing function from each kind of
// action, signature tricks (type confusion, shared nonces, malleability, the zero owner, a
// contract wallet that tries to write), cross-user spending through call actions, absurd gas
// prices against the owner's caps, and false attestations in a batch or against a stale feed.

interface IOwnerProxy {
    function core() external view returns (address);
    function owner() external view returns (address);
    function initialize(address owner_) external;
    function forward(address target, bytes calldata data) external payable returns (bytes memory);
    function sweep(address payable to, uint256 amount) external;
}

/// Re-enters the core with whatever calldata it is armed with, from any action kind (native
/// recipient, ERC-20 token, call target), and records the outcome without failing the action.
contract Hook {
    IAutometa public immutable core;
    bytes public payload;
    uint256 public value;
    bool public fired;
    bool public ok;
    bytes public err;

    constructor(IAutometa core_) {
        core = core_;
    }

    function arm(bytes calldata payload_, uint256 value_) external {
        (payload, value, fired, ok) = (payload_, value_, false, false);
        delete err;
    }

    function fund() external payable {
        core.deposit{value: msg.value}();
    }

    function createOwn(WorkflowSpec calldata s) external returns (uint256) {
        return core.createWorkflow(s);
    }

    function _fire() internal {
        if (payload.length == 0 && value == 0) return;
        fired = true;
        (ok, err) = address(core).call{value: value}(payload);
    }

    receive() external payable {
        _fire();
    }

    function transferFrom(address, address, uint256) external returns (bool) {
        _fire();
        return true;
    }

    function poke() external payable {
        _fire();
    }
}

/// An ERC-1271 wallet that accepts any signature but first tries to change state in the core
/// (its own gas-price cap: harmless, and visible afterwards if it got through).
contract GreedyWallet {
    IAutometa public immutable core;

    constructor(IAutometa core_) payable {
        core = core_;
    }

    function fund() external payable {
        core.deposit{value: msg.value}();
    }

    function isValidSignature(bytes32, bytes calldata) external returns (bytes4) {
        // asked in a STATICCALL context: any call into the core that writes must fail (the
        // result is ignored: the wallet cannot record it either)
        (bool done,) = address(core).call(abi.encodeCall(IAutometa.setMaxGasPrice, (123)));
        done;
        return 0x1626ba7e;
    }
}

/// Records whether it ever received coin: a withdrawal's recipient that re-enters.
contract Withdrawer {
    IAutometa public immutable core;
    bytes public payload;
    bool public ok;
    bytes public err;

    constructor(IAutometa core_) {
        core = core_;
    }

    function fund() external payable {
        core.deposit{value: msg.value}();
    }

    function withdraw(uint256 amount, bytes calldata payload_) external {
        payload = payload_;
        core.withdraw(amount);
    }

    receive() external payable {
        if (payload.length != 0) (ok, err) = address(core).call(payload);
    }
}

contract AttacksTest is Base {
    bytes4 internal constant REENTRANT = bytes4(keccak256("ReentrancyGuardReentrantCall()"));
    bytes4 internal constant PROXY_NOT_AUTHORIZED = bytes4(keccak256("NotAuthorized(address)"));
    uint256 internal constant RELAYER_CAP = 0.001 ether;
    uint256 internal constant EVE_KEY = 0xE5E;
    address internal eve;

    function setUp() public override {
        super.setUp();
        eve = vm.addr(EVE_KEY);
        vm.deal(eve, 10 ether);
        _deposit(alice, 10 ether);
        _deposit(bob, 10 ether);
        _deposit(eve, 1 ether);
    }

    // ================================================================ helpers

    function _digest(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", core.domainSeparator(), structHash));
    }

    function _createHash(address owner, WorkflowSpec memory s, uint256 nonce, uint256 deadline, uint256 maxFee)
        internal
        view
        returns (bytes32)
    {
        return _digest(keccak256(abi.encode(core.CREATE_TYPEHASH(), owner, core.hashSpec(s), nonce, deadline, maxFee)));
    }

    function _statusHash(address owner, uint256 id, uint8 op, uint256 nonce, uint256 deadline, uint256 maxFee)
        internal
        view
        returns (bytes32)
    {
        bytes32 typehash =
            op == OP_PAUSE ? core.PAUSE_TYPEHASH() : op == OP_RESUME ? core.RESUME_TYPEHASH() : core.CANCEL_TYPEHASH();
        return _digest(keccak256(abi.encode(typehash, owner, id, nonce, deadline, maxFee)));
    }

    function _sign(uint256 key, bytes32 digest) internal returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _callSpec(address target, uint256 value, bytes memory data) internal view returns (WorkflowSpec memory s) {
        s = _timeSpec(T0);
        s.actionKind = ACTION_CALL;
        s.target = target;
        s.amount = value;
        s.data = data;
        s.gasLimit = 300_000;
    }

    /// Everything an attack could change, as one hash: balances, accounts, nonces, workflows,
    /// config, ownership, and the coin the core holds.
    function _snapshot(address[] memory who, uint256[] memory ids) internal view returns (bytes32 h) {
        (bool paused, uint256 premium, uint256 maxFailures) = core.config();
        h = keccak256(
            abi.encode(
                paused, premium, maxFailures, core.owner(), core.pendingOwner(), core.workflowCount(), address(core).balance
            )
        );
        for (uint256 i; i < who.length; ++i) {
            h = keccak256(abi.encode(h, _accountHash(who[i])));
        }
        for (uint256 i; i < ids.length; ++i) {
            h = keccak256(abi.encode(h, core.getWorkflow(ids[i])));
        }
        (uint16 aid, address f, uint32 maxAge, uint8 dec) = core.assetInfo(ETH);
        h = keccak256(abi.encode(h, aid, f, maxAge, dec));
    }

    function _accountHash(address who) internal view returns (bytes32) {
        (uint256 bal, uint256 cap, bool isEx) = core.accountOf(who);
        return keccak256(abi.encode(bal, cap, isEx, core.nonces(who), core.workflowCountOf(who), who.balance));
    }

    function _expectFails(address caller, bytes memory data, bytes4 selector, string memory what) internal {
        vm.prank(caller);
        (bool ok, bytes memory ret) = address(core).call(data);
        assertTrue(!ok, string.concat(what, ": went through"));
        if (selector != bytes4(0)) assertTrue(bytes4(ret) == selector, string.concat(what, ": wrong error"));
    }

    function _refuseAdminCalls(address a) internal {
        bytes4 e = Ownable.OwnableUnauthorizedAccount.selector;
        _expectFails(a, abi.encodeCall(IAutometa.setExecutor, (a, true)), e, "setExecutor");
        _expectFails(a, abi.encodeCall(IAutometa.setFeed, (ETH, address(0), 0)), e, "setFeed");
        _expectFails(a, abi.encodeCall(IAutometa.setPremium, (5_000)), e, "setPremium");
        _expectFails(a, abi.encodeCall(IAutometa.setMaxFailures, (20)), e, "setMaxFailures");
        _expectFails(a, abi.encodeCall(IAutometa.setPaused, (true)), e, "setPaused");
        _expectFails(a, abi.encodeCall(IAutometa.transferOwnership, (a)), e, "transferOwnership");
        _expectFails(a, abi.encodeCall(IAutometa.renounceOwnership, ()), e, "renounceOwnership");
        _expectFails(a, abi.encodeCall(IAutometa.acceptOwnership, ()), e, "acceptOwnership (none pending)");
    }

    function _refuseExecution(address a, uint256 id) internal {
        uint256[] memory runs = new uint256[](1);
        runs[0] = id << 96;
        _expectFails(a, abi.encodeCall(IAutometa.execute, (id, 0, 0)), NotExecutor.selector, "execute");
        _expectFails(a, abi.encodeCall(IAutometa.executeBatch, (runs)), NotExecutor.selector, "executeBatch");
    }

    function _refuseOwnerCalls(address a, uint256 id, uint256 paused) internal {
        bytes4 e = NotWorkflowOwner.selector;
        _expectFails(a, abi.encodeCall(IAutometa.pauseWorkflow, (id)), e, "pauseWorkflow");
        _expectFails(a, abi.encodeCall(IAutometa.cancelWorkflow, (id)), e, "cancelWorkflow");
        _expectFails(a, abi.encodeCall(IAutometa.resumeWorkflow, (paused)), e, "resumeWorkflow");
        _expectFails(a, abi.encodeCall(IAutometa.cancelWorkflow, (paused)), e, "cancelWorkflow (paused)");
        // a relayed change with a stranger's signature
        bytes memory sig = _sign(EVE_KEY, _statusHash(alice, id, OP_CANCEL, 0, T0 + 1 hours, 0));
        _expectFails(
            a,
            abi.encodeCall(IAutometa.changeStatusBySig, (id, OP_CANCEL, 0, T0 + 1 hours, 0, sig)),
            InvalidSignature.selector,
            "changeStatusBySig"
        );
        // creating a workflow in alice's name (her escrow would pay the relayer)
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        bytes memory csig = _sign(EVE_KEY, _createHash(alice, s, 0, T0 + 1 hours, RELAYER_CAP));
        _expectFails(
            a,
            abi.encodeCall(IAutometa.createWorkflowFor, (alice, s, 0, T0 + 1 hours, RELAYER_CAP, csig)),
            InvalidSignature.selector,
            "createWorkflowFor"
        );
    }

    // ================================================================ the wrong party

    /// Every state-changing function of the ABI that is restricted, called by everyone who must
    /// not call it: it reverts with the access error and nothing at all changes.
    function test_wrongParty_everyRestrictedFunction_changesNothing() public {
        uint256 id = _create(alice, _timeSpec(T0 + 1 days));
        uint256 paused = _create(alice, _intervalSpec(T0, 60, 0, 10));
        vm.prank(alice);
        core.pauseWorkflow(paused);
        address[] memory who = new address[](6);
        (who[0], who[1], who[2], who[3], who[4], who[5]) = (alice, bob, eve, admin, executor, relayer);
        uint256[] memory ids = new uint256[](2);
        (ids[0], ids[1]) = (id, paused);
        bytes32 before = _snapshot(who, ids);

        // admin-only (Ownable2Step): everyone but the admin, including executors and relayers
        address[4] memory notAdmin = [alice, eve, executor, relayer];
        for (uint256 i; i < notAdmin.length; ++i) {
            _refuseAdminCalls(notAdmin[i]);
        }
        // executor-only: the owner of the workflow, the admin, a relayer, a stranger
        address[4] memory notExecutor = [alice, admin, relayer, eve];
        for (uint256 i; i < notExecutor.length; ++i) {
            _refuseExecution(notExecutor[i], id);
        }
        // workflow-owner-only: everyone but alice, the admin and the executors included
        address[4] memory notOwner = [bob, eve, admin, executor];
        for (uint256 i; i < notOwner.length; ++i) {
            _refuseOwnerCalls(notOwner[i], id, paused);
        }
        // balance-owner-only: a withdrawal beyond one's own balance, for anyone's balance
        _expectFails(eve, abi.encodeCall(IAutometa.withdraw, (1 ether + 1)), InsufficientEscrow.selector, "withdraw");
        _expectFails(
            eve, abi.encodeCall(IAutometa.withdrawTo, (payable(eve), 2 ether)), InsufficientEscrow.selector, "withdrawTo"
        );
        _expectFails(admin, abi.encodeCall(IAutometa.withdraw, (1)), InsufficientEscrow.selector, "admin withdraw");
        _expectFails(
            executor, abi.encodeCall(IAutometa.withdrawTo, (payable(executor), 1)), InsufficientEscrow.selector, "exec"
        );
        assertEq(_snapshot(who, ids), before, "nothing changed");

        // setMaxGasPrice and deposits are open to all but touch only the caller's own account
        vm.prank(eve);
        core.setMaxGasPrice(7);
        (, uint256 aliceCap,) = core.accountOf(alice);
        assertEq(aliceCap, 0, "alice's cap untouched by eve's call");
    }

    /// OwnerProxy: only the core (running the owner's workflow) or the owner makes it call; only
    /// the owner sweeps; nobody re-initialises it — neither a clone nor the implementation.
    function test_wrongParty_ownerProxy() public {
        Recorder rec = new Recorder();
        _create(alice, _callSpec(address(rec), 0, abi.encodeCall(Recorder.poke, (1))));
        IOwnerProxy proxy = IOwnerProxy(core.proxyOf(alice));
        IOwnerProxy impl = IOwnerProxy(core.proxyImplementation());
        assertEq(proxy.owner(), alice, "alice's proxy");
        assertEq(proxy.core(), address(core), "bound to the core");
        vm.deal(address(proxy), 1 ether);

        address[5] memory strangers = [bob, eve, admin, executor, relayer];
        for (uint256 i; i < strangers.length; ++i) {
            address a = strangers[i];
            vm.prank(a);
            vm.expectRevert(abi.encodeWithSelector(PROXY_NOT_AUTHORIZED, a));
            proxy.forward(address(rec), abi.encodeCall(Recorder.poke, (2)));
            vm.prank(a);
            vm.expectRevert(abi.encodeWithSelector(PROXY_NOT_AUTHORIZED, a));
            proxy.sweep(payable(a), 1 ether);
            vm.prank(a);
            vm.expectRevert(abi.encodeWithSelector(PROXY_NOT_AUTHORIZED, a));
            proxy.initialize(a);
            // the implementation has no owner: nobody at all may use it
            vm.prank(a);
            vm.expectRevert(abi.encodeWithSelector(PROXY_NOT_AUTHORIZED, a));
            impl.forward(address(rec), "");
            vm.prank(a);
            vm.expectRevert(abi.encodeWithSelector(PROXY_NOT_AUTHORIZED, a));
            impl.sweep(payable(a), 0);
            vm.prank(a);
            vm.expectRevert(abi.encodeWithSelector(PROXY_NOT_AUTHORIZED, a));
            impl.initialize(a);
        }
        // the core itself may make it call, but never sweep it or re-initialise it
        vm.prank(address(core));
        vm.expectRevert(abi.encodeWithSelector(PROXY_NOT_AUTHORIZED, address(core)));
        proxy.sweep(payable(address(core)), 1 ether);
        vm.prank(address(core));
        vm.expectRevert(bytes4(keccak256("AlreadyInitialized()")));
        proxy.initialize(eve);
        assertEq(address(proxy).balance, 1 ether, "the proxy's coin stayed");
        assertEq(rec.calls(), 0, "nothing was called");
        assertEq(proxy.owner(), alice, "still alice's");
        assertEq(impl.owner(), address(0), "the implementation stays ownerless");
        // alice may
        vm.prank(alice);
        proxy.sweep(payable(alice), 1 ether);
        assertEq(address(proxy).balance, 0, "alice swept");
    }

    // ================================================================ signatures

    /// Alice's create and pause intents share one nonce sequence: once one is used, the other
    /// with the same nonce is dead, and a signature of one type never passes as another.
    function test_sig_typeConfusion_andSharedNonce() public {
        uint256 id = _create(alice, _intervalSpec(T0, 60, 0, 10));
        uint256 deadline = T0 + 1 hours;
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        bytes memory createSig = _sign(ALICE_KEY, _createHash(alice, s, 0, deadline, RELAYER_CAP));
        bytes memory pauseSig = _sign(ALICE_KEY, _statusHash(alice, id, OP_PAUSE, 0, deadline, RELAYER_CAP));
        // a create signature presented as a pause / resume / cancel
        for (uint8 op; op <= OP_CANCEL; ++op) {
            vm.prank(relayer);
            vm.expectRevert(InvalidSignature.selector);
            core.changeStatusBySig(id, op, 0, deadline, RELAYER_CAP, createSig);
        }
        // the pause signature, with every signed term changed by the relayer
        vm.startPrank(relayer);
        vm.expectRevert(InvalidSignature.selector);
        core.changeStatusBySig(id, OP_PAUSE, 0, deadline, RELAYER_CAP + 1, pauseSig);
        vm.expectRevert(InvalidSignature.selector);
        core.changeStatusBySig(id, OP_PAUSE, 0, deadline + 1, RELAYER_CAP, pauseSig);
        vm.expectRevert(InvalidSignature.selector);
        core.changeStatusBySig(id, OP_PAUSE, 1, deadline, RELAYER_CAP, pauseSig);
        vm.expectRevert(abi.encodeWithSelector(InvalidOp.selector, 3));
        core.changeStatusBySig(id, 3, 0, deadline, RELAYER_CAP, pauseSig);
        // the create signature with its terms changed, or for another owner
        vm.expectRevert(InvalidSignature.selector);
        core.createWorkflowFor(alice, s, 0, deadline, RELAYER_CAP * 100, createSig);
        vm.expectRevert(InvalidSignature.selector);
        core.createWorkflowFor(bob, s, 0, deadline, RELAYER_CAP, createSig);
        // use the pause: the create with the same nonce is dead
        core.changeStatusBySig(id, OP_PAUSE, 0, deadline, RELAYER_CAP, pauseSig);
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, alice, 1));
        core.createWorkflowFor(alice, s, 0, deadline, RELAYER_CAP, createSig);
        vm.stopPrank();
        assertEq(_status(id), STATUS_PAUSED, "paused once");
        assertEq(core.nonces(alice), 1, "one nonce used");
        assertEq(core.workflowCountOf(alice), 1, "no workflow created");
    }

    /// The deadline is inclusive and checked against block time; a signature expires with it.
    function test_sig_deadlineBoundary() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        uint256 deadline = T0 + 100;
        bytes memory sig = _sign(ALICE_KEY, _createHash(alice, s, 0, deadline, 0));
        vm.warp(deadline + 1);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(SignatureExpired.selector, deadline));
        core.createWorkflowFor(alice, s, 0, deadline, 0, sig);
        vm.warp(deadline); // at the deadline itself it is still valid
        vm.prank(relayer);
        uint256 id = core.createWorkflowFor(alice, s, 0, deadline, 0, sig);
        assertEq(core.getWorkflow(id).owner, alice, "created at the deadline");
    }

    /// The malleable twin (s' = n − s, v flipped) of a valid signature, a truncated one, garbage,
    /// and the zero address as owner (ecrecover's failure value) are all refused.
    function test_sig_malleableTruncatedAndZeroOwner() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        uint256 deadline = T0 + 1 hours;
        (uint8 v, bytes32 r, bytes32 sv) = vm.sign(ALICE_KEY, _createHash(alice, s, 0, deadline, 0));
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        bytes memory twin = abi.encodePacked(r, bytes32(n - uint256(sv)), v == 27 ? uint8(28) : uint8(27));
        vm.startPrank(relayer);
        vm.expectRevert(InvalidSignature.selector);
        core.createWorkflowFor(alice, s, 0, deadline, 0, twin);
        vm.expectRevert(InvalidSignature.selector);
        core.createWorkflowFor(alice, s, 0, deadline, 0, abi.encodePacked(r, sv));
        vm.expectRevert(InvalidSignature.selector);
        core.createWorkflowFor(alice, s, 0, deadline, 0, new bytes(65));
        vm.expectRevert(InvalidSignature.selector);
        core.createWorkflowFor(address(0), s, 0, deadline, 0, new bytes(65));
        vm.expectRevert(InvalidSignature.selector);
        core.createWorkflowFor(address(0), s, 0, deadline, 0, "");
        vm.stopPrank();
        assertEq(core.workflowCount(), 0, "nothing created");
        assertEq(core.nonces(alice), 0, "nonce untouched");
    }

    /// A contract wallet (ERC-1271) is asked in a static context: its check cannot write to the
    /// core (or anywhere) while the relayed call is in progress.
    function test_sig_erc1271Wallet_cannotWriteDuringCheck() public {
        GreedyWallet wallet = new GreedyWallet(core);
        vm.deal(address(this), 1 ether);
        wallet.fund{value: 1 ether}();
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        vm.prank(relayer);
        uint256 id = core.createWorkflowFor(address(wallet), s, 0, T0 + 1 hours, RELAYER_CAP, hex"00");
        assertEq(core.getWorkflow(id).owner, address(wallet), "the wallet's workflow");
        (, uint256 cap,) = core.accountOf(address(wallet));
        assertEq(cap, 0, "its check could not write to the core");
        uint256 fee = core.balanceOf(relayer);
        assertEq(core.balanceOf(address(wallet)), 1 ether - fee, "only the capped relayer fee left its escrow");
        assertLe(fee, RELAYER_CAP, "capped");
    }

    /// A relayer bidding an absurd gas price is still paid at most what the owner signed.
    function test_sig_relayerGasPriceAbuse_cappedBySignedFee() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        bytes memory sig = _sign(ALICE_KEY, _createHash(alice, s, 0, T0 + 1 hours, RELAYER_CAP));
        _gasPrice(1_000_000 * GWEI);
        vm.prank(relayer);
        core.createWorkflowFor(alice, s, 0, T0 + 1 hours, RELAYER_CAP, sig);
        assertEq(core.balanceOf(relayer), RELAYER_CAP, "exactly the cap");
        assertEq(core.balanceOf(alice), 10 ether - RELAYER_CAP, "alice paid the cap, no more");
    }

    // ================================================================ reentrancy, exhaustively

    /// Every state-changing entry point of the core, as calldata a hostile action would send.
    function _reentryPayloads(Hook hook, uint256 victimId, uint256 hookId) internal returns (bytes[] memory p) {
        WorkflowSpec memory s = _timeSpec(T0 + 1 days);
        uint256[] memory runs = new uint256[](1);
        runs[0] = victimId << 96;
        bytes memory sig = _sign(ALICE_KEY, _statusHash(alice, victimId, OP_CANCEL, 0, T0 + 1 hours, 0));
        bytes memory csig = _sign(ALICE_KEY, _createHash(alice, s, 0, T0 + 1 hours, 0));
        p = new bytes[](14);
        p[0] = abi.encodeCall(IAutometa.deposit, ());
        p[1] = abi.encodeCall(IAutometa.depositFor, (address(hook)));
        p[2] = abi.encodeCall(IAutometa.withdraw, (1));
        p[3] = abi.encodeCall(IAutometa.withdrawTo, (payable(address(hook)), 1));
        p[4] = abi.encodeCall(IAutometa.setMaxGasPrice, (1));
        p[5] = abi.encodeCall(IAutometa.createWorkflow, (s));
        p[6] = abi.encodeCall(IAutometa.createWorkflowFor, (alice, s, 0, T0 + 1 hours, 0, csig));
        p[7] = abi.encodeCall(IAutometa.pauseWorkflow, (hookId));
        p[8] = abi.encodeCall(IAutometa.resumeWorkflow, (hookId));
        p[9] = abi.encodeCall(IAutometa.cancelWorkflow, (hookId));
        p[10] = abi.encodeCall(IAutometa.changeStatusBySig, (victimId, OP_CANCEL, 0, T0 + 1 hours, 0, sig));
        p[11] = abi.encodeCall(IAutometa.execute, (victimId, 0, 0));
        p[12] = abi.encodeCall(IAutometa.executeBatch, (runs));
        p[13] = ""; // receive(): a plain transfer (sent with value 1 below)
        // (the admin functions are onlyOwner, not locked: test_wrongParty_* refuses them to anyone else)
    }

    function _reenterAll(uint8 actionKind) internal {
        Hook hook = new Hook(core);
        vm.deal(address(hook), 10 ether);
        vm.deal(address(this), 5 ether);
        hook.fund{value: 5 ether}();
        uint256 hookId = hook.createOwn(_timeSpec(T0 + 1 days));
        // worst case: the attacker is an executor too
        vm.prank(admin);
        core.setExecutor(address(hook), true);

        WorkflowSpec memory s = _intervalSpec(T0, 60, 0, 100);
        s.gasLimit = 1_000_000;
        s.actionKind = actionKind;
        if (actionKind == ACTION_ERC20) {
            (s.target, s.token, s.amount) = (recipient, address(hook), 1);
        } else if (actionKind == ACTION_CALL) {
            (s.target, s.amount, s.data) = (address(hook), 0.1 ether, abi.encodeCall(Hook.poke, ()));
        } else {
            (s.target, s.amount) = (address(hook), 0.1 ether);
        }
        uint256 victimId = _create(alice, s);
        bytes[] memory payloads = _reentryPayloads(hook, victimId, hookId);
        for (uint256 i; i < payloads.length; ++i) {
            vm.warp(T0 + 60 * (i + 1));
            hook.arm(payloads[i], payloads[i].length == 0 ? 1 : 0);
            uint256 hookEscrow = core.balanceOf(address(hook));
            uint256 aliceNonce = core.nonces(alice);
            uint256 count = core.workflowCount();
            uint32 runs = _runCount(victimId);
            VmLog[] memory logs = _exec(victimId, runs);
            Executed memory e = _onlyExecuted(logs);
            string memory which = string.concat("payload ", _str(i), " kind ", _str(actionKind));
            assertTrue(hook.fired(), string.concat(which, ": the hook ran"));
            assertTrue(!hook.ok(), string.concat(which, ": re-entry went through"));
            assertTrue(bytes4(hook.err()) == REENTRANT, string.concat(which, ": refused by the lock"));
            assertTrue(e.success, string.concat(which, ": the action itself went on"));
            assertEq(_runCount(victimId), runs + 1, string.concat(which, ": consumed once"));
            assertEq(core.balanceOf(address(hook)), hookEscrow, string.concat(which, ": hook escrow unchanged"));
            assertEq(core.nonces(alice), aliceNonce, string.concat(which, ": nonce unchanged"));
            assertEq(core.workflowCount(), count, string.concat(which, ": nothing created"));
            assertEq(_status(hookId), STATUS_ACTIVE, string.concat(which, ": hook's workflow unchanged"));
            (bool paused,,) = core.config();
            assertTrue(!paused, "config unchanged");
        }
        assertEq(core.owner(), admin, "ownership unchanged");
        address[4] memory holders = [alice, bob, eve, executor];
        uint256 sum = core.balanceOf(address(hook)) + core.balanceOf(relayer);
        for (uint256 i; i < holders.length; ++i) {
            sum += core.balanceOf(holders[i]);
        }
        assertEq(address(core).balance, sum, "solvent, exactly");
    }

    function test_reentry_fromNativeRecipient_intoEveryFunction() public {
        _reenterAll(ACTION_NATIVE);
    }

    function test_reentry_fromToken_intoEveryFunction() public {
        _reenterAll(ACTION_ERC20);
    }

    function test_reentry_fromCallTarget_intoEveryFunction() public {
        _reenterAll(ACTION_CALL);
    }

    /// A withdrawal's recipient re-entering withdraw / execute / deposit: refused, paid once.
    function test_reentry_fromWithdrawalRecipient() public {
        Withdrawer w = new Withdrawer(core);
        vm.deal(address(this), 2 ether);
        w.fund{value: 2 ether}();
        uint256 id = _create(alice, _timeSpec(T0));
        bytes[3] memory payloads = [
            abi.encodeCall(IAutometa.withdraw, (1 ether)),
            abi.encodeCall(IAutometa.execute, (id, 0, 0)),
            abi.encodeCall(IAutometa.withdrawTo, (payable(address(w)), 1 ether))
        ];
        for (uint256 i; i < payloads.length; ++i) {
            uint256 before = core.balanceOf(address(w));
            w.withdraw(0.5 ether, payloads[i]);
            assertTrue(!w.ok(), "re-entry refused");
            assertTrue(bytes4(w.err()) == REENTRANT, "by the lock");
            assertEq(core.balanceOf(address(w)), before - 0.5 ether, "debited once");
        }
        assertEq(address(w).balance, 1.5 ether, "paid exactly what was withdrawn");
        assertEq(_runCount(id), 0, "the re-entered execute did nothing");
    }

    // ================================================================ other users' escrow and proxy

    /// Eve's call workflows try to use Bob's token allowances — to the core and to Bob's own
    /// proxy — and Bob's proxy. Nothing of Bob's moves.
    function test_crossUser_callActionCannotUseAnotherUsersAllowanceOrProxy() public {
        Recorder rec = new Recorder();
        _create(bob, _callSpec(address(rec), 0, abi.encodeCall(Recorder.poke, (1))));
        address bobProxy = core.proxyOf(bob);
        token.mint(bob, 100e18);
        vm.startPrank(bob);
        token.approve(address(core), type(uint256).max);
        token.approve(bobProxy, type(uint256).max);
        vm.stopPrank();
        vm.deal(bobProxy, 1 ether);

        bytes[4] memory attempts = [
            abi.encodeWithSignature("transferFrom(address,address,uint256)", bob, eve, 1e18),
            abi.encodeWithSignature("forward(address,bytes)", address(token),
                abi.encodeWithSignature("transferFrom(address,address,uint256)", bob, eve, 1e18)),
            abi.encodeWithSignature("sweep(address,uint256)", eve, 1 ether),
            abi.encodeWithSignature("initialize(address)", eve)
        ];
        address[4] memory targets = [address(token), bobProxy, bobProxy, bobProxy];
        for (uint256 i; i < attempts.length; ++i) {
            uint256 id = _create(eve, _callSpec(targets[i], 0, attempts[i]));
            Executed memory e = _onlyExecuted(_exec(id, 0));
            assertTrue(!e.success, string.concat("attempt ", _str(i), " failed"));
        }
        // the implementation too
        uint256 viaImpl = _create(eve, _callSpec(core.proxyImplementation(), 0, attempts[1]));
        assertTrue(!_onlyExecuted(_exec(viaImpl, 0)).success, "the implementation refuses too");
        // and an ERC-20 action never reaches past the workflow's own owner
        WorkflowSpec memory t = _timeSpec(T0);
        (t.actionKind, t.token, t.amount, t.target) = (ACTION_ERC20, address(token), 1e18, eve);
        uint256 erc = _create(eve, t);
        assertTrue(!_onlyExecuted(_exec(erc, 0)).success, "eve has no tokens of her own");
        assertEq(token.balanceOf(bob), 100e18, "bob's tokens untouched");
        assertEq(token.balanceOf(eve), 0, "eve got none");
        assertEq(bobProxy.balance, 1 ether, "bob's proxy's coin untouched");
        assertEq(IOwnerProxy(bobProxy).owner(), bob, "still bob's proxy");
        assertEq(core.balanceOf(bob), 10 ether, "bob's escrow untouched");
    }

    /// A workflow whose owner cannot pay is skipped even when other owners in the same batch
    /// are rich: each run is charged to its own owner only, to the wei.
    function test_crossUser_batchChargesEachOwnerOnly() public {
        address poor = address(0x9009);
        _deposit(poor, 0.05 ether); // less than the 0.1 ether amount
        uint256 a = _create(alice, _timeSpec(T0));
        uint256 p = _create(poor, _timeSpec(T0));
        uint256 b = _create(bob, _timeSpec(T0));
        uint256[] memory runs = new uint256[](3);
        (runs[0], runs[1], runs[2]) = (a << 96, p << 96, b << 96);
        vm.recordLogs();
        vm.prank(executor);
        core.executeBatch(runs);
        VmLog[] memory logs = vm.getRecordedLogs();
        Executed[] memory ex = _executed(logs);
        assertEq(ex.length, 2, "two ran");
        assertEq(_skipReason(logs), SKIP_INSUFFICIENT_ESCROW, "the poor one skipped");
        assertEq(core.balanceOf(poor), 0.05 ether, "poor owner charged nothing");
        assertEq(core.balanceOf(alice), 10 ether - 0.1 ether - ex[0].fee, "alice paid her own run");
        assertEq(core.balanceOf(bob), 10 ether - 0.1 ether - ex[1].fee, "bob paid his own run");
        assertEq(core.balanceOf(executor), ex[0].fee + ex[1].fee, "executor got exactly the fees");
    }

    // ================================================================ fees above the owner's caps

    /// An executor bidding an absurd gas price: the fee is computed at the owner's cap and never
    /// exceeds maxFeePerRun, for a single run and for every item of a batch.
    function test_fees_absurdGasPrice_boundByOwnersCaps() public {
        vm.prank(admin);
        core.setPremium(5_000); // the highest premium the admin can set
        vm.prank(alice);
        core.setMaxGasPrice(uint64(2 * GWEI));
        _gasPrice(100_000 * GWEI);
        uint256 id = _create(alice, _intervalSpec(T0, 60, 0, 10));
        Executed memory e = _onlyExecuted(_exec(id, 0));
        assertEq(e.gasPrice, 2 * GWEI, "computed at alice's cap");
        assertLe(e.fee, (e.gasUsed * 2 * GWEI * 15_000) / 10_000, "gas x cap x max premium");
        assertLe(e.fee, MAX_FEE, "never above maxFeePerRun");

        // bob has no gas-price cap: the per-run cap holds alone
        uint256[] memory runs = new uint256[](5);
        for (uint256 i; i < runs.length; ++i) {
            runs[i] = _create(bob, _intervalSpec(T0, 60, 0, 10)) << 96;
        }
        uint256 bobBefore = core.balanceOf(bob);
        vm.recordLogs();
        vm.prank(executor);
        core.executeBatch(runs);
        Executed[] memory ex = _executed(vm.getRecordedLogs());
        assertEq(ex.length, 5, "all ran");
        uint256 total;
        for (uint256 i; i < ex.length; ++i) {
            assertEq(ex[i].fee, MAX_FEE, "capped at maxFeePerRun exactly");
            total += ex[i].fee + 0.1 ether;
        }
        assertEq(core.balanceOf(bob), bobBefore - total, "bob paid amount + capped fee per run, to the wei");
    }

    /// The largest gas price a transaction can carry (2^64 - 1): no overflow, the fee is exactly
    /// the owner's per-run cap.
    function test_fees_maxGasPrice_chargesExactlyTheCap() public {
        uint256 id = _create(bob, _timeSpec(T0));
        _gasPrice(type(uint64).max);
        Executed memory e = _onlyExecuted(_exec(id, 0));
        assertTrue(e.success, "ran");
        assertEq(e.fee, MAX_FEE, "exactly maxFeePerRun");
        assertEq(core.balanceOf(bob), 10 ether - 0.1 ether - MAX_FEE, "bob charged amount + cap, to the wei");
    }

    // ================================================================ false prices

    /// For an asset with a feed the executor's attestation is ignored: in a batch (where the feed
    /// answer is cached), and when the feed is stale or reverting (the run is unavailable rather
    /// than falling back to the attestation).
    function test_price_falseAttestation_batchAndStaleFeed() public {
        uint256 below = _create(alice, _priceSpec(ETH, COMPARATOR_BELOW, 3200e8)); // feed says 3250: false
        uint256 above = _create(bob, _priceSpec(ETH, COMPARATOR_ABOVE, 3300e8)); // false
        uint256[] memory runs = new uint256[](2);
        runs[0] = (below << 96) | uint256(100e8); // "ETH is $100"
        runs[1] = (above << 96) | uint256(99_999e8); // "ETH is $99,999"
        vm.recordLogs();
        vm.prank(executor);
        core.executeBatch(runs);
        VmLog[] memory logs = vm.getRecordedLogs();
        assertEq(_countTopic(logs, RUN_EXECUTED), 0, "no false attestation fired a run");
        assertEq(_countTopic(logs, RUN_SKIPPED), 2, "both skipped");
        assertEq(_runCount(below) + _runCount(above), 0, "nothing consumed");

        vm.warp(T0 + 3601); // the feed goes stale: an attestation must not stand in for it
        assertEq(_skipReason(_exec(below, 0, 100e8)), SKIP_PRICE_UNAVAILABLE, "stale feed + attestation");
        vm.etch(address(feed), hex"5f5ffd"); // a feed that reverts
        assertEq(_skipReason(_exec(below, 0, 100e8)), SKIP_PRICE_UNAVAILABLE, "reverting feed + attestation");
        (bool ok,,) = core.currentPrice(ETH, 100e8);
        assertTrue(!ok, "currentPrice agrees");
        assertEq(core.balanceOf(alice), 10 ether, "alice charged nothing");
    }
}
