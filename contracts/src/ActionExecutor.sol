// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable2Step, Ownable} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";
import {WorkflowRegistry} from "./WorkflowRegistry.sol";
import {OwnerProxy} from "./OwnerProxy.sol";
import {CalldataGas} from "./CalldataGas.sol";
import {IChainModule} from "./ChainModules.sol";
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
    uint256 internal constant SINGLE_OVERHEAD = 9_724;
    uint256 internal constant BATCH_OVERHEAD = 4_448;
    uint256 internal constant ITEM_OVERHEAD = 4_829;
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

    /// The last oracle price read in this transaction: a batch reads each feed once. `single`:
    /// the run is a lone `execute`, which reverts with NotEnoughGasForAction when it is short of
    /// gas (nobody else's run is at stake, and eth_estimateGas keeps finding the gas a run needs);
    /// a batch item skips instead (SKIP_OUT_OF_GAS), so one owner cannot revert the others' runs.
    struct PriceCache {
        uint16 assetId; // 0 = empty (asset ids start at 1)
        uint256 price;
        bool single;
    }

    Config internal _config;
    /// Seconds between queueing an admin change that could cost owners and applying it.
    uint256 public immutable timelockDelay;
    uint256 internal _changeCount;
    mapping(uint256 => Change) internal _changes;

    constructor(address admin, uint256 delay, address chainModule_) Ownable(admin) {
        if (delay < MIN_TIMELOCK || delay > MAX_TIMELOCK) revert TimelockOutOfRange(delay);
        timelockDelay = delay;
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
    function execute(uint256 workflowId, uint32 runIndex, uint64 attestedPrice) external nonReentrant {
        uint256 gasStart = gasleft();
        _requireCanonical(EXECUTE_CALLDATA);
        Config memory c = _config;
        if (c.paused) revert ExecutionIsPaused();
        Account storage ex = _accounts[msg.sender];
        if (!ex.isExecutor) revert NotExecutor(msg.sender);
        PriceCache memory pc;
        pc.single = true;
        // The first charge of a transaction carries its intrinsic gas; a later `execute` in the same
        // transaction (a batching contract) neither that nor the first write of the executor's balance.
        uint256 intrinsic = _intrinsicGas();
        uint256 overhead = intrinsic != 0 ? SINGLE_OVERHEAD + intrinsic : SINGLE_OVERHEAD - NESTED_SAVING;
        // The L1 data fee, like the intrinsic gas, belongs to the first charge of the transaction.
        // The module call's own gas (tens of thousands when it prices exactly) moves from the
        // measured gas to the overhead, so the run's fee bound (RUN_GAS_BOUND) need not cover it.
        if (intrinsic != 0 && c.l1Fee) {
            uint256 g = gasleft();
            uint256 l1Gas = _l1Gas(c, 1);
            g -= gasleft();
            overhead += l1Gas + g;
            gasStart -= g;
        }
        uint256 fee = _run(workflowId, runIndex, attestedPrice, c, pc, gasStart, overhead + CalldataGas.cost());
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
        // Every item has the same calldata (one word), so each carries 1/n of the L1 data fee,
        // as of the shared gas; the module call's gas is part of the shared gas measured here.
        uint256 l1Gas = intrinsic != 0 && c.l1Fee ? _l1Gas(c, n) : 0;
        uint256 shared = (BATCH_OVERHEAD + intrinsic + CalldataGas.cost() + gasStart - gasleft()) / n + ITEM_OVERHEAD + l1Gas;
        uint256 total;
        PriceCache memory pc;
        // Each item starts from the same free memory pointer: the memory an item used is reused
        // by the next, so no item pays for the memory expansion of the items before it.
        uint256 freeMemory;
        assembly ("memory-safe") {
            freeMemory := mload(0x40)
        }
        for (uint256 i; i < n; ++i) {
            uint256 r = runs[i];
            total += _run(r >> 96, uint32(r >> 64), uint64(r), c, pc, gasleft(), shared);
            assembly ("memory-safe") {
                mstore(0x40, freeMemory)
            }
        }
        if (total != 0) ex.balance += uint128(total);
    }

    // ------------------------------------------------------------------ admin

    /// Admin changes that could cost owners money or trust (allowing an executor, a feed, a
    /// higher premium or tip cap) wait `timelockDelay` in a queue (ChangeQueued, `pendingChange`)
    /// so owners can see them coming and leave; changes that can only lower what owners pay or
    /// who may execute apply at once, as do all changes while no workflow exists yet (the first
    /// set-up of a deployment: nobody can be harmed). Each setter returns the queued change's id
    /// (0: applied at once).

    function setExecutor(address executor, bool allowed) external onlyOwner returns (uint256 changeId) {
        if (executor == address(0)) revert NotExecutor(executor);
        if (!allowed) {
            _setExecutorNow(executor, false);
            return 0;
        }
        return _queueOrApply(CHANGE_EXECUTOR, bytes32(uint256(uint160(executor))), 1);
    }

    /// @notice Set (or with `feed == 0`, remove) the price feed an asset's triggers are checked
    /// against. A new asset is registered at once (no workflow can use it yet).
    function setFeed(bytes32 asset, address feed, uint32 maxAge) external onlyOwner returns (uint256 changeId) {
        if (asset == bytes32(0)) revert InvalidFeed(asset, feed);
        if (feed != address(0)) _feedDecimals(asset, feed, maxAge);
        uint256 value = uint256(uint160(feed)) | (uint256(maxAge) << 160);
        if (_assetIds[asset] == 0) {
            _apply(CHANGE_FEED, asset, value);
            return 0;
        }
        return _queueOrApply(CHANGE_FEED, asset, value);
    }

    /// @notice Register an asset priced by what the executor attests (no feed), so price
    /// workflows can use it. Only the admin registers assets: the ids are a bounded resource.
    function registerAsset(bytes32 asset) external onlyOwner returns (uint16 id) {
        if (asset == bytes32(0)) revert UnknownAsset(asset);
        return _assetIdOrRegister(asset);
    }

    function setPremium(uint16 premiumBps) external onlyOwner returns (uint256 changeId) {
        if (premiumBps > MAX_PREMIUM_BPS) revert PremiumTooHigh(premiumBps, MAX_PREMIUM_BPS);
        if (premiumBps <= _config.premiumBps) {
            _apply(CHANGE_PREMIUM, bytes32(0), premiumBps);
            return 0;
        }
        return _queueOrApply(CHANGE_PREMIUM, bytes32(0), premiumBps);
    }

    /// @notice The most tip per gas (above the block's base fee) a fee or relayer reimbursement
    /// is computed with, whatever gas price the transaction paid.
    function setMaxTip(uint64 maxTip) external onlyOwner returns (uint256 changeId) {
        if (maxTip > MAX_TIP_BOUND) revert TipTooHigh(maxTip, MAX_TIP_BOUND);
        if (maxTip <= _config.maxTip) {
            _apply(CHANGE_MAX_TIP, bytes32(0), maxTip);
            return 0;
        }
        return _queueOrApply(CHANGE_MAX_TIP, bytes32(0), maxTip);
    }

    /// @notice Replace the chain module that prices the L1 data fee. It can raise what every run
    /// costs, so once a workflow exists it waits in the timelock like a premium raise.
    function setChainModule(address module) external onlyOwner returns (uint256 changeId) {
        _checkChainModule(module);
        return _queueOrApply(CHANGE_CHAIN_MODULE, bytes32(0), uint160(module));
    }

    function chainModule() external view returns (address) {
        return address(_config.chainModule);
    }

    /// @notice Apply a queued change once its delay has passed.
    function applyChange(uint256 changeId) external onlyOwner {
        Change memory ch = _changes[changeId];
        if (ch.eta == 0) revert UnknownChange(changeId);
        if (block.timestamp < ch.eta) revert ChangeNotReady(changeId, ch.eta);
        delete _changes[changeId];
        emit ChangeApplied(changeId);
        _apply(ch.kind, ch.key, ch.value);
    }

    function cancelChange(uint256 changeId) external onlyOwner {
        if (_changes[changeId].eta == 0) revert UnknownChange(changeId);
        delete _changes[changeId];
        emit ChangeCancelled(changeId);
    }

    /// @notice A queued change: kind (CHANGE_*), key, value and the time it may be applied (eta 0: none).
    function pendingChange(uint256 changeId) external view returns (uint8 kind, bytes32 key, uint256 value, uint256 eta) {
        Change storage ch = _changes[changeId];
        return (ch.kind, ch.key, ch.value, ch.eta);
    }

    /// @notice The ids of all changes queued and neither applied nor cancelled, oldest first.
    function pendingChangeIds() external view returns (uint256[] memory ids) {
        uint256 count = _changeCount;
        uint256 open;
        for (uint256 i = 1; i <= count; ++i) {
            if (_changes[i].eta != 0) ++open;
        }
        ids = new uint256[](open);
        uint256 k;
        for (uint256 i = 1; i <= count; ++i) {
            if (_changes[i].eta != 0) ids[k++] = i;
        }
    }

    function maxTipPerGas() external view returns (uint256) {
        return _config.maxTip;
    }

    /// @notice Disabled: a deployment without an admin could never pause or fix a feed.
    function renounceOwnership() public view override onlyOwner {
        revert RenounceDisabled();
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

    function _gasPriceCeiling() internal view override returns (uint256) {
        return block.basefee + _config.maxTip;
    }

    function _queueOrApply(uint8 kind, bytes32 key, uint256 value) private returns (uint256 changeId) {
        if (_workflowCount == 0) {
            _apply(kind, key, value);
            return 0;
        }
        changeId = ++_changeCount;
        uint256 eta = block.timestamp + timelockDelay;
        _changes[changeId] = Change({kind: kind, eta: uint40(eta), key: key, value: value});
        emit ChangeQueued(changeId, kind, key, value, eta);
    }

    function _apply(uint8 kind, bytes32 key, uint256 value) private {
        if (kind == CHANGE_EXECUTOR) {
            _setExecutorNow(address(uint160(uint256(key))), value != 0);
        } else if (kind == CHANGE_FEED) {
            address feed = address(uint160(value));
            uint32 maxAge = uint32(value >> 160);
            uint8 decimals = feed == address(0) ? 0 : _feedDecimals(key, feed, maxAge);
            uint16 id = _assetIdOrRegister(key);
            Asset storage a = _assets[id];
            a.feed = feed;
            a.maxAge = maxAge;
            a.decimals = decimals;
            emit FeedSet(key, id, feed, maxAge, decimals);
        } else if (kind == CHANGE_PREMIUM) {
            _config.premiumBps = uint16(value);
            emit PremiumSet(value);
        } else if (kind == CHANGE_MAX_TIP) {
            _config.maxTip = uint40(value);
            emit MaxTipSet(value);
        } else {
            // checked again when applied: it must still answer on this chain
            address module = address(uint160(value));
            _config.l1Fee = _checkChainModule(module);
            _config.chainModule = IChainModule(module);
            emit ChainModuleSet(module);
        }
    }

    function _setExecutorNow(address executor, bool allowed) private {
        _accounts[executor].isExecutor = allowed;
        emit ExecutorSet(executor, allowed);
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
    function _l1Gas(Config memory c, uint256 n) private returns (uint256 gas) {
        uint256 l1 = c.chainModule.getCurrentL1Fee(msg.data);
        uint256 price = tx.gasprice;
        uint256 ceiling = block.basefee + c.maxTip;
        if (ceiling < price) price = ceiling;
        if (l1 == 0 || price == 0) return 0;
        gas = (l1 / n + price - 1) / price;
        if (gas > type(uint64).max) gas = type(uint64).max; // keeps the gas sums in _run far from overflow
        emit L1FeeShared(l1, gas);
    }

    /// A feed's decimals, refusing anything that is not a usable AggregatorV3Interface.
    function _feedDecimals(bytes32 asset, address feed, uint32 maxAge) private view returns (uint8 decimals) {
        if (maxAge == 0 || feed.code.length == 0) revert InvalidFeed(asset, feed);
        decimals = AggregatorV3Interface(feed).decimals();
        if (decimals > 36) revert InvalidFeed(asset, feed);
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
        uint256 gasPrice = tx.gasprice;
        {
            uint256 ceiling = block.basefee + c.maxTip;
            if (ceiling < gasPrice) gasPrice = ceiling;
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
            if (uint8(s0 >> S0_ACTION_KIND) == ACTION_CALL) loadGas = (_callData[id].length / 32 + 1) * CALLDATA_SLOT_GAS;
            // Not enough gas left to give the action its whole limit: skip before anything changes
            // (never revert the batch; the run stays due, the owner pays nothing).
            // (2 × gasLimit / 63: an ERC-20 action's wrapper gets its limit + 1/63, and passes on 63/64)
            if (gasleft() < gasLimit + 2 * (gasLimit / 63) + CALL_RESERVE + PRE_ACTION_GAS + loadGas) {
                if (pc.single) revert NotEnoughGasForAction(id, gasLimit);
                return _skip(id, runIndex, SKIP_OUT_OF_GAS);
            }
            feeBound = _fee(gasLimit + RUN_GAS_BOUND + extraGas + loadGas, gasPrice, c.premiumBps);
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
                address(this), 0, wrapped, abi.encodeCall(this.transferFromForRun, (t.token, owner, target, t.amount, gasLimit))
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
        return gasleft() >= gasLimit + gasLimit / 63 + CALL_RESERVE;
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
