// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable2Step, Ownable} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";
import {WorkflowRegistry} from "./WorkflowRegistry.sol";
import {OwnerProxy} from "./OwnerProxy.sol";
import {CalldataGas} from "./CalldataGas.sol";
import "./AutometaTypes.sol";

/// @title ActionExecutor — runs due workflows exactly once and charges a capped fee.
/// @notice Allow-listed executors call `execute` / `executeBatch` naming the run they perform
/// (workflow id, run index). The contract runs it only if that index is the next one, the
/// workflow is active and its trigger holds on-chain; otherwise it records a skip and charges
/// nothing. An executor is trusted only to show up: time is `block.timestamp`, prices come from
/// a registered feed wherever one exists.
abstract contract ActionExecutor is WorkflowRegistry, Ownable2Step {
    struct Config {
        bool paused;
        uint16 premiumBps;
        uint8 maxFailures;
    }

    uint256 public constant MAX_PREMIUM_BPS = 5_000; // at most +50 % on top of gas cost
    uint256 public constant MAX_BATCH = 256;
    /// Gas the contract spends that `gasleft()` cannot see: the intrinsic 21,000, dispatch
    /// before the first measurement and bookkeeping after the last (calibrated by bench/gas.py;
    /// the calldata's own cost is counted exactly on top).
    uint256 internal constant SINGLE_OVERHEAD = 21_000 + 10_300;
    uint256 internal constant BATCH_OVERHEAD = 21_000 + 9_000;
    uint256 internal constant ITEM_OVERHEAD = 3_000;
    /// Upper bound on a run's gas besides its action, for the escrow check before the action.
    uint256 internal constant RUN_GAS_BOUND = 120_000;
    /// Gas kept back when checking that the action can get its full gas limit (EIP-150).
    uint256 internal constant CALL_RESERVE = 40_000;
    /// Fee-bound allowance per 32 bytes of a call action's stored calldata (a cold SLOAD + copying).
    uint256 internal constant CALLDATA_SLOT_GAS = 2_300;

    Config internal _config;

    constructor(address admin) Ownable(admin) {
        _config = Config({paused: false, premiumBps: 1_000, maxFailures: 3});
        emit PremiumSet(1_000);
        emit MaxFailuresSet(3);
    }

    // ------------------------------------------------------------------ execute

    /// @notice Perform run `runIndex` of `workflowId`. `attestedPrice` (USD, 8 decimals) is used
    /// only for a price trigger whose asset has no feed.
    function execute(uint256 workflowId, uint32 runIndex, uint64 attestedPrice) external nonReentrant {
        uint256 gasStart = gasleft();
        Config memory c = _config;
        if (c.paused) revert ExecutionIsPaused();
        Account storage ex = _accounts[msg.sender];
        if (!ex.isExecutor) revert NotExecutor(msg.sender);
        uint256 fee = _run(workflowId, runIndex, attestedPrice, c, gasStart, SINGLE_OVERHEAD + CalldataGas.cost());
        if (fee != 0) ex.balance += uint128(fee);
    }

    /// @notice Perform several runs; each entry packs `workflowId << 96 | runIndex << 64 | attestedPrice`.
    /// One failing or skipped run never reverts the others.
    function executeBatch(uint256[] calldata runs) external nonReentrant {
        uint256 gasStart = gasleft();
        Config memory c = _config;
        if (c.paused) revert ExecutionIsPaused();
        Account storage ex = _accounts[msg.sender];
        if (!ex.isExecutor) revert NotExecutor(msg.sender);
        uint256 n = runs.length;
        if (n == 0 || n > MAX_BATCH) revert BadBatch(n);
        uint256 shared = (BATCH_OVERHEAD + CalldataGas.cost() + gasStart - gasleft()) / n + ITEM_OVERHEAD;
        uint256 total;
        for (uint256 i; i < n; ++i) {
            uint256 r = runs[i];
            total += _run(r >> 96, uint32(r >> 64), uint64(r), c, gasleft(), shared);
        }
        if (total != 0) ex.balance += uint128(total);
    }

    // ------------------------------------------------------------------ admin

    function setExecutor(address executor, bool allowed) external onlyOwner {
        _accounts[executor].isExecutor = allowed;
        emit ExecutorSet(executor, allowed);
    }

    /// @notice Register (or with `feed == 0`, remove) the price feed an asset's triggers are checked against.
    function setFeed(bytes32 asset, address feed, uint32 maxAge) external onlyOwner {
        if (asset == bytes32(0)) revert InvalidFeed(asset, feed);
        uint16 id = _assetIdOrRegister(asset);
        Asset storage a = _assets[id];
        uint8 decimals;
        if (feed != address(0)) {
            if (maxAge == 0 || feed.code.length == 0) revert InvalidFeed(asset, feed);
            decimals = AggregatorV3Interface(feed).decimals();
            if (decimals > 36) revert InvalidFeed(asset, feed);
        }
        a.feed = feed;
        a.maxAge = maxAge;
        a.decimals = decimals;
        emit FeedSet(asset, id, feed, maxAge, decimals);
    }

    function setPremium(uint16 premiumBps) external onlyOwner {
        if (premiumBps > MAX_PREMIUM_BPS) revert PremiumTooHigh(premiumBps, MAX_PREMIUM_BPS);
        _config.premiumBps = premiumBps;
        emit PremiumSet(premiumBps);
    }

    function setMaxFailures(uint8 maxFailures) external onlyOwner {
        if (maxFailures == 0 || maxFailures > 20) revert MaxFailuresOutOfRange(maxFailures);
        _config.maxFailures = maxFailures;
        emit MaxFailuresSet(maxFailures);
    }

    /// @notice Emergency stop of execution and creation. Deposits, withdrawals, pauses and
    /// cancels always stay open, so users can always leave.
    function setPaused(bool paused) external onlyOwner {
        _config.paused = paused;
        emit ExecutionPausedSet(paused);
    }

    function config() external view returns (bool paused, uint256 premiumBps, uint256 maxFailures) {
        Config memory c = _config;
        return (c.paused, c.premiumBps, c.maxFailures);
    }

    /// @notice The price a price trigger of `asset` would be checked against now, and its source.
    function currentPrice(bytes32 asset, uint64 attestedPrice) external view returns (bool ok, uint256 price, uint8 source) {
        return _price(_assetIds[asset], attestedPrice);
    }

    // ------------------------------------------------------------------ internals

    function _requireCreationOpen() internal view override {
        if (_config.paused) revert ExecutionIsPaused();
    }

    /// One run: check, consume, act, charge. Returns the fee credited to the executor.
    function _run(uint256 id, uint32 runIndex, uint64 attestedPrice, Config memory c, uint256 gasStart, uint256 extraGas)
        private
        returns (uint256 fee)
    {
        Workflow storage w = _workflows[id];
        // A done run index is reported as done whatever the status (a replay of the last run of a
        // completed workflow is "done", not "not active"), so an executor can tell it succeeded.
        uint32 runCount = w.runCount;
        if (runIndex < runCount) return _skip(id, runIndex, SKIP_RUN_DONE);
        if (w.status != STATUS_ACTIVE) return _skip(id, runIndex, SKIP_NOT_ACTIVE);
        if (runIndex != runCount) return _skip(id, runIndex, SKIP_BAD_RUN_INDEX);

        // -- trigger, checked on-chain
        uint40 lastRun = w.lastRun;
        uint40 endTime = w.endTime;
        if (endTime != 0 && block.timestamp > endTime) {
            w.status = STATUS_COMPLETED;
            emit WorkflowStatusChanged(id, STATUS_COMPLETED, CHANGE_BY_EXPIRY);
            return _skip(id, runIndex, SKIP_EXPIRED);
        }
        uint256 due = runCount == 0 ? w.startTime : uint256(lastRun) + w.interval;
        if (block.timestamp < due) return _skip(id, runIndex, SKIP_NOT_DUE);
        uint256 price;
        uint8 source;
        if (w.triggerKind == TRIGGER_PRICE) {
            bool ok;
            (ok, price, source) = _price(w.assetId, attestedPrice);
            if (!ok) return _skip(id, runIndex, SKIP_PRICE_UNAVAILABLE);
            uint256 threshold = w.priceUsd;
            if (w.comparator == COMPARATOR_BELOW ? price >= threshold : price <= threshold) {
                return _skip(id, runIndex, SKIP_CONDITION_FALSE);
            }
        }

        // -- escrow: the owner must cover the amount and the most this run's fee can be
        address owner = w.owner;
        Account storage acct = _accounts[owner];
        uint256 gasPrice = tx.gasprice;
        {
            uint256 cap = acct.maxGasPrice;
            if (cap != 0 && cap < gasPrice) gasPrice = cap;
        }
        uint256 value = w.value;
        uint256 runGas = w.gasLimit + RUN_GAS_BOUND + extraGas;
        // A call action first loads its calldata from storage: one cold slot per 32 bytes.
        if (w.actionKind == ACTION_CALL) runGas += (_callData[id].length / 32 + 1) * CALLDATA_SLOT_GAS;
        uint256 feeBound = (runGas * gasPrice * (10_000 + c.premiumBps)) / 10_000;
        if (feeBound > w.maxFeePerRun) feeBound = w.maxFeePerRun;
        uint256 balance = acct.balance;
        if (balance < value + feeBound) return _skip(id, runIndex, SKIP_INSUFFICIENT_ESCROW);

        // -- consume the run before acting (a re-entrant call sees it done), roll back on failure
        uint32 nextCount = runCount + 1;
        uint8 status = nextCount == w.maxRuns ? STATUS_COMPLETED : STATUS_ACTIVE;
        w.runCount = nextCount;
        w.lastRun = uint40(block.timestamp);
        w.status = status;
        if (value != 0) acct.balance = uint128(balance - value);
        (bool success, bytes memory reason) = _act(id, w, owner, value);
        if (success) {
            if (w.failures != 0) w.failures = 0;
            if (status == STATUS_COMPLETED) emit WorkflowStatusChanged(id, STATUS_COMPLETED, CHANGE_BY_COMPLETION);
        } else {
            w.runCount = runCount;
            w.lastRun = lastRun;
            status = STATUS_ACTIVE;
            if (value != 0) acct.balance = uint128(balance);
            uint8 failures = w.failures + 1;
            w.failures = failures;
            if (failures >= c.maxFailures) {
                status = STATUS_PAUSED;
                emit WorkflowStatusChanged(id, STATUS_PAUSED, CHANGE_BY_FAILURES);
            }
            w.status = status;
            emit RunFailed(id, runIndex, reason);
        }

        // -- charge: measured gas + what gasleft() cannot see, at min(gas price, owner's cap), + premium
        uint256 gasUsed = gasStart - gasleft() + extraGas;
        fee = (gasUsed * gasPrice * (10_000 + c.premiumBps)) / 10_000;
        if (fee > feeBound) fee = feeBound;
        acct.balance -= uint128(fee);
        emit RunExecuted(
            id, runIndex, msg.sender, success, status, gasUsed, gasPrice, fee, c.premiumBps, price, source
        );
    }

    function _skip(uint256 id, uint32 runIndex, uint8 reason) private returns (uint256) {
        emit RunSkipped(id, runIndex, msg.sender, reason);
        return 0;
    }

    /// The action, with exactly the workflow's gas limit. Never reverts; reports success.
    function _act(uint256 id, Workflow storage w, address owner, uint256 value)
        private
        returns (bool success, bytes memory reason)
    {
        uint256 gasLimit = w.gasLimit;
        uint8 kind = w.actionKind;
        address target = w.target;
        if (kind == ACTION_NATIVE) {
            return _call(id, target, value, gasLimit, "");
        }
        if (kind == ACTION_ERC20) {
            TokenAction storage t = _tokenActions[id];
            (success, reason) =
                _call(id, t.token, 0, gasLimit, abi.encodeWithSelector(0x23b872dd, owner, target, t.amount));
            // Tokens that return nothing are accepted; tokens that return false failed.
            if (success && reason.length != 0 && (reason.length < 32 || abi.decode(reason, (uint256)) != 1)) {
                success = false;
            }
            return (success, reason);
        }
        return _call(id, proxyOf(owner), value, gasLimit, abi.encodeCall(OwnerProxy.forward, (target, _callData[id])));
    }

    /// A call with exactly `gasLimit` gas that copies at most 256 bytes of return data, so a
    /// callee cannot make the executor pay for a return bomb.
    function _call(uint256 id, address to, uint256 value, uint256 gasLimit, bytes memory data)
        private
        returns (bool ok, bytes memory ret)
    {
        // EIP-150 passes on at most 63/64 of what is left: make sure the action gets all of its
        // limit, or refuse the whole call, so an executor cannot starve an action into failing.
        // Checked here, after the calldata is loaded from storage, right before the CALL.
        if (gasleft() < gasLimit + gasLimit / 63 + CALL_RESERVE) revert NotEnoughGasForAction(id, gasLimit);
        assembly ("memory-safe") {
            ok := call(gasLimit, to, value, add(data, 0x20), mload(data), 0, 0)
            let size := returndatasize()
            if gt(size, 256) { size := 256 }
            ret := mload(0x40)
            mstore(ret, size)
            returndatacopy(add(ret, 0x20), 0, size)
            mstore(0x40, add(add(ret, 0x20), and(add(size, 31), not(31))))
        }
    }

    /// Price (USD, 8 decimals) from the asset's feed, or the executor's attested price when the
    /// asset has none.
    function _price(uint16 assetId_, uint64 attestedPrice) internal view returns (bool ok, uint256 price, uint8 source) {
        Asset storage a = _assets[assetId_];
        address feed = a.feed;
        if (feed == address(0)) {
            return (attestedPrice != 0, attestedPrice, SOURCE_ATTESTED);
        }
        try AggregatorV3Interface(feed).latestRoundData() returns (uint80, int256 answer, uint256, uint256 updatedAt, uint80) {
            if (answer <= 0 || updatedAt > block.timestamp || block.timestamp - updatedAt > a.maxAge) {
                return (false, 0, SOURCE_ORACLE);
            }
            uint8 decimals = a.decimals;
            price = decimals >= 8 ? uint256(answer) / 10 ** (decimals - 8) : uint256(answer) * 10 ** (8 - decimals);
            return (true, price, SOURCE_ORACLE);
        } catch {
            return (false, 0, SOURCE_ORACLE);
        }
    }
}
