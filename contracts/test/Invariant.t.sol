// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "./Base.t.sol";

/// Drives the core with random users, executors, relayers and strangers, and keeps the ghost
/// records the invariants are checked against.
contract Handler is Asserts {
    bytes32 internal constant RUN_EXECUTED =
        keccak256("RunExecuted(uint256,uint256,address,bool,uint8,uint256,uint256,uint256,uint256,uint256,uint8)");
    bytes32 internal constant RUN_SKIPPED = keccak256("RunSkipped(uint256,uint256,address,uint8)");

    IAutometa public immutable core;
    MockV3Aggregator public immutable feed;
    address public immutable executor;
    address public immutable refuser;
    uint256[3] internal keys = [uint256(0xA11CE), 0xB0B, 0xCA401];
    address[] public users;
    address[] public everyone; // every address that may hold an escrow balance
    uint256[] public ids;

    mapping(uint256 => mapping(uint256 => bool)) public ran; // (workflow, runIndex) succeeded
    uint256 public doubleRuns;
    uint256 public feeAboveCap;
    uint256 public strangerStatusChanges;
    uint256 public successfulRuns;
    uint256 public calls;
    // Ghost ledger of coin the handler moved in and out of escrow: Σ balances must equal it.
    uint256 public deposited;
    uint256 public withdrawn;
    uint256 public paidOut;
    // Issue 12: a fee computed above min(tx gas price, base fee + tip cap); a signature used
    // with a nonce that a direct change or an invalidation had made stale; out-of-gas skips seen.
    uint256 public priceAboveCeiling;
    uint256 public staleSignatureUsed;
    uint256 public outOfGasSkips;
    uint256 internal _txGasPrice;
    MoodyBurner public immutable moody;

    constructor(IAutometa core_, MockV3Aggregator feed_, address executor_) {
        core = core_;
        feed = feed_;
        executor = executor_;
        refuser = address(new Refuser());
        moody = new MoodyBurner();
        for (uint256 i; i < keys.length; ++i) {
            address u = vm.addr(keys[i]);
            users.push(u);
            everyone.push(u);
            vm.deal(u, 1_000 ether);
        }
        everyone.push(executor);
        everyone.push(address(0xBEEF)); // the relayer
    }

    function everyoneLength() external view returns (uint256) {
        return everyone.length;
    }

    function idsLength() external view returns (uint256) {
        return ids.length;
    }

    function _user(uint256 seed) internal view returns (address) {
        return users[seed % users.length];
    }

    function _id(uint256 seed) internal view returns (uint256) {
        return ids.length == 0 ? 1 : ids[seed % ids.length];
    }

    // ------------------------------------------------------------ escrow

    function deposit(uint256 who, uint256 amount) external {
        ++calls;
        address u = _user(who);
        amount = amount % 5 ether;
        vm.prank(u);
        core.deposit{value: amount}();
        deposited += amount;
    }

    function withdraw(uint256 who, uint256 amount) external {
        ++calls;
        address u = everyone[who % everyone.length];
        uint256 bal = core.balanceOf(u);
        if (bal == 0) return;
        vm.prank(u);
        core.withdraw(1 + amount % bal);
        withdrawn += 1 + amount % bal;
    }

    function setCap(uint256 who, uint64 cap) external {
        ++calls;
        vm.prank(_user(who));
        core.setMaxGasPrice(cap % 3 == 0 ? 0 : cap % 100 gwei);
    }

    // ------------------------------------------------------------ workflows

    function create(uint256 who, uint8 kind, uint8 targetSeed, uint32 maxRuns, uint80 maxFee) external {
        ++calls;
        WorkflowSpec memory s;
        s.triggerKind = kind % 3;
        s.maxRuns = s.triggerKind == TRIGGER_TIME ? 1 : 1 + maxRuns % 5;
        s.startTime = uint40(block.timestamp + (maxRuns % 3) * 100);
        if (s.triggerKind == TRIGGER_INTERVAL) {
            s.interval = 60;
            if (maxFee % 2 == 0) s.endTime = uint40(block.timestamp + 1_000);
        }
        if (s.triggerKind == TRIGGER_PRICE) {
            s.comparator = uint8(targetSeed % 2);
            s.priceUsd = 3_250e8;
            s.asset = targetSeed % 4 == 0 ? bytes32("obscure-coin") : bytes32("ethereum");
            s.interval = 30;
        }
        s.actionKind = ACTION_NATIVE;
        s.target = targetSeed % 5 == 0 ? refuser : address(uint160(0x1000 + targetSeed % 3));
        s.amount = 0.01 ether + (maxFee % 7) * 0.01 ether;
        s.gasLimit = 30_000;
        if (targetSeed % 7 == 3) {
            // a call action whose gas use swings (the batch-revert attack of item 5)
            (s.actionKind, s.target, s.amount, s.data) = (ACTION_CALL, address(moody), 0, abi.encodeCall(MoodyBurner.act, ()));
            s.gasLimit = uint24(100_000 + (maxFee % 5) * 200_000);
        }
        s.maxFeePerRun = uint80(1e12 + maxFee % 0.002 ether);
        vm.prank(_user(who));
        try core.createWorkflow(s) returns (uint256 id) {
            ids.push(id);
        } catch {}
    }

    function _record(VmLog[] memory logs) internal {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == RUN_SKIPPED && abi.decode(logs[i].data, (uint8)) == SKIP_OUT_OF_GAS) ++outOfGasSkips;
            if (logs[i].topics[0] != RUN_EXECUTED) continue;
            uint256 id = uint256(logs[i].topics[1]);
            uint256 runIndex = uint256(logs[i].topics[2]);
            (bool success,,, uint256 gasPrice, uint256 fee,,,) =
                abi.decode(logs[i].data, (bool, uint8, uint256, uint256, uint256, uint256, uint256, uint8));
            if (fee > core.getWorkflow(id).spec.maxFeePerRun) ++feeAboveCap;
            if (gasPrice > _txGasPrice || gasPrice > block.basefee + core.maxTipPerGas()) ++priceAboveCeiling;
            if (!success) continue;
            if (ran[id][runIndex]) ++doubleRuns;
            ran[id][runIndex] = true;
            paidOut += core.getWorkflow(id).spec.amount;
            ++successfulRuns;
        }
    }

    function execute(uint256 wf, uint8 back, uint64 attested, uint64 gasPrice) external {
        ++calls;
        uint256 id = _id(wf);
        if (id > core.workflowCount()) return;
        uint256 runCount = core.getWorkflow(id).runCount;
        uint32 runIndex =
            uint32(back % 3 == 0 && runCount != 0 ? runCount - 1 : back % 7 == 1 ? runCount + 1 : runCount);
        _price(gasPrice % 200 gwei, attested);
        vm.recordLogs();
        vm.prank(executor);
        try core.execute(id, runIndex, attested % 2 == 0 ? 0 : 3_000e8 + attested % 500e8) {} catch {}
        _record(vm.getRecordedLogs());
    }

    function executeBatch(uint256 seed, uint8 n) external {
        ++calls;
        if (ids.length == 0) return;
        n = 1 + n % 6;
        uint256[] memory runs = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            uint256 id = _id(seed >> (i * 8));
            uint256 runCount = core.getWorkflow(id).runCount;
            // duplicates and replays on purpose
            runs[i] = (id << 96) | ((i % 3 == 2 && runCount != 0 ? runCount - 1 : runCount) << 64) | 3_100e8;
        }
        _price(seed % 50 gwei, seed >> 128);
        moody.arm(seed % 3 == 0); // sometimes the call actions burn their whole limit
        vm.recordLogs();
        vm.prank(executor);
        // a gas limit that is sometimes too small for every item: those are skipped, never charged
        try core.executeBatch{gas: 300_000 + (seed >> 64) % 3_000_000}(runs) {} catch {}
        _record(vm.getRecordedLogs());
    }

    /// A random caller (user, executor, relayer, stranger) tries a random status change.
    function changeStatus(uint256 callerSeed, uint256 wf, uint8 op) external {
        ++calls;
        if (ids.length == 0) return;
        uint256 id = _id(wf);
        address[6] memory callers = [users[0], users[1], users[2], executor, address(0xBEEF), address(0xD00D)];
        address caller = callers[callerSeed % callers.length];
        address owner = core.getWorkflow(id).owner;
        uint8 before = core.getWorkflow(id).status;
        op = op % 3;
        vm.prank(caller);
        if (op == OP_PAUSE) try core.pauseWorkflow(id) {} catch {} else if (op == OP_RESUME) try core.resumeWorkflow(
            id
        ) {}
            catch {} else try core.cancelWorkflow(id) {} catch {}
        if (caller != owner && core.getWorkflow(id).status != before) ++strangerStatusChanges;
    }

    /// A relayer submits a status change signed by a random user (often not the owner).
    function changeStatusBySig(uint256 signerSeed, uint256 wf, uint8 op, uint256 fee) external {
        ++calls;
        if (ids.length == 0) return;
        uint256 id = _id(wf);
        uint256 key = keys[signerSeed % keys.length];
        address owner = core.getWorkflow(id).owner;
        uint8 before = core.getWorkflow(id).status;
        op = op % 3;
        fee = fee % 0.001 ether;
        uint256 nonce = core.nonces(owner);
        bytes memory sig = _sign(key, owner, id, op, nonce, fee);
        vm.txGasPrice(1 gwei);
        vm.prank(address(0xBEEF));
        try core.changeStatusBySig(id, op, nonce, block.timestamp + 60, fee, sig) {} catch {}
        if (vm.addr(key) != owner && core.getWorkflow(id).status != before) ++strangerStatusChanges;
    }

    /// A relayer submits a signature made at a nonce that is no longer the owner's (used by a
    /// direct change, or invalidated): it must never go through.
    function staleSignature(uint256 wf, uint8 op, uint256 back) external {
        ++calls;
        if (ids.length == 0) return;
        uint256 id = _id(wf);
        address owner = core.getWorkflow(id).owner;
        uint256 current = core.nonces(owner);
        if (current == 0) return;
        uint256 nonce = current - 1 - back % current;
        uint256 key;
        for (uint256 i; i < keys.length; ++i) {
            if (vm.addr(keys[i]) == owner) key = keys[i];
        }
        bytes memory sig = _sign(key, owner, id, op % 3, nonce, 0);
        vm.prank(address(0xBEEF));
        try core.changeStatusBySig(id, op % 3, nonce, block.timestamp + 60, 0, sig) {
            ++staleSignatureUsed;
        } catch {}
    }

    function invalidate(uint256 who) external {
        ++calls;
        vm.prank(_user(who));
        core.invalidateNonces();
    }

    /// A gas price with a base fee below it (sometimes far below: the executor bids high).
    function _price(uint256 txPrice, uint256 seed) internal {
        _txGasPrice = txPrice;
        vm.txGasPrice(txPrice);
        vm.fee(seed % 2 == 0 ? txPrice : txPrice / (1 + seed % 1000));
    }

    function _sign(uint256 key, address owner, uint256 id, uint8 op, uint256 nonce, uint256 fee)
        internal
        returns (bytes memory)
    {
        bytes32 typehash =
            op == OP_PAUSE ? core.PAUSE_TYPEHASH() : op == OP_RESUME ? core.RESUME_TYPEHASH() : core.CANCEL_TYPEHASH();
        bytes32 structHash = keccak256(abi.encode(typehash, owner, id, nonce, block.timestamp + 60, fee));
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(key, keccak256(abi.encodePacked(hex"1901", core.domainSeparator(), structHash)));
        return abi.encodePacked(r, s, v);
    }

    // ------------------------------------------------------------ the world

    function warp(uint16 dt) external {
        ++calls;
        vm.warp(block.timestamp + dt % 400);
    }

    function movePrice(uint64 p) external {
        ++calls;
        feed.updateAnswer(int256(uint256(3_000e8 + p % 500e8)));
    }
}

