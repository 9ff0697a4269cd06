// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";

/// Tries to re-enter the core while it runs an action: as a native recipient, as an ERC-20
/// token, or as a call target. `swallow` decides whether the re-entry's revert fails the action.
contract Reenterer {
    enum Attack {
        EXECUTE,
        WITHDRAW,
        CANCEL,
        BATCH
    }

    IAutometa public immutable core;
    Attack public attack;
    bool public swallow;
    bool public armed;
    uint256 public targetWorkflow; // the run being executed: EXECUTE/BATCH replay it
    uint256 public ownWorkflow; // the attacker's own workflow: CANCEL cancels it
    uint256 public attempts;
    uint256 public reentered;

    constructor(IAutometa core_) payable {
        core = core_;
    }

    function arm(Attack a, bool swallow_, uint256 targetWorkflow_) external {
        (attack, swallow, targetWorkflow, armed) = (a, swallow_, targetWorkflow_, true);
    }

    function fund() external payable {
        core.deposit{value: msg.value}();
    }

    function createOwn(WorkflowSpec calldata s) external {
        ownWorkflow = core.createWorkflow(s);
    }

    function _attack() internal {
        if (!armed) return;
        attempts += 1;
        bytes memory call;
        if (attack == Attack.EXECUTE) {
            call = abi.encodeCall(IAutometa.execute, (targetWorkflow, 0, 0));
        } else if (attack == Attack.WITHDRAW) {
            call = abi.encodeCall(IAutometa.withdraw, (1 ether));
        } else if (attack == Attack.CANCEL) {
            call = abi.encodeCall(IAutometa.cancelWorkflow, (ownWorkflow));
        } else {
            uint256[] memory runs = new uint256[](2);
            runs[0] = targetWorkflow << 96;
            runs[1] = targetWorkflow << 96;
            call = abi.encodeCall(IAutometa.executeBatch, (runs));
        }
        (bool ok, bytes memory ret) = address(core).call(call);
        if (ok) reentered += 1;
        if (!ok && !swallow) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    receive() external payable {
        _attack();
    }

    function transferFrom(address, address, uint256) external returns (bool) {
        _attack();
        return true;
    }

    function poke() external payable {
        _attack();
    }
}

contract ReentrancyTest is Base {
    Reenterer internal evil;
    bytes4 internal constant REENTRANT = bytes4(keccak256("ReentrancyGuardReentrantCall()"));

    function setUp() public override {
        super.setUp();
        _deposit(alice, 10 ether);
        evil = new Reenterer(core);
        vm.prank(admin);
        core.setExecutor(address(evil), true); // worst case: the attacker is an executor too
        vm.deal(address(this), 5 ether);
        evil.fund{value: 5 ether}(); // and has an escrow balance to steal twice
        evil.createOwn(_timeSpec(T0 + 1 days));
    }

    function _spec(uint8 actionKind) internal view returns (WorkflowSpec memory s) {
        s = _intervalSpec(T0, 60, 0, 10);
        s.gasLimit = 300_000;
        s.actionKind = actionKind;
        if (actionKind == ACTION_NATIVE) {
            s.target = address(evil);
        } else if (actionKind == ACTION_ERC20) {
            s.target = recipient;
            s.token = address(evil);
            s.amount = 1;
        } else {
            s.target = address(evil);
            s.amount = 0.1 ether;
            s.data = abi.encodeCall(Reenterer.poke, ());
        }
    }

    function _run(uint8 actionKind, Reenterer.Attack attack, bool swallow) internal {
        uint256 id = _create(alice, _spec(actionKind));
        evil.arm(attack, swallow, id);
        uint256 coreBefore = address(core).balance;
        uint256 evilCoin = address(evil).balance;
        uint256 evilEscrow = core.balanceOf(address(evil));
        VmLog[] memory logs = _exec(id, 0);
        Executed memory e = _onlyExecuted(logs);
        uint256 amount = actionKind == ACTION_ERC20 ? 0 : 0.1 ether;

        // (a bubbled re-entry revert also rolls back the attacker's counter: the fail reason shows it)
        assertEq(evil.attempts(), swallow ? 1 : 0, "the attack ran");
        assertEq(evil.reentered(), 0, "no re-entry got through");
        assertEq(_countTopic(logs, RUN_EXECUTED), 1, "one run, not two");
        assertEq(core.balanceOf(address(evil)), evilEscrow, "attacker escrow unchanged");
        assertEq(core.getWorkflow(evil.ownWorkflow()).status, STATUS_ACTIVE, "attacker's workflow not cancelled");
        assertEq(core.balanceOf(executor), e.fee, "fee to the real executor only");
        if (swallow) {
            assertTrue(e.success, "the action itself succeeded");
            assertEq(_runCount(id), 1, "consumed once");
            assertEq(core.balanceOf(alice), 10 ether - amount - e.fee, "owner: amount + fee, exactly once");
            if (actionKind == ACTION_NATIVE) assertEq(address(evil).balance, evilCoin + amount, "paid once");
        } else {
            assertTrue(!e.success, "the lock made the action fail");
            assertEq(bytes4(_failReason(logs)), REENTRANT, "with the reentrancy error");
            assertEq(_runCount(id), 0, "not consumed");
            assertEq(core.balanceOf(alice), 10 ether - e.fee, "amount refunded, fee charged");
            assertEq(address(evil).balance, evilCoin, "attacker got nothing");
        }
        assertEq(address(core).balance, coreBefore - (swallow ? amount : 0), "coin left the core at most once");
        assertEq(
            address(core).balance,
            core.balanceOf(alice) + core.balanceOf(executor) + core.balanceOf(address(evil)),
            "solvent, exactly"
        );
    }

    // malicious native recipient
    function test_recipient_reentersExecute() public {
        _run(ACTION_NATIVE, Reenterer.Attack.EXECUTE, false);
    }

    function test_recipient_reentersExecute_swallowed() public {
        _run(ACTION_NATIVE, Reenterer.Attack.EXECUTE, true);
    }

    function test_recipient_reentersWithdraw() public {
        _run(ACTION_NATIVE, Reenterer.Attack.WITHDRAW, false);
    }

    function test_recipient_reentersWithdraw_swallowed() public {
        _run(ACTION_NATIVE, Reenterer.Attack.WITHDRAW, true);
    }

    function test_recipient_reentersCancel() public {
        _run(ACTION_NATIVE, Reenterer.Attack.CANCEL, false);
    }

    function test_recipient_reentersBatch() public {
        _run(ACTION_NATIVE, Reenterer.Attack.BATCH, false);
    }

    function test_recipient_reentersBatch_swallowed() public {
        _run(ACTION_NATIVE, Reenterer.Attack.BATCH, true);
    }

    // malicious ERC-20 token
    function test_token_reentersExecute() public {
        _run(ACTION_ERC20, Reenterer.Attack.EXECUTE, false);
    }

    function test_token_reentersExecute_swallowed() public {
        _run(ACTION_ERC20, Reenterer.Attack.EXECUTE, true);
    }

    function test_token_reentersWithdraw() public {
        _run(ACTION_ERC20, Reenterer.Attack.WITHDRAW, false);
    }

    function test_token_reentersCancel_swallowed() public {
        _run(ACTION_ERC20, Reenterer.Attack.CANCEL, true);
    }

    function test_token_reentersBatch() public {
        _run(ACTION_ERC20, Reenterer.Attack.BATCH, false);
    }

    // malicious call target (behind alice's proxy)
    function test_callTarget_reentersExecute() public {
        _run(ACTION_CALL, Reenterer.Attack.EXECUTE, false);
    }

    function test_callTarget_reentersWithdraw_swallowed() public {
        _run(ACTION_CALL, Reenterer.Attack.WITHDRAW, true);
    }

    function test_callTarget_reentersCancel() public {
        _run(ACTION_CALL, Reenterer.Attack.CANCEL, false);
    }

    function test_callTarget_reentersBatch_swallowed() public {
        _run(ACTION_CALL, Reenterer.Attack.BATCH, true);
    }

    /// A workflow cannot spend another user's escrow or act through another user's proxy.
    function test_crossUser_proxyAndEscrow() public {
        _deposit(bob, 1 ether);
        // alice's proxy exists (she has a call workflow)
        _create(alice, _spec(ACTION_CALL));
        address aliceProxy = core.proxyOf(alice);
        // bob's call workflow targets alice's proxy, asking it to forward alice's funds
        WorkflowSpec memory s = _timeSpec(T0);
        s.actionKind = ACTION_CALL;
        s.target = aliceProxy;
        s.amount = 0;
        s.gasLimit = 100_000;
        s.data = abi.encodeWithSignature("forward(address,bytes)", bob, "");
        vm.deal(aliceProxy, 1 ether);
        uint256 id = _create(bob, s);
        VmLog[] memory logs = _exec(id, 0);
        Executed memory e = _onlyExecuted(logs);
        assertTrue(!e.success, "alice's proxy refuses bob's proxy");
        assertEq(aliceProxy.balance, 1 ether, "alice's proxy untouched");
        assertEq(core.balanceOf(alice), 10 ether, "alice's escrow untouched");
        assertEq(core.balanceOf(bob), 1 ether - e.fee, "bob pays his own run");
        // and an ERC-20 workflow of bob's moves only bob's tokens
        token.mint(alice, 10e18);
        vm.prank(alice);
        token.approve(address(core), type(uint256).max);
        WorkflowSpec memory t = _timeSpec(T0);
        t.actionKind = ACTION_ERC20;
        t.token = address(token);
        t.amount = 1e18;
        uint256 id2 = _create(bob, t);
        assertTrue(!_onlyExecuted(_exec(id2, 0)).success, "bob has no tokens/allowance: alice's allowance unused");
        assertEq(token.balanceOf(alice), 10e18, "alice's tokens untouched");
    }
}
