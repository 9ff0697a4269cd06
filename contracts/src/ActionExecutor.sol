// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable2Step, Ownable} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";
import {WorkflowRegistry} from "./WorkflowRegistry.sol";
import {OwnerProxy} from "./OwnerProxy.sol";
import {CalldataGas} from "./CalldataGas.sol";
import {IChainModule} from "./ChainModules.sol";
import {AutometaAdmin} from "./AutometaAdmin.sol";
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
        uint40 maxTip; // wei per gas above the base fee a fee is computed with, at most (≤ MAX_TIP_BOUND)
        bool l1Fee; // chainModule.chargesL1Fee(), read when the module is set: no call on an L1
        IChainModule chainModule; // prices the transaction's L1 data fee (rollups); same slot
    }

    /// A queued admin change (see `_queueOrApply`); `eta` 0 = none (applied, cancelled or unknown).
    struct Change {
        uint8 kind; // CHANGE_*
        uint40 eta; // applicable from this time on
        bytes32 key;
        uint256 value;
    }

    uint256 public constant MAX_PREMIUM_BPS = 5_000; // at most +50 % on top of gas cost
    /// Hard bounds of the admin's tip cap, and its value at deployment.
    uint256 public constant MAX_TIP_BOUND = 50 gwei;
    uint256 public constant DEFAULT_MAX_TIP = 2 gwei;
    /// Hard bounds of the timelock delay chosen at deployment.
    uint256 public constant MIN_TIMELOCK = 60;
    uint256 public constant MAX_TIMELOCK = 30 days;
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
    /// The intrinsic 21,000 is no longer part of these: it is charged once per transaction
    /// (`_intrinsicGas`), by whichever run or relayed intent comes first. After the issue-12
    /// checks (canonical calldata, tip cap, gas pre-check, memory reset) bench/gas.py measured
    /// residuals of +315 (single), 37 + 9·n (batch): SINGLE + 310, BATCH + 37, ITEM + 9.
    /// After the chain-module check in the hot path (issue 14): residuals +27 / +21 (single),
    /// 65 − 0.6·n (batch): SINGLE + 24, BATCH + 65.
    /// After the STATE / CRON / LOG dispatch and the admin fallback (issue 15): residuals −201 /
    /// −208 (single), 99 + 5.9·n (batch): SINGLE − 204, BATCH + 99, ITEM + 6.
    /// After the price ceiling computed once per transaction and unchecked sums that cannot
    /// overflow: residuals 0 / −6 (single), −241 − 58.4·n (batch): SINGLE − 3, BATCH − 241, ITEM − 58.
    uint256 internal constant SINGLE_OVERHEAD = 9_517;
    uint256 internal constant BATCH_OVERHEAD = 4_306;
    uint256 internal constant ITEM_OVERHEAD = 4_777;
    /// What a second `execute` in the same transaction does not spend: the executor's balance
    /// slot was already written (a warm rewrite costs 100, the first write 2,900).
    uint256 internal constant NESTED_SAVING = 2_800;
    /// `execute(uint256,uint32,uint64)`'s exact calldata: selector + three words.
    uint256 internal constant EXECUTE_CALLDATA = 4 + 3 * 32;
    /// Gas a run needs before its action (writes consuming the run, loading an ERC-20 action,
    /// the ERC-20 wrapper's own call) on top of the action's limit and CALL_RESERVE; a run that
    /// cannot have it is skipped (SKIP_OUT_OF_GAS) before anything changes.
    uint256 internal constant PRE_ACTION_GAS = 25_000;
    /// Gas the ERC-20 wrapper (`transferFromForRun`, a call to this contract) spends besides
    /// the token's own gas limit: dispatch, the cold token account, the return check.
    uint256 internal constant ERC20_WRAPPER_GAS = 8_000;
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

    /// The last oracle price read in this transaction: a batch reads each feed once; `txPrice`,
    /// the price ceiling, is computed once per transaction too. `single`:
    /// the run is a lone `execute`, which reverts with NotEnoughGasForAction when it is short of
    /// gas (nobody else's run is at stake, and eth_estimateGas keeps finding the gas a run needs);
    /// a batch item skips instead (SKIP_OUT_OF_GAS), so one owner cannot revert the others' runs.
    struct PriceCache {
        uint16 assetId; // 0 = empty (asset ids start at 1)
        uint256 price;
        bool single;
        uint256 txPrice; // min(tx.gasprice, base fee + tip cap): the same for every run of the transaction
        uint256 viewGas; // STATE (a lone run): the view's gas cap, which the run's fee bound covers
        bytes32 logBlockHash; // LOG (a lone run): the attestation, recorded when the run succeeds
        bytes32 logTxHash;
        uint256 logKey; // blockNumber << 32 | logIndex
    }

    Config internal _config;
    /// Seconds between queueing an admin change that could cost owners and applying it.
    uint256 public immutable timelockDelay;
    /// The admin functions' code (see the fallback).
    address public immutable adminModule;
    uint256 internal _changeCount;
    mapping(uint256 => Change) internal _changes;

    constructor(address admin, uint256 delay, address chainModule_) Ownable(admin) {
        if (delay < MIN_TIMELOCK || delay > MAX_TIMELOCK) revert TimelockOutOfRange(delay);
        timelockDelay = delay;
        adminModule = address(new AutometaAdmin(delay));
        _config = Config({
            paused: false,
            premiumBps: 1_000,
            maxFailures: 3,
            maxTip: uint40(DEFAULT_MAX_TIP),
            l1Fee: _checkChainModule(chainModule_),
            chainModule: IChainModule(chainModule_)
        });
        emit ChainModuleSet(chainModule_);
        emit PremiumSet(1_000);
        emit MaxFailuresSet(3);
        emit MaxTipSet(DEFAULT_MAX_TIP);
    }

    // ------------------------------------------------------------------ execute

    /// @notice Perform run `runIndex` of `workflowId`. `attestedPrice` (USD, 8 decimals) is used
    /// only for a price trigger whose asset has no feed.
    /// For a CRON trigger `attestedPrice` is the tick the run is for (a unix time, whole minute).
    function execute(uint256 workflowId, uint32 runIndex, uint64 attestedPrice) external nonReentrant {
        uint256 gasStart = gasleft();
        _requireCanonical(EXECUTE_CALLDATA);
        _executeOne(workflowId, runIndex, attestedPrice, msg.data[0:0], gasStart);
    }

    /// @notice A run whose trigger needs more than a word from the executor: STATE (`proof` = the
    /// workflow's triggerData, checked against the hash stored at creation: the data stays out of
    /// storage reads on the hot path) and LOG (`proof` = abi.encode(blockNumber, blockHash,
    /// txHash, logIndex) of the log that fired it). Otherwise as `execute`.
    function executeWithProof(uint256 workflowId, uint32 runIndex, uint64 attested, bytes calldata proof)
        external
        nonReentrant
    {
        uint256 gasStart = gasleft();
        _requireCanonical(4 + 32 * 5 + _padded(proof.length));
        _executeOne(workflowId, runIndex, attested, proof, gasStart);
    }

    function _executeOne(
        uint256 workflowId,
        uint32 runIndex,
        uint64 attestedPrice,
        bytes calldata proof,
        uint256 gasStart
    ) private {
        Config memory c = _config;
        if (c.paused) revert ExecutionIsPaused();
        Account storage ex = _accounts[msg.sender];
        if (!ex.isExecutor) revert NotExecutor(msg.sender);
        PriceCache memory pc;
        pc.single = true;
        pc.txPrice = _txPrice(c);
        // The first charge of a transaction carries its intrinsic gas; a later `execute` in the same
        // transaction (a batching contract) neither that nor the first write of the executor's balance.
        uint256 intrinsic = _intrinsicGas();
        uint256 overhead = intrinsic != 0 ? SINGLE_OVERHEAD + intrinsic : SINGLE_OVERHEAD - NESTED_SAVING;
        // The L1 data fee, like the intrinsic gas, belongs to the first charge of the transaction.
        // The module call's own gas (tens of thousands when it prices exactly) moves from the
        // measured gas to the overhead, so the run's fee bound (RUN_GAS_BOUND) need not cover it.
        if (intrinsic != 0 && c.l1Fee) {
            uint256 g = gasleft();
            uint256 l1Gas = _l1Gas(1, c, pc.txPrice);
            g -= gasleft();
            overhead += l1Gas + g;
            gasStart -= g;
        }
        uint256 fee = _run(workflowId, runIndex, attestedPrice, proof, c, pc, gasStart, overhead + CalldataGas.cost());
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
        // the exact encoding: selector, offset 0x20, length, n words
        uint256 start;
        assembly ("memory-safe") {
            start := runs.offset
        }
        if (start != 4 + 64) revert NonCanonicalCalldata(start, 4 + 64);
        _requireCanonical(4 + 64 + 32 * n);
        uint256 intrinsic = _intrinsicGas();
        PriceCache memory pc;
        pc.txPrice = _txPrice(c);
        // Every item has the same calldata (one word), so each carries 1/n of the L1 data fee,
        // as of the shared gas; the module call's gas is part of the shared gas measured here.
        uint256 l1Gas = intrinsic != 0 && c.l1Fee ? _l1Gas(n, c, pc.txPrice) : 0;
        uint256 shared =
            (BATCH_OVERHEAD + intrinsic + CalldataGas.cost() + gasStart - gasleft()) / n + ITEM_OVERHEAD + l1Gas;
        uint256 total;
        // Each item starts from the same free memory pointer: the memory an item used is reused
        // by the next, so no item pays for the memory expansion of the items before it.
        uint256 freeMemory;
        assembly ("memory-safe") {
            freeMemory := mload(0x40)
        }
        for (uint256 i; i < n; ++i) {
            uint256 r = runs[i];
            // unchecked: a fee is at most its workflow's maxFeePerRun (< 2^80), n ≤ MAX_BATCH
            unchecked {
                total += _run(r >> 96, uint32(r >> 64), uint64(r), msg.data[0:0], c, pc, gasleft(), shared);
            }
            assembly ("memory-safe") {
                mstore(0x40, freeMemory)
            }
        }
        if (total != 0) ex.balance += uint128(total);
    }

    // ------------------------------------------------------------------ admin

    /// The admin functions (executors, feeds, premium, tip cap, chain module, the timelock queue,
    /// pause) live in `adminModule` (AutometaAdmin.sol) and run here, on this contract's storage,
    /// through the fallback's delegatecall: EIP-170 caps this contract's runtime at 24,576 bytes
    /// and the hot path must stay in it. The module is created by this constructor and immutable.
    fallback() external {
        address m = adminModule;
        assembly ("memory-safe") {
            let p := mload(0x40) // past the free pointer: memory-safe, and nothing runs after this
            calldatacopy(p, 0, calldatasize())
            let ok := delegatecall(gas(), m, p, calldatasize(), 0, 0)
            returndatacopy(p, 0, returndatasize())
            if iszero(ok) { revert(p, returndatasize()) }
            return(p, returndatasize())
        }
    }

    /// @notice Disabled: a deployment without an admin could never pause or fix a feed.
    function renounceOwnership() public view override onlyOwner {
        revert RenounceDisabled();
    }

    /// @notice The price a price trigger of `asset` would be checked against now, and its source.
    function currentPrice(bytes32 asset, uint64 attestedPrice)
        external
        view
        returns (bool ok, uint256 price, uint8 source)
    {
        return _price(_assetIds[asset], attestedPrice);
    }

    // ------------------------------------------------------------------ internals

    function _requireCreationOpen() internal view override {
        if (_config.paused) revert ExecutionIsPaused();
    }

    function _gasPriceCeiling() internal view override returns (uint256) {
        return block.basefee + _config.maxTip;
    }

    /// Refuse anything that is not a contract answering as a chain module on this chain (a
    /// module's `chargesL1Fee` reads its predeploy, so it fails where that is missing; an address
    /// without code answers nothing). Returns whether the module charges an L1 fee at all.
    function _checkChainModule(address module) private view returns (bool) {
        (bool ok, bytes memory ret) = module.staticcall(abi.encodeCall(IChainModule.chargesL1Fee, ()));
        if (!ok || ret.length != 32 || uint256(bytes32(ret)) > 1) revert InvalidChainModule(module);
        return uint256(bytes32(ret)) == 1;
    }

    /// Each of `n` runs' share of this transaction's L1 data fee (its calldata is `msg.data`,
    /// checked canonical before this), as gas at the transaction's price ceiling min(gas price,
    /// base fee + tip cap), rounded up: it is then charged like the run's own gas, at the run's
    /// price, so every owner cap (gas-price cap, maxFeePerRun, the escrow check) bounds it, and
    /// the hot path of an L1 deployment is unchanged. Announced once, when there is one.
    function _l1Gas(uint256 n, Config memory c, uint256 price) private returns (uint256 gas) {
        uint256 l1 = c.chainModule.getCurrentL1Fee(msg.data);
        if (l1 == 0 || price == 0) return 0;
        gas = (l1 / n + price - 1) / price;
        if (gas > type(uint64).max) gas = type(uint64).max; // keeps the gas sums in _run far from overflow
        emit L1FeeShared(l1, gas);
    }

    /// The transaction's price ceiling min(gas price, base fee + the deployment's tip cap), which
    /// every run's price (and the L1 share) is capped by.
    function _txPrice(Config memory c) private view returns (uint256 price) {
        price = tx.gasprice;
        uint256 ceiling = block.basefee + c.maxTip;
        if (ceiling < price) price = ceiling;
    }

    /// One run: check, consume, act, charge. Returns the fee credited to the executor.
    function _run(
        uint256 id,
        uint32 runIndex,
        uint64 attestedPrice,
        bytes calldata proof,
        Config memory c,
        PriceCache memory pc,
        uint256 gasStart,
        uint256 extraGas
    ) private returns (uint256 fee) {
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
        uint256 due;
        unchecked {
            due = runCount == 0 ? startTime : uint256(uint40(s0 >> S0_LAST_RUN)) + gap; // < 2^41
        }
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
                // a workflow created on an oracle-backed asset never takes an attested price
                if (!ok || (source != SOURCE_ORACLE && uint8(t >> T_COMPARATOR) & ORACLE_REQUIRED != 0)) {
                    return _skip(id, runIndex, SKIP_PRICE_UNAVAILABLE);
                }
                if (source == SOURCE_ORACLE) (pc.assetId, pc.price) = (aid, price);
            }
            uint256 threshold = uint64(t >> T_PRICE_USD);
            if (uint8(t >> T_COMPARATOR) & COMPARATOR_ABOVE == 0 ? price >= threshold : price <= threshold) {
                return _skip(id, runIndex, SKIP_CONDITION_FALSE);
            }
        } else if (uint8(s0 >> S0_TRIGGER_KIND) > TRIGGER_PRICE) {
            // STATE / CRON / LOG: their one run-time dispatch point
            uint8 why = _kindHolds(id, s0, attestedPrice, proof, startTime, pc);
            if (why != 0) return _skip(id, runIndex, why);
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
        // min(the transaction's gas price, base fee + the deployment's tip cap, the owner's cap)
        uint256 gasPrice = pc.txPrice;
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
            uint256 gasLimit = uint24(s1 >> S1_GAS_LIMIT);
            // A call action first loads its calldata from storage: one cold slot per 32 bytes.
            uint256 loadGas;
            if (uint8(s0 >> S0_ACTION_KIND) == ACTION_CALL) {
                loadGas = (_callData[id].length / 32 + 1) * CALLDATA_SLOT_GAS;
            }
            // Not enough gas left to give the action its whole limit: skip before anything changes
            // (never revert the batch; the run stays due, the owner pays nothing).
            // (2 × gasLimit / 63: an ERC-20 action's wrapper gets its limit + 1/63, and passes on 63/64)
            if (gasleft() < gasLimit + 2 * (gasLimit / 63) + CALL_RESERVE + PRE_ACTION_GAS + loadGas) {
                if (pc.single) revert NotEnoughGasForAction(id, gasLimit);
                return _skip(id, runIndex, SKIP_OUT_OF_GAS);
            }
            feeBound = _fee(gasLimit + RUN_GAS_BOUND + extraGas + loadGas + pc.viewGas, gasPrice, c.premiumBps);
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
            uint256 debited;
            unchecked {
                debited = (a & ~A_BALANCE) | (balance - value); // balance ≥ value + feeBound, checked above
            }
            assembly ("memory-safe") {
                sstore(acct.slot, debited)
            }
        }
        (bool success, bool starved, bytes memory reason) =
            _act(id, uint8(s0 >> S0_ACTION_KIND), uint24(s1 >> S1_GAS_LIMIT), address(uint160(s2)), owner, value);
        if (starved) {
            if (pc.single) revert NotEnoughGasForAction(id, uint24(s1 >> S1_GAS_LIMIT));
            // The action was never called: undo the consumption exactly and report a skip.
            assembly ("memory-safe") {
                sstore(w.slot, s0)
                sstore(acct.slot, a)
            }
            return _skip(id, runIndex, SKIP_OUT_OF_GAS);
        }
        if (success) {
            if (uint8(s0 >> S0_TRIGGER_KIND) == TRIGGER_LOG) _logFired(id, runIndex, pc);
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

    /// Whether a STATE / CRON / LOG trigger holds for this run (0) or the skip reason; STATE
    /// leaves the view's gas cap and LOG the attestation in `pc`. `s0` / `startTime` are the
    /// workflow's (its window and time gate were checked by the caller, like every kind's).
    function _kindHolds(
        uint256 id,
        uint256 s0,
        uint64 tick,
        bytes calldata proof,
        uint256 startTime,
        PriceCache memory pc
    ) private view returns (uint8) {
        uint256 word = uint256(_triggerWord[id]);
        uint8 tk = uint8(s0 >> S0_TRIGGER_KIND);
        if (tk == TRIGGER_STATE) {
            // the executor supplies the signed triggerData; only its hash was read from storage
            if (keccak256(proof) != bytes32(word)) return SKIP_BAD_PROOF;
            uint8 why;
            (why, pc.viewGas) = _stateHolds(proof);
            return why;
        }
        if (tk == TRIGGER_CRON) {
            // A whole minute the spec allows, not in the future, after the workflow's creation and
            // start and after its last run: each tick runs at most once, and after a run every
            // earlier tick is behind `lastRun`, so ticks missed while nobody executed run once.
            if (
                tick % 60 != 0 || tick > block.timestamp || tick <= uint40(s0 >> S0_LAST_RUN) || tick < startTime
                    || tick < word >> CRON_CREATED
            ) return SKIP_NOT_DUE;
            uint256 ts = tick;
            uint256 day = ts / 86_400;
            (, uint256 month, uint256 dom) = _civil(day);
            bool allowed =
                (word >> (CRON_MINUTE + (ts / 60) % 60)) & (word >> (CRON_HOUR + (ts / 3600) % 24))
                        & (word >> (CRON_DAY + dom - 1)) & (word >> (CRON_MONTH + month - 1))
                        & (word >> (CRON_WEEKDAY + (day + 4) % 7)) & 1 != 0;
            return allowed ? 0 : SKIP_NOT_DUE;
        }
        // LOG: `proof` = abi.encode(blockNumber, blockHash, txHash, logIndex) of a log in a
        // canonical block among the last 256, ordered after the last log that fired the workflow
        // (blockNumber << 32 | logIndex), so no log fires it twice
        if (proof.length != 128) return SKIP_BAD_PROOF;
        uint256 bn = uint256(bytes32(proof[0:32]));
        bytes32 bh = bytes32(proof[32:64]);
        uint256 li = uint256(bytes32(proof[96:128]));
        // blockhash is 0 for the current block, future blocks and blocks older than 256
        if (bh == 0 || blockhash(bn) != bh || li > type(uint32).max) return SKIP_BAD_PROOF;
        uint256 key = (bn << 32) | li;
        if (key < word) return SKIP_RUN_DONE;
        (pc.logKey, pc.logBlockHash, pc.logTxHash) = (key, bh, bytes32(proof[64:96]));
        return 0;
    }

    /// The STATE condition: `target.staticcall{gas: viewGas}(calldata)`, return word #word read
    /// as readAs, compared with threshold (layout in TriggerSpecs). A revert, a view out of its
    /// gas or too short an answer is SKIP_VIEW_FAILED; at most one word of the answer is copied.
    function _stateHolds(bytes calldata d) private view returns (uint8, uint256 viewGas) {
        bool ok;
        uint256 value;
        uint256 threshold;
        uint256 head;
        assembly ("memory-safe") {
            let p := d.offset
            head := calldataload(add(p, 20)) // word | readAs | comparator | viewGas (bytes 20-26)
            viewGas := shr(224, shl(24, head))
            threshold := calldataload(add(p, 27))
            let n := sub(d.length, 59)
            let m := mload(0x40)
            calldatacopy(m, add(p, 59), n)
            ok := staticcall(viewGas, shr(96, calldataload(p)), m, n, 0, 0)
            let at := shl(5, byte(0, head))
            if lt(returndatasize(), add(at, 32)) { ok := 0 }
            if ok {
                returndatacopy(0, at, 32)
                value := mload(0)
            }
        }
        if (!ok) return (SKIP_VIEW_FAILED, viewGas);
        uint256 readAs = uint8(head >> 240);
        uint256 cmp = uint8(head >> 232);
        if (readAs == READ_BOOL && value != 0) value = 1;
        bool holds;
        if (cmp >= CMP_EQ) {
            holds = (value == threshold) == (cmp == CMP_EQ);
        } else {
            // int256: flip the sign bit so the unsigned order is the signed order
            if (readAs == READ_INT256) (value, threshold) = (value ^ (1 << 255), threshold ^ (1 << 255));
            holds = cmp == CMP_LT
                ? value < threshold
                : cmp == CMP_LE ? value <= threshold : cmp == CMP_GT ? value > threshold : value >= threshold;
        }
        return (holds ? 0 : SKIP_CONDITION_FALSE, viewGas);
    }

    /// (year, month 1-12, day 1-31) of a day number since 1970-01-01 (Howard Hinnant's civil_from_days).
    function _civil(uint256 z) private pure returns (uint256 y, uint256 m, uint256 d) {
        unchecked {
            z += 719_468;
            uint256 era = z / 146_097;
            uint256 doe = z - era * 146_097;
            uint256 yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
            uint256 doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
            uint256 mp = (5 * doy + 2) / 153;
            d = doy - (153 * mp + 2) / 5 + 1;
            m = mp < 10 ? mp + 3 : mp - 9;
            y = yoe + era * 400 + (m <= 2 ? 1 : 0);
        }
    }

    /// A LOG run succeeded: no log up to this one can fire the workflow again; record the attestation.
    function _logFired(uint256 id, uint256 runIndex, PriceCache memory pc) private {
        uint256 key = pc.logKey;
        _triggerWord[id] = bytes32(key + 1);
        emit LogAttested(id, runIndex, key >> 32, pc.logBlockHash, pc.logTxHash, uint32(key));
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

    /// The action, with exactly the workflow's gas limit. Never reverts; reports success, or
    /// `starved` when too little gas is left to give the action all of its limit (EIP-150 passes
    /// on at most 63/64): then nothing was called, so an executor cannot starve an action into failing.
    function _act(uint256 id, uint8 kind, uint256 gasLimit, address target, address owner, uint256 value)
        private
        returns (bool success, bool starved, bytes memory reason)
    {
        if (kind == ACTION_NATIVE) {
            // A plain transfer: no calldata, and the return data is wanted only as a failure reason.
            if (!_hasGasFor(gasLimit)) return (false, true, reason);
            assembly ("memory-safe") {
                success := call(gasLimit, target, value, 0, 0, 0, 0)
            }
            if (!success) reason = _returnData();
            return (success, false, reason);
        }
        if (kind == ACTION_ERC20) {
            // Through this contract's own `transferFromForRun`, which reverts when the token's
            // answer is not a success (OpenZeppelin SafeERC20 semantics): a transfer the token
            // made but answered badly is undone with it, so a retry can never pay twice.
            TokenAction storage t = _tokenActions[id];
            uint256 wrapped = gasLimit + gasLimit / 63 + ERC20_WRAPPER_GAS;
            return _call(
                address(this),
                0,
                wrapped,
                abi.encodeCall(this.transferFromForRun, (t.token, owner, target, t.amount, gasLimit))
            );
        }
        return _call(proxyOf(owner), value, gasLimit, abi.encodeCall(OwnerProxy.forward, (target, _callData[id])));
    }

    /// @notice Only for this contract's own ERC-20 actions: `token.transferFrom(from, to, amount)`
    /// with exactly `gasLimit` gas, reverting (and so undoing the transfer) unless the token
    /// returned nothing or a first word of 1 — OpenZeppelin SafeERC20's rule.
    function transferFromForRun(address token, address from, address to, uint256 amount, uint256 gasLimit) external {
        if (msg.sender != address(this)) revert NotExecutor(msg.sender);
        bytes memory data = abi.encodeWithSelector(0x23b872dd, from, to, amount);
        bool ok;
        uint256 size;
        uint256 word;
        assembly ("memory-safe") {
            mstore(0, 0)
            ok := call(gasLimit, token, 0, add(data, 0x20), mload(data), 0, 0x20)
            size := returndatasize()
            word := mload(0)
        }
        if (!ok) {
            bytes memory ret = _returnData();
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        if (size == 0 ? token.code.length == 0 : word != 1) revert SafeTransferFailed(token);
    }

    /// A call with exactly `gasLimit` gas that copies at most 256 bytes of return data, so a
    /// callee cannot make the executor pay for a return bomb.
    function _call(address to, uint256 value, uint256 gasLimit, bytes memory data)
        private
        returns (bool ok, bool starved, bytes memory ret)
    {
        if (!_hasGasFor(gasLimit)) return (false, true, ret);
        assembly ("memory-safe") {
            ok := call(gasLimit, to, value, add(data, 0x20), mload(data), 0, 0)
        }
        ret = _returnData();
    }

    /// Whether the action can get all of `gasLimit` (checked right before the CALL, after a call
    /// action's calldata is loaded from storage), with CALL_RESERVE left for the bookkeeping after it.
    function _hasGasFor(uint256 gasLimit) private view returns (bool) {
        unchecked {
            return gasleft() >= gasLimit + gasLimit / 63 + CALL_RESERVE; // gasLimit < 2^25 (a uint24 limit, wrapped)
        }
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
    function _price(uint16 assetId_, uint64 attestedPrice)
        internal
        view
        returns (bool ok, uint256 price, uint8 source)
    {
        Asset storage a = _assets[assetId_];
        address feed = a.feed;
        if (feed == address(0)) {
            return (attestedPrice != 0, attestedPrice, SOURCE_ATTESTED);
        }
        try AggregatorV3Interface(feed).latestRoundData() returns (
            uint80, int256 answer, uint256, uint256 updatedAt, uint80
        ) {
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
