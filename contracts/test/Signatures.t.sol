// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// Relayed (EIP-712) creation and status changes: real signatures, relayer reimbursement from the
/// owner's escrow (capped by what the owner signed), and every way a signature must not be reused.
contract SignaturesTest is Base {
    uint256 internal constant RELAYER_CAP = 0.001 ether;

    function _digest(IAutometa c, bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", c.domainSeparator(), structHash));
    }

    function _signCreate(
        IAutometa c,
        uint256 key,
        address owner,
        WorkflowSpec memory s,
        uint256 nonce,
        uint256 deadline,
        uint256 maxFee
    ) internal returns (bytes memory) {
        bytes32 structHash = keccak256(abi.encode(c.CREATE_TYPEHASH(), owner, c.hashSpec(s), nonce, deadline, maxFee));
        (uint8 v, bytes32 r, bytes32 sig) = vm.sign(key, _digest(c, structHash));
        return abi.encodePacked(r, sig, v);
    }

    function _signStatus(
        uint256 key,
        address owner,
        uint256 id,
        uint8 op,
        uint256 nonce,
        uint256 deadline,
        uint256 maxFee
    ) internal returns (bytes memory) {
        bytes32 typehash = op == OP_PAUSE
            ? core.PAUSE_TYPEHASH()
            : op == OP_RESUME ? core.RESUME_TYPEHASH() : core.CANCEL_TYPEHASH();
        bytes32 structHash = keccak256(abi.encode(typehash, owner, id, nonce, deadline, maxFee));
        (uint8 v, bytes32 r, bytes32 sig) = vm.sign(key, _digest(core, structHash));
        return abi.encodePacked(r, sig, v);
    }

    function _relayCreate(WorkflowSpec memory s, bytes memory sig, uint256 nonce, uint256 deadline, uint256 maxFee)
        internal
        returns (uint256 id)
    {
        vm.prank(relayer);
        id = core.createWorkflowFor(alice, s, nonce, deadline, maxFee, sig);
    }

    // ------------------------------------------------------------ typehashes

    function test_typehashes_matchEip712Strings() public view {
        string memory spec =
            "WorkflowSpec(uint8 triggerKind,uint8 comparator,uint40 startTime,uint40 endTime,uint32 interval,uint64 priceUsd,bytes32 asset,uint8 actionKind,address target,address token,uint256 amount,bytes data,uint32 maxRuns,uint24 gasLimit,uint80 maxFeePerRun,bytes triggerData)";
        assertEq(core.SPEC_TYPEHASH(), keccak256(bytes(spec)), "spec typehash");
        assertEq(
            core.CREATE_TYPEHASH(),
            keccak256(
                bytes(
                    string.concat(
                        "CreateWorkflow(address owner,WorkflowSpec spec,uint256 nonce,uint256 deadline,uint256 maxRelayerFee)",
                        spec
                    )
                )
            ),
            "create typehash"
        );
        // hashSpec is the standard encodeData: typehash, then every field as one word, bytes hashed
        WorkflowSpec memory s = _priceSpec(ETH, COMPARATOR_BELOW, 3200e8);
        s.data = "";
        bytes32 expected = keccak256(
            bytes.concat(
                abi.encode(
                    core.SPEC_TYPEHASH(), s.triggerKind, s.comparator, s.startTime, s.endTime, s.interval, s.priceUsd
                ),
                abi.encode(s.asset, s.actionKind, s.target, s.token, s.amount, keccak256(s.data), s.maxRuns),
                abi.encode(s.gasLimit, s.maxFeePerRun, keccak256(s.triggerData))
            )
        );
        assertEq(core.hashSpec(s), expected, "hashSpec");
    }

    // ------------------------------------------------------------ createWorkflowFor

    function test_createFor_validSignature_createsForOwner_andReimbursesRelayer() public {
        _deposit(alice, 1 ether);
        WorkflowSpec memory s = _priceSpec(ETH, COMPARATOR_BELOW, 3200e8);
        bytes memory sig = _signCreate(core, ALICE_KEY, alice, s, 0, T0 + 1 hours, RELAYER_CAP);
        uint256 id = _relayCreate(s, sig, 0, T0 + 1 hours, RELAYER_CAP);
        assertEq(core.getWorkflow(id).owner, alice, "owned by the signer");
        assertEq(core.workflowCountOf(relayer), 0, "not by the relayer");
        assertEq(core.nonces(alice), 1, "nonce used");
        uint256 paid = core.balanceOf(relayer);
        assertTrue(paid > 0, "relayer reimbursed");
        assertLe(paid, RELAYER_CAP, "never above the signed cap");
        assertEq(core.balanceOf(alice), 1 ether - paid, "owner paid exactly that");
        // at 1 gwei the relay costs real gas: a sane reimbursement is between 100k and 600k gas
        assertGe(paid, 100_000 * GWEI, "covers the gas");
        assertLe(paid, 600_000 * GWEI, "not inflated");
        // the relayer can take it out
        uint256 before = relayer.balance;
        vm.prank(relayer);
        core.withdraw(paid);
        assertEq(relayer.balance, before + paid, "withdrawn");
    }

    function test_createFor_reimbursementCappedByMaxRelayerFee() public {
        _deposit(alice, 1 ether);
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        bytes memory sig = _signCreate(core, ALICE_KEY, alice, s, 0, T0 + 1 hours, 1234);
        _relayCreate(s, sig, 0, T0 + 1 hours, 1234);
        assertEq(core.balanceOf(relayer), 1234, "exactly the cap");
        assertEq(core.balanceOf(alice), 1 ether - 1234, "owner paid the cap");
    }

    function test_createFor_zeroMaxRelayerFee_noReimbursement() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        bytes memory sig = _signCreate(core, ALICE_KEY, alice, s, 0, T0 + 1 hours, 0);
        _relayCreate(s, sig, 0, T0 + 1 hours, 0); // alice has no escrow and needs none
        assertEq(core.balanceOf(relayer), 0, "nothing");
    }

    function test_createFor_ownerCannotPay_reverts() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        bytes memory sig = _signCreate(core, ALICE_KEY, alice, s, 0, T0 + 1 hours, RELAYER_CAP);
        vm.prank(relayer);
        vm.expectPartialRevert(InsufficientEscrow.selector);
        core.createWorkflowFor(alice, s, 0, T0 + 1 hours, RELAYER_CAP, sig);
        assertEq(core.workflowCount(), 0, "nothing created");
        assertEq(core.nonces(alice), 0, "nonce not burnt");
    }

    function test_createFor_ownerRelayingThemselves_paysNothing() public {
        _deposit(alice, 1 ether);
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        bytes memory sig = _signCreate(core, ALICE_KEY, alice, s, 0, T0 + 1 hours, RELAYER_CAP);
        vm.prank(alice);
        core.createWorkflowFor(alice, s, 0, T0 + 1 hours, RELAYER_CAP, sig);
        assertEq(core.balanceOf(alice), 1 ether, "no self-reimbursement");
    }

    function test_createFor_closedWhileExecutionPaused() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        bytes memory sig = _signCreate(core, ALICE_KEY, alice, s, 0, T0 + 1 hours, 0);
        vm.prank(admin);
        core.setPaused(true);
        vm.prank(relayer);
        vm.expectRevert(ExecutionIsPaused.selector);
        core.createWorkflowFor(alice, s, 0, T0 + 1 hours, 0, sig);
    }

    // ------------------------------------------------------------ replay and forgery

    function test_replay_sameSignatureTwice_reverts() public {
        _deposit(alice, 1 ether);
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        bytes memory sig = _signCreate(core, ALICE_KEY, alice, s, 0, T0 + 1 hours, RELAYER_CAP);
        _relayCreate(s, sig, 0, T0 + 1 hours, RELAYER_CAP);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, alice, 1));
        core.createWorkflowFor(alice, s, 0, T0 + 1 hours, RELAYER_CAP, sig);
        assertEq(core.workflowCount(), 1, "created once");
    }

    function test_replay_otherChainId_reverts() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        bytes memory sig = _signCreate(core, ALICE_KEY, alice, s, 0, T0 + 1 hours, 0);
        vm.chainId(1284); // the same contract address on another chain
        vm.prank(relayer);
        vm.expectRevert(InvalidSignature.selector);
        core.createWorkflowFor(alice, s, 0, T0 + 1 hours, 0, sig);
    }

    function test_replay_otherContract_reverts() public {
        IAutometa other = _deployCore(admin);
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        bytes memory sig = _signCreate(core, ALICE_KEY, alice, s, 0, T0 + 1 hours, 0);
        vm.prank(relayer);
        vm.expectRevert(InvalidSignature.selector);
        other.createWorkflowFor(alice, s, 0, T0 + 1 hours, 0, sig);
        // and the signature for `other` is not valid here either
        bytes memory sigOther = _signCreate(other, ALICE_KEY, alice, s, 0, T0 + 1 hours, 0);
        vm.prank(relayer);
        vm.expectRevert(InvalidSignature.selector);
        core.createWorkflowFor(alice, s, 0, T0 + 1 hours, 0, sigOther);
    }

    function test_expiredDeadline_reverts() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        bytes memory sig = _signCreate(core, ALICE_KEY, alice, s, 0, T0 + 10, 0);
        vm.warp(T0 + 11);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(SignatureExpired.selector, T0 + 10));
        core.createWorkflowFor(alice, s, 0, T0 + 10, 0, sig);
    }

    function test_signatureByNonOwner_reverts() public {
        _deposit(alice, 1 ether);
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        // bob signs a workflow "for alice" to spend alice's escrow
        bytes memory sig = _signCreate(core, BOB_KEY, alice, s, 0, T0 + 1 hours, RELAYER_CAP);
        vm.prank(relayer);
        vm.expectRevert(InvalidSignature.selector);
        core.createWorkflowFor(alice, s, 0, T0 + 1 hours, RELAYER_CAP, sig);
        assertEq(core.balanceOf(alice), 1 ether, "alice untouched");
    }

    function test_tamperedSpec_reverts() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        bytes memory sig = _signCreate(core, ALICE_KEY, alice, s, 0, T0 + 1 hours, 0);
        s.target = bob; // relayer redirects the money
        vm.prank(relayer);
        vm.expectRevert(InvalidSignature.selector);
        core.createWorkflowFor(alice, s, 0, T0 + 1 hours, 0, sig);
        s.target = recipient;
        vm.prank(relayer); // or raises its own fee cap
        vm.expectRevert(InvalidSignature.selector);
        core.createWorkflowFor(alice, s, 0, T0 + 1 hours, 1 ether, sig);
    }

    function test_wrongNonce_reverts() public {
        WorkflowSpec memory s = _timeSpec(T0 + 60);
        bytes memory sig = _signCreate(core, ALICE_KEY, alice, s, 5, T0 + 1 hours, 0);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, alice, 0));
        core.createWorkflowFor(alice, s, 5, T0 + 1 hours, 0, sig);
    }

    // ------------------------------------------------------------ changeStatusBySig

    function test_statusBySig_pauseResumeCancel_reimbursed() public {
        _deposit(alice, 1 ether);
        uint256 id = _create(alice, _timeSpec(T0 + 60));
        bytes memory sig = _signStatus(ALICE_KEY, alice, id, OP_PAUSE, 0, T0 + 1 hours, RELAYER_CAP);
        vm.prank(relayer);
        core.changeStatusBySig(id, OP_PAUSE, 0, T0 + 1 hours, RELAYER_CAP, sig);
        assertEq(_status(id), STATUS_PAUSED, "paused");
        uint256 paid = core.balanceOf(relayer);
        assertTrue(paid > 0 && paid <= RELAYER_CAP, "reimbursed within cap");
        assertEq(core.balanceOf(alice), 1 ether - paid, "owner paid");

        sig = _signStatus(ALICE_KEY, alice, id, OP_RESUME, 1, T0 + 1 hours, 0);
        vm.prank(relayer);
        core.changeStatusBySig(id, OP_RESUME, 1, T0 + 1 hours, 0, sig);
        assertEq(_status(id), STATUS_ACTIVE, "resumed");

        sig = _signStatus(ALICE_KEY, alice, id, OP_CANCEL, 2, T0 + 1 hours, 77);
        vm.prank(relayer);
        core.changeStatusBySig(id, OP_CANCEL, 2, T0 + 1 hours, 77, sig);
        assertEq(_status(id), STATUS_CANCELLED, "cancelled");
        assertEq(core.balanceOf(relayer), paid + 77, "capped at 77");
    }

    function test_statusBySig_opIsBound() public {
        uint256 id = _create(alice, _timeSpec(T0 + 60));
        bytes memory sig = _signStatus(ALICE_KEY, alice, id, OP_PAUSE, 0, T0 + 1 hours, 0);
        vm.prank(relayer); // a pause signature cannot cancel
        vm.expectRevert(InvalidSignature.selector);
        core.changeStatusBySig(id, OP_CANCEL, 0, T0 + 1 hours, 0, sig);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(InvalidOp.selector, 3));
        core.changeStatusBySig(id, 3, 0, T0 + 1 hours, 0, sig);
    }

    function test_statusBySig_workflowIdIsBound() public {
        uint256 id1 = _create(alice, _timeSpec(T0 + 60));
        uint256 id2 = _create(alice, _timeSpec(T0 + 60));
        bytes memory sig = _signStatus(ALICE_KEY, alice, id1, OP_CANCEL, 0, T0 + 1 hours, 0);
        vm.prank(relayer);
        vm.expectRevert(InvalidSignature.selector);
        core.changeStatusBySig(id2, OP_CANCEL, 0, T0 + 1 hours, 0, sig);
        assertEq(_status(id2), STATUS_ACTIVE, "untouched");
    }

    function test_statusBySig_nonOwnerSignature_reverts() public {
        uint256 id = _create(alice, _timeSpec(T0 + 60));
        bytes memory sig = _signStatus(BOB_KEY, alice, id, OP_CANCEL, 0, T0 + 1 hours, 0);
        vm.prank(bob);
        vm.expectRevert(InvalidSignature.selector);
        core.changeStatusBySig(id, OP_CANCEL, 0, T0 + 1 hours, 0, sig);
        // bob signing as himself is not the owner either: the signature is checked against alice
        bytes memory sig2 = _signStatus(BOB_KEY, bob, id, OP_CANCEL, 0, T0 + 1 hours, 0);
        vm.prank(bob);
        vm.expectRevert(InvalidSignature.selector);
        core.changeStatusBySig(id, OP_CANCEL, 0, T0 + 1 hours, 0, sig2);
    }

    function test_statusBySig_replay_expired_unknown() public {
        uint256 id = _create(alice, _timeSpec(T0 + 60));
        bytes memory sig = _signStatus(ALICE_KEY, alice, id, OP_PAUSE, 0, T0 + 10, 0);
        vm.prank(relayer);
        core.changeStatusBySig(id, OP_PAUSE, 0, T0 + 10, 0, sig);
        vm.prank(alice);
        core.resumeWorkflow(id); // a direct change: uses nonce 1
        vm.prank(relayer); // replay of the same pause
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, alice, 2));
        core.changeStatusBySig(id, OP_PAUSE, 0, T0 + 10, 0, sig);
        bytes memory late = _signStatus(ALICE_KEY, alice, id, OP_PAUSE, 2, T0 + 10, 0);
        vm.warp(T0 + 11);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(SignatureExpired.selector, T0 + 10));
        core.changeStatusBySig(id, OP_PAUSE, 2, T0 + 10, 0, late);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(UnknownWorkflow.selector, 99));
        core.changeStatusBySig(99, OP_PAUSE, 2, T0 + 10, 0, late);
        assertEq(_status(id), STATUS_ACTIVE, "still active");
    }

    function test_statusBySig_ownerCannotPay_reverts() public {
        uint256 id = _create(alice, _timeSpec(T0 + 60));
        bytes memory sig = _signStatus(ALICE_KEY, alice, id, OP_CANCEL, 0, T0 + 1 hours, RELAYER_CAP);
        vm.prank(relayer);
        vm.expectPartialRevert(InsufficientEscrow.selector);
        core.changeStatusBySig(id, OP_CANCEL, 0, T0 + 1 hours, RELAYER_CAP, sig);
        assertEq(_status(id), STATUS_ACTIVE, "not cancelled");
    }

    function test_statusBySig_otherChain_reverts() public {
        uint256 id = _create(alice, _timeSpec(T0 + 60));
        bytes memory sig = _signStatus(ALICE_KEY, alice, id, OP_CANCEL, 0, T0 + 1 hours, 0);
        vm.chainId(1287);
        vm.prank(relayer);
        vm.expectRevert(InvalidSignature.selector);
        core.changeStatusBySig(id, OP_CANCEL, 0, T0 + 1 hours, 0, sig);
    }
}