/// A call target that burns all the gas it gets while armed.
contract MoodyBurner {
    bool public armed;
    uint256 public spins;

    function arm(bool on) external {
        armed = on;
    }

    function act() external {
        while (armed) {
            spins += 1;
        }
    }
}

contract InvariantTest is Base {
    Handler internal handler;

    function setUp() public override {
        super.setUp();
        vm.prank(admin); // a day-long max age, so price runs happen through the warps
        core.setFeed(ETH, address(feed), 1 days);
        handler = new Handler(core, feed, executor);
    }

    function targetContracts() public view returns (address[] memory t) {
        t = new address[](1);
        t[0] = address(handler);
    }

    /// The core holds exactly the sum of every balance (users, executor fees, relayer fees).
    function invariant_solvency() public view {
        uint256 sum;
        for (uint256 i; i < handler.everyoneLength(); ++i) {
            sum += core.balanceOf(handler.everyone(i));
        }
        // Solvency: the core always holds every balance. The invariant engine can put coin on the
        // core's address outside the handler, so a surplus is allowed; exactness is checked
        // against the handler's ghost ledger of deposits, withdrawals and payouts instead.
        assertGe(address(core).balance, sum, "core balance >= sum of balances");
        assertEq(sum, handler.deposited() - handler.withdrawn() - handler.paidOut(), "balances == ghost ledger");
    }

    function invariant_runCountWithinMaxRuns() public view {
        uint256 n = core.workflowCount();
        for (uint256 id = 1; id <= n; ++id) {
            WorkflowView memory v = core.getWorkflow(id);
            assertLe(v.runCount, v.spec.maxRuns, "runCount <= maxRuns");
            if (v.runCount == v.spec.maxRuns) assertEq(v.status, STATUS_COMPLETED, "full => completed");
        }
    }

    function invariant_noRunExecutedTwice() public view {
        assertEq(handler.doubleRuns(), 0, "a (workflow, runIndex) succeeded twice");
    }

    function invariant_feeNeverAboveCap() public view {
        assertEq(handler.feeAboveCap(), 0, "fee above maxFeePerRun");
    }

    /// Issue 12: the fee's gas price is at most min(tx gas price, base fee + the tip cap).
    function invariant_priceNeverAboveCeiling() public view {
        assertEq(handler.priceAboveCeiling(), 0, "fee computed above the gas-price ceiling");
    }

    /// Issue 12: a signature whose nonce was consumed (by a direct change, or invalidated) never works.
    function invariant_staleSignaturesNeverWork() public view {
        assertEq(handler.staleSignatureUsed(), 0, "a stale signature was used");
    }

    function invariant_statusOnlyByOwner() public view {
        assertEq(handler.strangerStatusChanges(), 0, "a non-owner changed a status");
    }
}
