// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// Shared test scaffolding: the cheatcodes we use (the npm forge-std needs ds-test, so we declare
// them ourselves), tiny assertions, a deployed core with a Chainlink mock feed and a token, and
// builders for the specs every test file needs.

import {IAutometa} from "./IAutometa.sol";
import "../src/AutometaTypes.sol";

struct VmLog {
    bytes32[] topics;
    bytes data;
    address emitter;
}

interface Vm {
    function prank(address) external;
    function startPrank(address) external;
    function stopPrank() external;
    function deal(address, uint256) external;
    function warp(uint256) external;
    function chainId(uint256) external;
    function txGasPrice(uint256) external;
    function expectRevert(bytes calldata) external;
    function expectRevert(bytes4) external;
    function expectRevert() external;
    function sign(uint256, bytes32) external returns (uint8, bytes32, bytes32);
    function addr(uint256) external returns (address);
    function recordLogs() external;
    function getRecordedLogs() external returns (VmLog[] memory);
    function assume(bool) external;
    function label(address, string calldata) external;
    function etch(address, bytes calldata) external;
    function deployCode(string calldata, bytes calldata) external returns (address);
    function expectPartialRevert(bytes4) external;
    function fee(uint256) external;
    function roll(uint256) external;
    function setBlockhash(uint256, bytes32) external;
    function load(address, bytes32) external view returns (bytes32);
}

/// Chainlink's MockV3Aggregator (deployed from its artifact).
interface MockV3Aggregator {
    function decimals() external view returns (uint8);
    function updateAnswer(int256 answer) external;
    function updateRoundData(uint80 roundId, int256 answer, uint256 timestamp, uint256 startedAt) external;
    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80);
}

/// The dev ERC-20 (deployed from its artifact).
interface DevToken {
    function mint(address to, uint256 amount) external;
    function approve(address spender, uint256 amount) external returns (bool);
    function balanceOf(address who) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
}

/// The decoded RunExecuted event.
struct Executed {
    uint256 id;
    uint256 runIndex;
    address executor;
    bool success;
    uint8 status;
    uint256 gasUsed;
    uint256 gasPrice;
    uint256 fee;
    uint256 premiumBps;
    uint256 price;
    uint8 source;
}

abstract contract Asserts {
    Vm internal constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);

    function fail(string memory what) internal pure {
        revert(string.concat("assertion failed: ", what));
    }

    function assertTrue(bool ok, string memory what) internal pure {
        if (!ok) fail(what);
    }

    function assertEq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) fail(string.concat(what, " (", _str(a), " != ", _str(b), ")"));
    }

    function assertEq(address a, address b, string memory what) internal pure {
        if (a != b) fail(what);
    }

    function assertEq(bytes32 a, bytes32 b, string memory what) internal pure {
        if (a != b) fail(what);
    }

    function assertLe(uint256 a, uint256 b, string memory what) internal pure {
        if (a > b) fail(string.concat(what, " (", _str(a), " > ", _str(b), ")"));
    }

    function assertGe(uint256 a, uint256 b, string memory what) internal pure {
        if (a < b) fail(string.concat(what, " (", _str(a), " < ", _str(b), ")"));
    }

    function _str(uint256 v) internal pure returns (string memory) {
        if (v == 0) return "0";
        bytes memory b;
        while (v != 0) {
            b = bytes.concat(bytes1(uint8(48 + v % 10)), b);
            v /= 10;
        }
        return string(b);
    }
}

/// A target that records who called it and with what.
contract Recorder {
    address public lastSender;
    uint256 public lastValue;
    uint256 public calls;

    function poke(uint256 x) external payable returns (uint256) {
        lastSender = msg.sender;
        lastValue = msg.value;
        calls += 1;
        return x;
    }

    function boom() external payable {
        revert("boom");
    }

    receive() external payable {
        calls += 1;
    }
}

/// A recipient that refuses coin.
contract Refuser {
    receive() external payable {
        revert("no thanks");
    }
}

/// A recipient that burns all the gas it is given.
contract GasBurner {
    uint256 public spins;

    receive() external payable {
        while (true) {
            spins += 1;
        }
    }
}

/// An ERC-20 that returns false instead of reverting.
contract FalseToken {
    function transferFrom(address, address, uint256) external pure returns (bool) {
        return false;
    }
}

