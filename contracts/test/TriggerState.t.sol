// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";

/// Views a STATE trigger can read, and ones that misbehave.
contract Views {
    int256 public signed = -5;
    bool public flag;
    address public who = address(0xCAFE);

    function setSigned(int256 v) external {
        signed = v;
    }

    function setFlag(bool v) external {
        flag = v;
    }

    function pair() external pure returns (uint256, uint256) {
        return (1, 42);
    }

    function boom() external pure returns (uint256) {
        revert("boom");
    }

    function burn() external view returns (uint256 n) {
        while (true) n += 1;
    }

    function nothing() external pure {}

    /// A return bomb: 20 kB of return data (the reader copies one word of it).
    function bomb() external pure returns (uint256) {
        assembly {
            return(0, 20000)
        }
    }
}

/// STATE: any view function, re-checked on-chain at the run.
contract TriggerStateTest is Base {
    Views internal views;

    function setUp() public override {
        super.setUp();
        views = new Views();
        _deposit(alice, 10 ether);
    }

    function _data(
        address target,
        bytes memory cd,
        uint8 word,
        uint8 readAs,
        uint8 cmp,
        uint256 threshold,
        uint32 viewGas
    ) internal pure returns (bytes memory) {
        return abi.encodePacked(target, word, readAs, cmp, viewGas, threshold, cd);
    }

    /// alice's DEV balance ≥ threshold → send 0.1 ETH to recipient.
    function _balanceData(uint256 threshold) internal view returns (bytes memory) {
        return
            _data(
                address(token), abi.encodeCall(DevToken.balanceOf, (alice)), 0, READ_UINT256, CMP_GE, threshold, 50_000
            );
    }

    function _stateSpec(bytes memory data) internal view returns (WorkflowSpec memory s) {
        s = _base();
        s.triggerKind = TRIGGER_STATE;
        s.triggerData = data;
        s.maxRuns = 10;
        s = _nativeAction(s, recipient, 0.1 ether);
    }

    function _expectInvalid(WorkflowSpec memory s, string memory field) internal {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(InvalidSpec.selector, field));
        core.createWorkflow(s);
    }

    // ------------------------------------------------------------ create

    function test_create_storesData_andViewReturnsIt() public {
        bytes memory d = _balanceData(100);
        uint256 id = _create(alice, _stateSpec(d));
        WorkflowView memory v = core.getWorkflow(id);
        assertEq(v.owner, alice, "owner is the sender");
        assertEq(v.spec.triggerKind, TRIGGER_STATE, "kind");
        assertEq(keccak256(v.spec.triggerData), keccak256(d), "triggerData returned");
    }

    function test_create_relayed_signatureCoversTriggerData() public {
        WorkflowSpec memory s = _stateSpec(_balanceData(100));
        bytes32 signed = core.hashSpec(s);
        s.triggerData = _balanceData(101);
        assertTrue(core.hashSpec(s) != signed, "a different threshold is a different signed spec");
    }

    function test_create_refusesBadData() public {
        bytes memory cd = abi.encodeCall(DevToken.balanceOf, (alice));
        _expectInvalid(_stateSpec(hex"0102"), "triggerData");
        _expectInvalid(_stateSpec(_data(address(0x1234), cd, 0, READ_UINT256, CMP_GE, 1, 50_000)), "triggerData.target");
        _expectInvalid(_stateSpec(_data(address(core), cd, 0, READ_UINT256, CMP_GE, 1, 50_000)), "triggerData.target");
        _expectInvalid(_stateSpec(_data(address(token), cd, 64, READ_UINT256, CMP_GE, 1, 50_000)), "triggerData.word");
        _expectInvalid(_stateSpec(_data(address(token), cd, 0, 4, CMP_GE, 1, 50_000)), "triggerData.readAs");
        _expectInvalid(_stateSpec(_data(address(token), cd, 0, READ_UINT256, 6, 1, 50_000)), "triggerData.comparator");
        _expectInvalid(_stateSpec(_data(address(token), cd, 0, READ_BOOL, CMP_LT, 1, 50_000)), "triggerData.comparator");
        _expectInvalid(_stateSpec(_data(address(token), cd, 0, READ_BOOL, CMP_EQ, 2, 50_000)), "triggerData.threshold");
        _expectInvalid(
            _stateSpec(_data(address(token), cd, 0, READ_ADDRESS, CMP_EQ, 1 << 160, 50_000)), "triggerData.threshold"
        );
        _expectInvalid(_stateSpec(_data(address(token), cd, 0, READ_UINT256, CMP_GE, 1, 9_999)), "triggerData.viewGas");
        _expectInvalid(
            _stateSpec(_data(address(token), cd, 0, READ_UINT256, CMP_GE, 1, 1_000_001)), "triggerData.viewGas"
        );
        _expectInvalid(
            _stateSpec(_data(address(token), new bytes(4097), 0, READ_UINT256, CMP_GE, 1, 50_000)), "triggerData"
        );
        // the other kinds carry no triggerData
        WorkflowSpec memory t = _timeSpec(T0 + 60);
        t.triggerData = hex"01";
        _expectInvalid(t, "triggerData");
        // no price fields on a STATE trigger
        WorkflowSpec memory s = _stateSpec(_balanceData(1));
        s.priceUsd = 1;
        _expectInvalid(s, "priceUsd");
    }

    // ------------------------------------------------------------ run

    function test_notDue_whileConditionFalse_thenRunsOnce() public {
        bytes memory d = _balanceData(100e18);
        uint256 id = _create(alice, _stateSpec(d));
        uint256 before = core.balanceOf(alice);
        assertEq(_skipReason(_execProof(id, 0, 0, d)), SKIP_CONDITION_FALSE, "balance below: not due");
        assertEq(core.balanceOf(alice), before, "a skipped run costs nothing");
        token.mint(alice, 100e18);
        Executed memory e = _onlyExecuted(_execProof(id, 0, 0, d));
        assertTrue(e.success, "runs once the condition holds");
        assertLe(e.fee, MAX_FEE, "fee within maxFeePerRun");
        assertEq(_skipReason(_execProof(id, 0, 0, d)), SKIP_RUN_DONE, "the same run index never runs twice");
        assertEq(_runCount(id), 1, "one run");
    }

    function test_executorMustSupplyTheSignedData() public {
        bytes memory d = _balanceData(0);
        uint256 id = _create(alice, _stateSpec(d));
        assertEq(_skipReason(_exec(id, 0)), SKIP_BAD_PROOF, "execute without the data");
        // a different condition (always true) is refused, even though it would hold
        bytes memory other =
            _data(address(token), abi.encodeCall(DevToken.balanceOf, (bob)), 0, READ_UINT256, CMP_GE, 0, 50_000);
        assertEq(_skipReason(_execProof(id, 0, 0, other)), SKIP_BAD_PROOF, "another condition");
        assertEq(_runCount(id), 0, "nothing ran");
    }

    function test_onlyExecutor_andCanonicalCalldata() public {
        bytes memory d = _balanceData(0);
        uint256 id = _create(alice, _stateSpec(d));
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(NotExecutor.selector, alice));
        core.executeWithProof(id, 0, 0, d);
        bytes memory call = bytes.concat(abi.encodeCall(IAutometa.executeWithProof, (id, 0, 0, d)), hex"00");
        vm.prank(executor);
        (bool ok,) = address(core).call(call);
        assertTrue(!ok, "appended calldata refused");
    }

    function test_failingViews_areNotDue_andFree() public {
        bytes[4] memory calls = [
            abi.encodeCall(Views.boom, ()),
            abi.encodeCall(Views.burn, ()),
            abi.encodeCall(Views.nothing, ()),
            abi.encodeCall(Views.bomb, ())
        ];
        uint256 before = core.balanceOf(alice);
        uint256 charged;
        for (uint256 i; i < calls.length; ++i) {
            bytes memory d = _data(address(views), calls[i], 0, READ_UINT256, CMP_GE, 0, 30_000);
            uint256 id = _create(alice, _stateSpec(d));
            VmLog[] memory logs = _execProof(id, 0, 0, d);
            if (i < 3) {
                assertEq(_skipReason(logs), SKIP_VIEW_FAILED, "failing view skipped");
            } else {
                // the bomb's first word is 0 ≥ 0: it holds, and only that word was copied
                charged = _onlyExecuted(logs).fee + 0.1 ether;
            }
        }
        assertEq(core.balanceOf(alice), before - charged, "only the bomb's run was charged");
        // a word past the end of the answer
        bytes memory d2 = _data(address(views), abi.encodeCall(Views.pair, ()), 2, READ_UINT256, CMP_GE, 0, 30_000);
        uint256 id2 = _create(alice, _stateSpec(d2));
        assertEq(_skipReason(_execProof(id2, 0, 0, d2)), SKIP_VIEW_FAILED, "word 2 of a 2-word answer");
    }

    function test_readAs_and_comparators() public {
        // word 1 of pair() is 42
        _expectRun(_data(address(views), abi.encodeCall(Views.pair, ()), 1, READ_UINT256, CMP_EQ, 42, 30_000), true);
        _expectRun(_data(address(views), abi.encodeCall(Views.pair, ()), 1, READ_UINT256, CMP_LT, 42, 30_000), false);
        // int256: -5 < -4, -5 > -6, and not below 0 as an unsigned number would be
        _expectRun(
            _data(
                address(views), abi.encodeWithSignature("signed()"), 0, READ_INT256, CMP_LT, uint256(int256(-4)), 30_000
            ),
            true
        );
        _expectRun(
            _data(
                address(views), abi.encodeWithSignature("signed()"), 0, READ_INT256, CMP_GT, uint256(int256(-6)), 30_000
            ),
            true
        );
        _expectRun(_data(address(views), abi.encodeWithSignature("signed()"), 0, READ_INT256, CMP_GE, 0, 30_000), false);
        // bool and address: == / != only
        _expectRun(_data(address(views), abi.encodeWithSignature("flag()"), 0, READ_BOOL, CMP_EQ, 0, 30_000), true);
        _expectRun(_data(address(views), abi.encodeWithSignature("flag()"), 0, READ_BOOL, CMP_NE, 0, 30_000), false);
        _expectRun(
            _data(
                address(views), abi.encodeWithSignature("who()"), 0, READ_ADDRESS, CMP_EQ, uint160(recipient), 30_000
            ),
            true
        );
    }

    function _expectRun(bytes memory d, bool runs) internal {
        uint256 id = _create(alice, _stateSpec(d));
        VmLog[] memory logs = _execProof(id, 0, 0, d);
        if (runs) assertTrue(_onlyExecuted(logs).success, "expected a run");
        else assertEq(_skipReason(logs), SKIP_CONDITION_FALSE, "expected condition false");
    }

    function test_cooldown_and_window() public {
        bytes memory d = _balanceData(0);
        WorkflowSpec memory s = _stateSpec(d);
        s.startTime = uint40(T0 + 100);
        s.interval = 600; // cooldown
        s.endTime = uint40(T0 + 10_000);
        uint256 id = _create(alice, s);
        assertEq(_skipReason(_execProof(id, 0, 0, d)), SKIP_NOT_DUE, "before the window");
        vm.warp(T0 + 100);
        assertTrue(_onlyExecuted(_execProof(id, 0, 0, d)).success, "in the window");
        vm.warp(T0 + 699);
        assertEq(_skipReason(_execProof(id, 1, 0, d)), SKIP_NOT_DUE, "within the cooldown");
        vm.warp(T0 + 700);
        assertTrue(_onlyExecuted(_execProof(id, 1, 0, d)).success, "after the cooldown");
        vm.warp(T0 + 10_001);
        assertEq(_skipReason(_execProof(id, 2, 0, d)), SKIP_EXPIRED, "after the window");
    }

    function test_feeNeverAboveCap_evenWithAHeavyView() public {
        bytes memory d = _data(address(views), abi.encodeCall(Views.pair, ()), 1, READ_UINT256, CMP_EQ, 42, 1_000_000);
        WorkflowSpec memory s = _stateSpec(d);
        s.maxFeePerRun = 1e12;
        uint256 id = _create(alice, s);
        _gasPrice(100 * GWEI);
        Executed memory e = _onlyExecuted(_execProof(id, 0, 0, d));
        assertLe(e.fee, 1e12, "fee capped by maxFeePerRun");
    }

    /// The on-chain comparison agrees with Solidity's own for every comparator and reading.
    function testFuzz_comparison(int256 value, uint256 threshold, uint8 cmp, bool signed_) public {
        cmp = uint8(bound(cmp, 0, 5));
        views.setSigned(value);
        uint256 t = threshold;
        bytes memory d = _data(
            address(views), abi.encodeWithSignature("signed()"), 0, signed_ ? READ_INT256 : READ_UINT256, cmp, t, 30_000
        );
        bool expected;
        if (signed_) {
            int256 a = value;
            int256 b = int256(t);
            expected = cmp == CMP_LT
                ? a < b
                : cmp == CMP_LE
                    ? a <= b
                    : cmp == CMP_GT ? a > b : cmp == CMP_GE ? a >= b : cmp == CMP_EQ ? a == b : a != b;
        } else {
            uint256 a = uint256(value);
            expected = cmp == CMP_LT
                ? a < t
                : cmp == CMP_LE
                    ? a <= t
                    : cmp == CMP_GT ? a > t : cmp == CMP_GE ? a >= t : cmp == CMP_EQ ? a == t : a != t;
        }
        _expectRun(d, expected);
    }

    function bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return lo + x % (hi - lo + 1);
    }
}
