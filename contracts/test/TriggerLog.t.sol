// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";

/// LOG: executor-attested logs, each fires a workflow at most once.
contract TriggerLogTest is Base {
    bytes32 internal constant LOG_ATTESTED = keccak256("LogAttested(uint256,uint256,uint256,bytes32,bytes32,uint256)");
    bytes32 internal constant TOPIC0 = keccak256("Deposit(address,uint256)");
    uint256 internal constant BLOCK = 1_000;

    function setUp() public override {
        super.setUp();
        _deposit(alice, 10 ether);
        vm.roll(BLOCK);
        for (uint256 b = BLOCK - 300; b < BLOCK; ++b) {
            vm.setBlockhash(b, keccak256(abi.encode("block", b)));
        }
    }

    function _hash(uint256 b) internal pure returns (bytes32) {
        return keccak256(abi.encode("block", b));
    }

    function _logSpec(bytes memory data) internal view returns (WorkflowSpec memory s) {
        s = _base();
        s.triggerKind = TRIGGER_LOG;
        s.triggerData = data;
        s.maxRuns = 100;
        s = _nativeAction(s, recipient, 0.01 ether);
    }

    function _filter() internal view returns (bytes memory) {
        // emitter, topic0, mask 0b010: topic2 must be alice
        return abi.encodePacked(address(token), TOPIC0, uint8(2), bytes32(uint256(uint160(alice))));
    }

    function _proof(uint256 b, bytes32 bh, uint256 logIndex) internal pure returns (bytes memory) {
        return abi.encode(b, bh, keccak256(abi.encode("tx", b, logIndex)), logIndex);
    }

    function _expectInvalid(WorkflowSpec memory s, string memory field) internal {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(InvalidSpec.selector, field));
        core.createWorkflow(s);
    }

    function test_create_refusesBadFilters() public {
        _expectInvalid(_logSpec(hex"01"), "triggerData");
        _expectInvalid(_logSpec(abi.encodePacked(address(token), TOPIC0, uint8(8))), "triggerData");
        _expectInvalid(_logSpec(abi.encodePacked(address(token), TOPIC0, uint8(1))), "triggerData"); // topic missing
        _expectInvalid(_logSpec(abi.encodePacked(address(0), TOPIC0, uint8(0))), "triggerData.emitter");
        _expectInvalid(_logSpec(abi.encodePacked(address(token), bytes32(0), uint8(0))), "triggerData.topic0");
        WorkflowSpec memory s = _logSpec(_filter());
        s.interval = 5;
        _expectInvalid(s, "interval");
        uint256 id = _create(alice, _logSpec(_filter()));
        assertEq(keccak256(core.getWorkflow(id).spec.triggerData), keccak256(_filter()), "view returns the filter");
    }

    function test_attestedLog_firesOnce_andIsRecorded() public {
        uint256 id = _create(alice, _logSpec(_filter()));
        bytes memory p = _proof(BLOCK - 2, _hash(BLOCK - 2), 7);
        VmLog[] memory logs = _execProof(id, 0, 0, p);
        Executed memory e = _onlyExecuted(logs);
        assertTrue(e.success, "the log fired the run");
        assertLe(e.fee, MAX_FEE, "fee within maxFeePerRun");
        assertEq(_countTopic(logs, LOG_ATTESTED), 1, "attestation recorded");
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] != LOG_ATTESTED) continue;
            (uint256 bn, bytes32 bh, bytes32 txh, uint256 li) =
                abi.decode(logs[i].data, (uint256, bytes32, bytes32, uint256));
            assertEq(bn, BLOCK - 2, "block number");
            assertEq(bh, _hash(BLOCK - 2), "block hash");
            assertEq(txh, keccak256(abi.encode("tx", BLOCK - 2, uint256(7))), "tx hash");
            assertEq(li, 7, "log index");
        }
        assertEq(_skipReason(_execProof(id, 1, 0, p)), SKIP_RUN_DONE, "the same log never fires twice");
        assertEq(
            _skipReason(_execProof(id, 1, 0, _proof(BLOCK - 2, _hash(BLOCK - 2), 6))), SKIP_RUN_DONE, "nor an older one"
        );
        assertTrue(
            _onlyExecuted(_execProof(id, 1, 0, _proof(BLOCK - 2, _hash(BLOCK - 2), 8))).success, "a later log fires"
        );
        assertTrue(
            _onlyExecuted(_execProof(id, 2, 0, _proof(BLOCK - 1, _hash(BLOCK - 1), 0))).success, "and a later block's"
        );
        assertEq(_runCount(id), 3, "three logs, three runs");
    }

    function test_badAttestations_areRefused_andFree() public {
        uint256 id = _create(alice, _logSpec(_filter()));
        uint256 before = core.balanceOf(alice);
        assertEq(_skipReason(_exec(id, 0)), SKIP_BAD_PROOF, "no attestation");
        assertEq(
            _skipReason(_execProof(id, 0, 0, _proof(BLOCK - 2, bytes32(uint256(1)), 0))), SKIP_BAD_PROOF, "wrong hash"
        );
        assertEq(
            _skipReason(_execProof(id, 0, 0, _proof(BLOCK - 257, _hash(BLOCK - 257), 0))),
            SKIP_BAD_PROOF,
            "older than 256"
        );
        assertEq(_skipReason(_execProof(id, 0, 0, _proof(BLOCK, _hash(BLOCK), 0))), SKIP_BAD_PROOF, "the current block");
        assertEq(_skipReason(_execProof(id, 0, 0, _proof(BLOCK + 1, bytes32(0), 0))), SKIP_BAD_PROOF, "a future block");
        assertEq(
            _skipReason(_execProof(id, 0, 0, _proof(BLOCK - 2, _hash(BLOCK - 2), uint256(1) << 32))),
            SKIP_BAD_PROOF,
            "log index beyond 32 bits"
        );
        assertEq(_skipReason(_execProof(id, 0, 0, hex"00")), SKIP_BAD_PROOF, "short proof");
        assertEq(core.balanceOf(alice), before, "nothing charged");
        assertEq(_runCount(id), 0, "nothing ran");
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(NotExecutor.selector, alice));
        core.executeWithProof(id, 0, 0, _proof(BLOCK - 2, _hash(BLOCK - 2), 0));
    }

    function test_failedAction_leavesTheLogRetryable() public {
        WorkflowSpec memory s = _logSpec(_filter());
        Refuser refuser = new Refuser();
        s.target = address(refuser);
        uint256 id = _create(alice, s);
        bytes memory p = _proof(BLOCK - 2, _hash(BLOCK - 2), 3);
        VmLog[] memory logs = _execProof(id, 0, 0, p);
        assertTrue(!_onlyExecuted(logs).success, "the action failed");
        assertEq(_countTopic(logs, LOG_ATTESTED), 0, "no attestation recorded for a failed run");
        assertTrue(!_onlyExecuted(_execProof(id, 0, 0, p)).success, "the same log may be retried (not RUN_DONE)");
    }

    function test_feeNeverAboveCap() public {
        WorkflowSpec memory s = _logSpec(_filter());
        s.maxFeePerRun = 1e12;
        uint256 id = _create(alice, s);
        _gasPrice(100 * GWEI);
        assertLe(_onlyExecuted(_execProof(id, 0, 0, _proof(BLOCK - 2, _hash(BLOCK - 2), 0))).fee, 1e12, "fee capped");
    }

    /// Order keys: a log fires iff it is after the last that fired (block, then log index).
    function testFuzz_onlyLaterLogsFire(uint8 b1, uint32 i1, uint8 b2, uint32 i2) public {
        uint256 bn1 = BLOCK - 1 - (uint256(b1) % 200);
        uint256 bn2 = BLOCK - 1 - (uint256(b2) % 200);
        uint256 id = _create(alice, _logSpec(_filter()));
        assertTrue(_onlyExecuted(_execProof(id, 0, 0, _proof(bn1, _hash(bn1), i1))).success, "first log");
        VmLog[] memory logs = _execProof(id, 1, 0, _proof(bn2, _hash(bn2), i2));
        bool later = bn2 > bn1 || (bn2 == bn1 && i2 > i1);
        if (later) assertTrue(_onlyExecuted(logs).success, "a later log fires");
        else assertEq(_skipReason(logs), SKIP_RUN_DONE, "an earlier or equal log does not");
    }
}