abstract contract Base is Asserts, IAutometaEvents, IAutometaErrors {
    bytes32 internal constant RUN_EXECUTED =
        keccak256("RunExecuted(uint256,uint256,address,bool,uint8,uint256,uint256,uint256,uint256,uint256,uint8)");
    bytes32 internal constant RUN_SKIPPED = keccak256("RunSkipped(uint256,uint256,address,uint8)");
    bytes32 internal constant RUN_FAILED = keccak256("RunFailed(uint256,uint256,bytes)");
    bytes32 internal constant STATUS_CHANGED = keccak256("WorkflowStatusChanged(uint256,uint8,uint8)");

    bytes32 internal constant ETH = bytes32("ethereum");
    bytes32 internal constant NO_FEED = bytes32("obscure-coin");
    uint256 internal constant T0 = 1_700_000_000;
    uint256 internal constant GWEI = 1e9;
    uint80 internal constant MAX_FEE = 0.01 ether;

    uint256 internal constant DELAY = 2 days; // the timelock of the core under test
    uint256 internal constant ALICE_KEY = 0xA11CE;
    uint256 internal constant BOB_KEY = 0xB0B;

    IAutometa internal core;
    MockV3Aggregator internal feed;
    DevToken internal token;
    address internal admin = address(0xAD);
    address internal executor = address(0xE1);
    address internal relayer = address(0xBEEF);
    address internal alice;
    address internal bob;
    address internal recipient = address(0xCAFE);

    function setUp() public virtual {
        vm.warp(T0);
        alice = vm.addr(ALICE_KEY);
        bob = vm.addr(BOB_KEY);
        core = _deployCore(admin);
        feed = _newFeed(8, 3250e8);
        token = DevToken(vm.deployCode("DevContracts.sol:DevToken", abi.encode("Dev", "DEV")));
        vm.startPrank(admin);
        core.setExecutor(executor, true);
        core.setFeed(ETH, address(feed), 3600);
        core.registerAsset(NO_FEED); // priced by the executor's attestation
        vm.stopPrank();
        vm.deal(alice, 100 ether);
        vm.deal(bob, 100 ether);
        vm.deal(recipient, 1 ether); // an existing account
        vm.txGasPrice(GWEI);
    }

    /// The real, via-IR-built Autometa from the forge artifact (tests never import the sources, so
    /// the shipped artifacts are built by one compiler profile only).
    function _deployCore(address admin_) internal returns (IAutometa) {
        return IAutometa(vm.deployCode("Autometa.sol:Autometa", abi.encode(admin_, DELAY, _noL1FeeModule())));
    }

    /// The chain module of an L1 / dev chain (no L1 data fee), from its artifact.
    function _noL1FeeModule() internal returns (address) {
        return vm.deployCode("ChainModules.sol:NoL1FeeModule", "");
    }

    /// An admin change that waits in the timelock once workflows exist: queue it (the call
    /// returns its id), wait out the delay, apply it. Applied at once when it was not queued.
    function _adminChange(bytes memory call) internal {
        vm.prank(admin);
        (bool ok, bytes memory ret) = address(core).call(call);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        uint256 changeId = abi.decode(ret, (uint256));
        if (changeId == 0) return;
        (,,, uint256 eta) = core.pendingChange(changeId);
        vm.warp(eta);
        vm.prank(admin);
        core.applyChange(changeId);
    }

    /// A transaction gas price the deployment's ceiling (base fee + tip cap) does not clip: the
    /// block's base fee moves with it.
    function _gasPrice(uint256 price) internal {
        vm.fee(price);
        vm.txGasPrice(price);
    }

    function _newFeed(uint8 decimals, int256 answer) internal returns (MockV3Aggregator) {
        return MockV3Aggregator(vm.deployCode("MockV3Aggregator.sol:MockV3Aggregator", abi.encode(decimals, answer)));
    }

    // ------------------------------------------------------------ spec builders

    function _nativeAction(WorkflowSpec memory s, address to, uint256 amount)
        internal
        pure
        returns (WorkflowSpec memory)
    {
        s.actionKind = ACTION_NATIVE;
        s.target = to;
        s.amount = amount;
        return s;
    }

    function _base() internal pure returns (WorkflowSpec memory s) {
        s.maxRuns = 1;
        s.gasLimit = 50_000;
        s.maxFeePerRun = MAX_FEE;
    }

    function _timeSpec(uint256 at) internal view returns (WorkflowSpec memory s) {
        s = _base();
        s.triggerKind = TRIGGER_TIME;
        s.startTime = uint40(at);
        s = _nativeAction(s, recipient, 0.1 ether);
    }

    function _intervalSpec(uint256 start, uint32 interval, uint256 end, uint32 maxRuns)
        internal
        view
        returns (WorkflowSpec memory s)
    {
        s = _base();
        s.triggerKind = TRIGGER_INTERVAL;
        s.startTime = uint40(start);
        s.interval = interval;
        s.endTime = uint40(end);
        s.maxRuns = maxRuns;
        s = _nativeAction(s, recipient, 0.1 ether);
    }

    function _priceSpec(bytes32 asset, uint8 comparator, uint64 threshold)
        internal
        view
        returns (WorkflowSpec memory s)
    {
        s = _base();
        s.triggerKind = TRIGGER_PRICE;
        s.comparator = comparator;
        s.priceUsd = threshold;
        s.asset = asset;
        s = _nativeAction(s, recipient, 0.1 ether);
    }

    // ------------------------------------------------------------ actions

    function _create(address owner, WorkflowSpec memory s) internal returns (uint256 id) {
        vm.prank(owner);
        id = core.createWorkflow(s);
    }

    function _deposit(address owner, uint256 amount) internal {
        vm.deal(address(this), address(this).balance + amount);
        core.depositFor{value: amount}(owner);
    }

    function _exec(uint256 id, uint32 runIndex) internal returns (VmLog[] memory logs) {
        return _exec(id, runIndex, 0);
    }

    function _exec(uint256 id, uint32 runIndex, uint64 attested) internal returns (VmLog[] memory logs) {
        vm.recordLogs();
        vm.prank(executor);
        core.execute(id, runIndex, attested);
        logs = vm.getRecordedLogs();
    }

    function _execProof(uint256 id, uint32 runIndex, uint64 attested, bytes memory proof)
        internal
        returns (VmLog[] memory logs)
    {
        vm.recordLogs();
        vm.prank(executor);
        core.executeWithProof(id, runIndex, attested, proof);
        logs = vm.getRecordedLogs();
    }

    function _status(uint256 id) internal view returns (uint8) {
        return core.getWorkflow(id).status;
    }

    function _runCount(uint256 id) internal view returns (uint32) {
        return core.getWorkflow(id).runCount;
    }

    // ------------------------------------------------------------ log decoding

    /// The skip reason of the last RunSkipped in `logs` (0 if none).
    function _skipReason(VmLog[] memory logs) internal pure returns (uint8 reason) {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == RUN_SKIPPED) reason = abi.decode(logs[i].data, (uint8));
        }
    }

    function _countTopic(VmLog[] memory logs, bytes32 topic) internal pure returns (uint256 n) {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == topic) ++n;
        }
    }

    /// All RunExecuted events in `logs`.
    function _executed(VmLog[] memory logs) internal pure returns (Executed[] memory out) {
        out = new Executed[](_countTopic(logs, RUN_EXECUTED));
        uint256 k;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] != RUN_EXECUTED) continue;
            Executed memory e = out[k++];
            e.id = uint256(logs[i].topics[1]);
            e.runIndex = uint256(logs[i].topics[2]);
            e.executor = address(uint160(uint256(logs[i].topics[3])));
            (e.success, e.status, e.gasUsed, e.gasPrice, e.fee, e.premiumBps, e.price, e.source) =
                abi.decode(logs[i].data, (bool, uint8, uint256, uint256, uint256, uint256, uint256, uint8));
        }
    }

    function _onlyExecuted(VmLog[] memory logs) internal pure returns (Executed memory) {
        Executed[] memory all = _executed(logs);
        if (all.length != 1) fail(string.concat("expected one RunExecuted, got ", _str(all.length)));
        return all[0];
    }

    function _failReason(VmLog[] memory logs) internal pure returns (bytes memory reason) {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == RUN_FAILED) reason = abi.decode(logs[i].data, (bytes));
        }
    }

    /// (status, reason) of the last WorkflowStatusChanged in `logs`; (255, 255) if none.
    function _statusChange(VmLog[] memory logs) internal pure returns (uint8 status, uint8 reason) {
        status = 255;
        reason = 255;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == STATUS_CHANGED) (status, reason) = abi.decode(logs[i].data, (uint8, uint8));
        }
    }

    receive() external payable {}
}
