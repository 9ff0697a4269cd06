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
    /// before the first measurement and bookkeeping after the last (the calldata's own cost is
    /// counted exactly on top, by CalldataGas). Calibrated with bench/gas.py on anvil (cancun),
    /// which prints residual = receipt.gasUsed − Σ RunExecuted.gasUsed:
    /// - SINGLE: residual of a steady-state `execute` (PRICE and TIME workflows, native action)
    ///   was −626 with 21,000 + 10,300, so 21,000 + 9,670; after the slot-0/1 rework −6 / −13 → 9,660;
    ///   after the price-trigger union and the leaner fee debit / RunExecuted −266 / −273 → 9,390.
    /// - BATCH / ITEM: residual(n) of `executeBatch` is linear in the batch size n (per item, the
    ///   loop and the fee debit + RunExecuted emitted after the item's last `gasleft()`). Measured
    ///   at n = 1 and n = 50: residual ≈ −4,807 + 2,123·n with 21,000 + 9,000 / 3,000, so
    ///   BATCH = 21,000 + 4,190 + 150 and ITEM = 3,000 + 2,123 − 24 after re-measuring; after the
    ///   leaner fee debit / RunExecuted ≈ 6 − 280.5·n, so BATCH + 6 and ITEM − 280.
    /// Result: |fee − gasUsed × price × (1 + premium)| ≤ 0.2 % of the tx cost in every measured case.
    uint256 internal constant SINGLE_OVERHEAD = 21_000 + 9_390;
    uint256 internal constant BATCH_OVERHEAD = 21_000 + 4_346;
    uint256 internal constant ITEM_OVERHEAD = 4_820;
    /// Upper bound on a run's gas besides its action, for the escrow check before the action.
    uint256 internal constant RUN_GAS_BOUND = 120_000;
    /// Gas kept back when checking that the action can get its full gas limit (EIP-150).
    uint256 internal constant CALL_RESERVE = 40_000;
    /// Fee-bound allowance per 32 bytes of a call action's stored calldata (a cold SLOAD + copying).
    uint256 internal constant CALLDATA_SLOT_GAS = 2_300;

    /// Bit offsets in Workflow slot 0: owner (0), status (160), triggerKind (168), actionKind (176),
    /// runCount (184), lastRun (216). S0_KEEP keeps owner and both kinds.
    uint256 private constant S0_STATUS = 160;
    uint256 private constant S0_TRIGGER_KIND = 168;
    uint256 private constant S0_ACTION_KIND = 176;
    uint256 private constant S0_RUN_COUNT = 184;
    uint256 private constant S0_LAST_RUN = 216;
    /// Bit offsets in Workflow slot 1: maxFeePerRun (0), gasLimit (80), maxRuns (104), failures (136),
    /// trigger (144; a union on the trigger kind, offsets T_* in WorkflowRegistry).
    uint256 private constant S1_GAS_LIMIT = 80;
    uint256 private constant S1_MAX_RUNS = 104;
    uint256 private constant S1_FAILURES = 136;
    uint256 private constant S1_TRIGGER = 144;
    /// Bit offsets in an Account word (FeeEscrow): balance (0, 128 bits), maxGasPrice (128), isExecutor (192).
    uint256 private constant A_BALANCE = type(uint128).max;
    uint256 private constant A_MAX_GAS_PRICE = 128;
    uint256 private constant S0_KEEP = (uint256(1) << 160) - 1 | (uint256(0xffff) << 168);

    /// The last oracle price read in this transaction: a batch reads each feed once.
    struct PriceCache {
        uint16 assetId; // 0 = empty (asset ids start at 1)
        uint256 price;
    }

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
        PriceCache memory pc;
        uint256 fee = _run(workflowId, runIndex, attestedPrice, c, pc, gasStart, SINGLE_OVERHEAD + CalldataGas.cost());
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
        PriceCache memory pc;
        for (uint256 i; i < n; ++i) {
            uint256 r = runs[i];
            total += _run(r >> 96, uint32(r >> 64), uint64(r), c, pc, gasleft(), shared);
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
    function _run(
        uint256 id,
        uint32 runIndex,
        uint64 attestedPrice,
        Config memory c,
        PriceCache memory pc,
        uint256 gasStart,
        uint256 extraGas
    ) private
        returns (uint256 fee)
    {
        Workflow storage w = _workflows[id];
        // Slot 0 (owner, status, kinds, runCount, lastRun) is read once and written once per run;
        // see the Workflow layout in WorkflowRegistry.
        uint256 s0;
        assembly ("memory-safe") {
            s0 := sload(w.slot)
        }
        // A done run index is reported as done whatever the status (a replay of the last run of a
        // completed workflow is "done", not "not active"), so an executor can tell it succeeded.
        uint32 runCount = uint32(s0 >> S0_RUN_COUNT);
        if (runIndex < runCount) return _skip(id, runIndex, SKIP_RUN_DONE);
        if (uint8(s0 >> S0_STATUS) != STATUS_ACTIVE) return _skip(id, runIndex, SKIP_NOT_ACTIVE);
        if (runIndex != runCount) return _skip(id, runIndex, SKIP_BAD_RUN_INDEX);

        // -- trigger, checked on-chain
        uint256 s1; // slot 1: maxFeePerRun, gasLimit, maxRuns, failures, trigger (union)
        assembly ("memory-safe") {
            s1 := sload(add(w.slot, 1))
        }
        uint256 t = s1 >> S1_TRIGGER;
        bool isPrice = uint8(s0 >> S0_TRIGGER_KIND) == TRIGGER_PRICE;
        uint256 startTime;
        uint256 gap; // INTERVAL: interval; PRICE: cooldown
        uint256 endTime;
        if (isPrice) {
            gap = uint24(t >> T_COOLDOWN);
            // the window (slot 3) is read only by the price triggers that have one
            if (uint8(t >> T_COMPARATOR) & PRICE_WINDOW != 0) (startTime, endTime) = (w.windowStart, w.windowEnd);
        } else {
            startTime = uint40(t >> T_START_TIME);
            gap = uint32(t >> T_INTERVAL);
            endTime = uint40(t >> T_END_TIME);
        }
        if (endTime != 0 && block.timestamp > endTime) {
            w.status = STATUS_COMPLETED;
            emit WorkflowStatusChanged(id, STATUS_COMPLETED, CHANGE_BY_EXPIRY);
            return _skip(id, runIndex, SKIP_EXPIRED);
        }
        uint256 due = runCount == 0 ? startTime : uint256(uint40(s0 >> S0_LAST_RUN)) + gap;
        if (block.timestamp < due) return _skip(id, runIndex, SKIP_NOT_DUE);
        uint256 price;
        uint8 source;
        if (isPrice) {
            uint16 aid = uint16(t >> T_ASSET_ID);
            if (aid == pc.assetId) {
                (price, source) = (pc.price, SOURCE_ORACLE);
            } else {
                bool ok;
                (ok, price, source) = _price(aid, attestedPrice);
                if (!ok) return _skip(id, runIndex, SKIP_PRICE_UNAVAILABLE);
                if (source == SOURCE_ORACLE) (pc.assetId, pc.price) = (aid, price);
            }
            uint256 threshold = uint64(t >> T_PRICE_USD);
            if (uint8(t >> T_COMPARATOR) & COMPARATOR_ABOVE == 0 ? price >= threshold : price <= threshold) {
                return _skip(id, runIndex, SKIP_CONDITION_FALSE);
            }
        }

        // -- escrow: the owner must cover the amount and the most this run's fee can be
        address owner = address(uint160(s0));
        Account storage acct = _accounts[owner];
        // The owner's Account word (balance, maxGasPrice, isExecutor: see A_* above), read once
        // and written back below before the action with nothing in between that could change it.
        uint256 a;
        assembly ("memory-safe") {
            a := sload(acct.slot)
        }
        uint256 gasPrice = tx.gasprice;
        {
            uint256 cap = uint64(a >> A_MAX_GAS_PRICE);
            if (cap != 0 && cap < gasPrice) gasPrice = cap;
        }
        uint256 s2; // slot 2: target, value
        assembly ("memory-safe") {
            s2 := sload(add(w.slot, 2))
        }
        uint256 value = s2 >> 160;
        // Unchecked sums of small numbers (gas amounts < 2^64, a stored calldata length ≤
        // MAX_CALLDATA, value < 2^96 plus a fee bound < 2^80, runCount < maxRuns < 2^32: an active
        // workflow has runs left); the products with the gas price in _fee stay checked.
        uint256 feeBound;
        unchecked {
            uint256 runGas = uint24(s1 >> S1_GAS_LIMIT) + RUN_GAS_BOUND + extraGas;
            // A call action first loads its calldata from storage: one cold slot per 32 bytes.
            if (uint8(s0 >> S0_ACTION_KIND) == ACTION_CALL) runGas += (_callData[id].length / 32 + 1) * CALLDATA_SLOT_GAS;
            feeBound = _fee(runGas, gasPrice, c.premiumBps);
            if (feeBound > uint80(s1)) feeBound = uint80(s1);
        }
        uint256 balance = uint128(a);
        unchecked {
            if (balance < value + feeBound) return _skip(id, runIndex, SKIP_INSUFFICIENT_ESCROW);
        }

        // -- consume the run before acting (a re-entrant call sees it done), roll back on failure
        uint32 nextCount;
        unchecked {
            nextCount = runCount + 1;
        }
        uint8 status = nextCount == uint32(s1 >> S1_MAX_RUNS) ? STATUS_COMPLETED : STATUS_ACTIVE;
        {
            uint256 consumed = (s0 & S0_KEEP) | (uint256(status) << S0_STATUS) | (uint256(nextCount) << S0_RUN_COUNT)
                | (uint256(uint40(block.timestamp)) << S0_LAST_RUN);
            assembly ("memory-safe") {
                sstore(w.slot, consumed)
            }
        }
        if (value != 0) {
            uint256 debited = (a & ~A_BALANCE) | (balance - value);
            assembly ("memory-safe") {
                sstore(acct.slot, debited)
            }
        }
        (bool success, bytes memory reason) =
            _act(id, uint8(s0 >> S0_ACTION_KIND), uint24(s1 >> S1_GAS_LIMIT), address(uint160(s2)), owner, value);
        if (success) {
            if (uint8(s1 >> S1_FAILURES) != 0) w.failures = 0;
            if (status == STATUS_COMPLETED) emit WorkflowStatusChanged(id, STATUS_COMPLETED, CHANGE_BY_COMPLETION);
        } else {
            status = STATUS_ACTIVE;
            if (value != 0) acct.balance = uint128(balance);
            uint8 failures = uint8(s1 >> S1_FAILURES) + 1;
            w.failures = failures;
            if (failures >= c.maxFailures) {
                status = STATUS_PAUSED;
                emit WorkflowStatusChanged(id, STATUS_PAUSED, CHANGE_BY_FAILURES);
            }
            // back to slot 0 as it was (run not consumed), with the new status
            uint256 restored = (s0 & ~(uint256(0xff) << S0_STATUS)) | (uint256(status) << S0_STATUS);
            assembly ("memory-safe") {
                sstore(w.slot, restored)
            }
            emit RunFailed(id, runIndex, reason);
        }

        // -- charge: measured gas + what gasleft() cannot see, at min(gas price, owner's cap), + premium
        uint256 gasUsed;
        unchecked {
            gasUsed = gasStart - gasleft() + extraGas; // gasleft() only goes down
        }
        fee = _fee(gasUsed, gasPrice, c.premiumBps);
        if (fee > feeBound) fee = feeBound;
        // acct.balance -= fee, reading the word again: the action ran since it was last read
        {
            uint256 word;
            assembly ("memory-safe") {
                word := sload(acct.slot)
            }
            word = (word & ~A_BALANCE) | (uint128(word) - fee); // checked: reverts if fee > balance
            assembly ("memory-safe") {
                sstore(acct.slot, word)
            }
        }
        _emitRunExecuted(id, runIndex, success, status, gasUsed, gasPrice, fee, c.premiumBps, price, source);
    }

    /// `emit RunExecuted(id, runIndex, msg.sender, success, status, gasUsed, gasPrice, fee,
    /// premiumBps, price, source)`, encoded by hand (eight static words in scratch memory past the
    /// free pointer, which stays put): the same log, for less gas than the generic ABI encoder.
    function _emitRunExecuted(
        uint256 id,
        uint256 runIndex,
        bool success,
        uint256 status,
        uint256 gasUsed,
        uint256 gasPrice,
        uint256 fee,
        uint256 premiumBps,
        uint256 price,
        uint256 source
    ) private {
        bytes32 topic = RunExecuted.selector;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, success)
            mstore(add(m, 0x20), status)
            mstore(add(m, 0x40), gasUsed)
            mstore(add(m, 0x60), gasPrice)
            mstore(add(m, 0x80), fee)
            mstore(add(m, 0xa0), premiumBps)
            mstore(add(m, 0xc0), price)
            mstore(add(m, 0xe0), source)
            log4(m, 0x100, topic, id, runIndex, caller())
        }
    }

    /// gas × gasPrice × (1 + premium): checked products (a gas price is not bounded), premiumBps ≤ MAX_PREMIUM_BPS.
    function _fee(uint256 gas, uint256 gasPrice, uint256 premiumBps) private pure returns (uint256) {
        uint256 factor;
        unchecked {
            factor = 10_000 + premiumBps;
        }
        return (gas * gasPrice * factor) / 10_000;
    }

    function _skip(uint256 id, uint32 runIndex, uint8 reason) private returns (uint256) {
        emit RunSkipped(id, runIndex, msg.sender, reason);
        return 0;
    }

    /// The action, with exactly the workflow's gas limit. Never reverts; reports success.
    function _act(uint256 id, uint8 kind, uint256 gasLimit, address target, address owner, uint256 value)
        private
        returns (bool success, bytes memory reason)
    {
        if (kind == ACTION_NATIVE) {
            // A plain transfer: no calldata, and the return data is wanted only as a failure reason.
            _checkGasForAction(id, gasLimit);
            assembly ("memory-safe") {
                success := call(gasLimit, target, value, 0, 0, 0, 0)
            }
            if (!success) reason = _returnData();
            return (success, reason);
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
        _checkGasForAction(id, gasLimit);
        assembly ("memory-safe") {
            ok := call(gasLimit, to, value, add(data, 0x20), mload(data), 0, 0)
        }
        ret = _returnData();
    }

    /// EIP-150 passes on at most 63/64 of what is left: make sure the action gets all of its
    /// limit, or refuse the whole call, so an executor cannot starve an action into failing.
    /// Checked right before the CALL (after a call action's calldata is loaded from storage).
    function _checkGasForAction(uint256 id, uint256 gasLimit) private view {
        if (gasleft() < gasLimit + gasLimit / 63 + CALL_RESERVE) revert NotEnoughGasForAction(id, gasLimit);
    }

    /// The last call's return data, at most 256 bytes of it (no return bomb costs the executor).
    function _returnData() private pure returns (bytes memory ret) {
        assembly ("memory-safe") {
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
