// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// The shared vocabulary of the Autometa contracts. The numbers are part of the public
// interface (the seed's `trigger_type` / `action_type`), so they never change meaning.

uint8 constant TRIGGER_TIME = 0; // once, at or after `startTime`
uint8 constant TRIGGER_INTERVAL = 1; // every `interval` seconds from `startTime`, until `endTime`
uint8 constant TRIGGER_PRICE = 2; // `asset` price (USD, 8 decimals) below/above `priceUsd`
// The kinds below carry `triggerData` (layouts in TriggerSpecs.sol); `startTime` / `endTime` are
// their window (not before / not after, 0 = none) and for STATE `interval` is a cooldown.
uint8 constant TRIGGER_STATE = 3; // a view call's return word vs a threshold, re-checked on-chain by the run
uint8 constant TRIGGER_CRON = 4; // a 5-field UTC cron spec: the run names its tick, once per tick
uint8 constant TRIGGER_LOG = 5; // an event log, attested by the executor (block hash checked), once per log

uint8 constant ACTION_NATIVE = 0; // send `amount` wei from the owner's escrow to `target`
uint8 constant ACTION_ERC20 = 1; // `token.transferFrom(owner, target, amount)` via the owner's allowance
uint8 constant ACTION_CALL = 2; // call `target` with `data` and `amount` wei from the owner's proxy

uint8 constant COMPARATOR_BELOW = 0;
uint8 constant COMPARATOR_ABOVE = 1;

// STATE: how the view's return word is read, and the comparator (`value <cmp> threshold`).
uint8 constant READ_UINT256 = 0;
uint8 constant READ_INT256 = 1;
uint8 constant READ_BOOL = 2; // any non-zero word is 1
uint8 constant READ_ADDRESS = 3;
uint8 constant CMP_LT = 0;
uint8 constant CMP_LE = 1;
uint8 constant CMP_GT = 2;
uint8 constant CMP_GE = 3;
uint8 constant CMP_EQ = 4;
uint8 constant CMP_NE = 5;

// CRON: bit offsets of the bitmaps in the stored trigger word (see TriggerSpecs.cronBits).
uint256 constant CRON_MINUTE = 0;
uint256 constant CRON_HOUR = 60;
uint256 constant CRON_DAY = 84;
uint256 constant CRON_MONTH = 115;
uint256 constant CRON_WEEKDAY = 127;
uint256 constant CRON_CREATED = 192; // the workflow's creation time: no tick before it runs

uint8 constant STATUS_NONE = 0;
uint8 constant STATUS_ACTIVE = 1;
uint8 constant STATUS_PAUSED = 2;
uint8 constant STATUS_CANCELLED = 3;
uint8 constant STATUS_COMPLETED = 4;

// Why a status changed (WorkflowStatusChanged.reason).
uint8 constant CHANGE_BY_OWNER = 0;
uint8 constant CHANGE_BY_FAILURES = 1; // paused itself after `maxFailures` failed runs in a row
uint8 constant CHANGE_BY_EXPIRY = 2; // `endTime` passed
uint8 constant CHANGE_BY_COMPLETION = 3; // `maxRuns` reached

// Why a run was skipped (RunSkipped.reason). A skipped run is not consumed and costs the owner nothing.
uint8 constant SKIP_NOT_ACTIVE = 1;
uint8 constant SKIP_RUN_DONE = 2; // this run index already executed
uint8 constant SKIP_BAD_RUN_INDEX = 3; // run index ahead of the next run
uint8 constant SKIP_NOT_DUE = 4;
uint8 constant SKIP_CONDITION_FALSE = 5;
uint8 constant SKIP_INSUFFICIENT_ESCROW = 6;
uint8 constant SKIP_PRICE_UNAVAILABLE = 7; // feed reverted, non-positive or stale; or no attested price
uint8 constant SKIP_EXPIRED = 8;
uint8 constant SKIP_OUT_OF_GAS = 9; // the transaction had too little gas left to give the action its gasLimit
uint8 constant SKIP_VIEW_FAILED = 10; // STATE: the view reverted, exceeded its gas cap or returned too little
uint8 constant SKIP_BAD_PROOF = 11; // STATE data not the signed one; LOG attestation not a canonical block's

uint8 constant SOURCE_NONE = 0; // time triggers
uint8 constant SOURCE_ORACLE = 1; // a registered AggregatorV3Interface feed
uint8 constant SOURCE_ATTESTED = 2; // the executor's reported price (asset without a feed)

uint8 constant OP_PAUSE = 0;
uint8 constant OP_RESUME = 1;
uint8 constant OP_CANCEL = 2;

// What a timelocked admin change does (ChangeQueued.kind). `key` / `value` per kind:
uint8 constant CHANGE_EXECUTOR = 1; // key: executor address; value: 1 allow, 0 revoke
uint8 constant CHANGE_FEED = 2; // key: asset; value: feed address | maxAge << 160
uint8 constant CHANGE_PREMIUM = 3; // value: premium in basis points
uint8 constant CHANGE_MAX_TIP = 4; // value: the most tip per gas (above the base fee) a fee is computed with
uint8 constant CHANGE_CHAIN_MODULE = 5; // value: the chain module (IChainModule) that prices the L1 data fee

/// What a user asks for. Field meaning depends on the kinds (see the constants above).
struct WorkflowSpec {
    uint8 triggerKind;
    uint8 comparator; // PRICE: COMPARATOR_BELOW / COMPARATOR_ABOVE
    uint40 startTime; // TIME: fire at; INTERVAL: first run; PRICE: not before (0 = at once)
    uint40 endTime; // no run after this time (0 = never)
    uint32 interval; // INTERVAL: period; PRICE: cooldown between runs (seconds)
    uint64 priceUsd; // PRICE: threshold, USD with 8 decimals
    bytes32 asset; // PRICE: asset id, e.g. bytes32("ethereum") (CoinGecko id, left-aligned)
    uint8 actionKind;
    address target; // NATIVE / ERC20: recipient; CALL: contract to call
    address token; // ERC20: the token
    uint256 amount; // NATIVE / ERC20: amount; CALL: value sent with the call
    bytes data; // CALL: calldata
    uint32 maxRuns; // TIME: must be 1
    uint24 gasLimit; // gas the action always gets
    uint80 maxFeePerRun; // the most one run may charge the owner, in wei
    bytes triggerData; // STATE / CRON / LOG: the kind's data (layouts in TriggerSpecs.sol); else empty
}

/// A workflow as the views return it.
struct WorkflowView {
    uint256 id;
    address owner;
    uint8 status;
    uint32 runCount;
    uint40 lastRun;
    uint8 failures;
    WorkflowSpec spec;
}

/// Every event the Autometa contracts emit: enough for an indexer to rebuild all state.
interface IAutometaEvents {
    event WorkflowCreated(
        uint256 indexed workflowId, address indexed owner, address indexed relayer, WorkflowSpec spec
    );
    event WorkflowStatusChanged(uint256 indexed workflowId, uint8 status, uint8 reason);
    event RunExecuted(
        uint256 indexed workflowId,
        uint256 indexed runIndex,
        address indexed executor,
        bool success,
        uint8 status,
        uint256 gasUsed,
        uint256 gasPrice,
        uint256 fee,
        uint256 premiumBps,
        uint256 price,
        uint8 priceSource
    );
    event RunFailed(uint256 indexed workflowId, uint256 indexed runIndex, bytes reason);
    event RunSkipped(uint256 indexed workflowId, uint256 indexed runIndex, address indexed executor, uint8 reason);
    event Deposited(address indexed user, address indexed from, uint256 amount);
    event Withdrawn(address indexed user, address indexed to, uint256 amount);
    event MaxGasPriceSet(address indexed user, uint256 maxGasPrice);
    event RelayerReimbursed(address indexed owner, address indexed relayer, uint256 amount);
    event ProxyDeployed(address indexed owner, address proxy);
    event ExecutorSet(address indexed executor, bool allowed);
    event FeedSet(bytes32 indexed asset, uint16 assetId, address feed, uint32 maxAge, uint8 decimals);
    event AssetRegistered(bytes32 indexed asset, uint16 assetId);
    event PremiumSet(uint256 premiumBps);
    event MaxFailuresSet(uint256 maxFailures);
    event ExecutionPausedSet(bool paused);
    event MaxTipSet(uint256 maxTipPerGas);
    event ChangeQueued(uint256 indexed changeId, uint8 kind, bytes32 key, uint256 value, uint256 eta);
    event ChangeApplied(uint256 indexed changeId);
    event ChangeCancelled(uint256 indexed changeId);
    event NoncesInvalidated(address indexed owner, uint256 nonce);
    event ChainModuleSet(address module);
    /// This transaction's L1 data fee (wei, from the chain module) and the gas each charged run
    /// carries for its share (included in its RunExecuted.gasUsed, charged at its gas price).
    event L1FeeShared(uint256 l1Fee, uint256 gasPerRun);
    /// A LOG run's attestation: the log the executor says fired it (the block hash was checked
    /// against `blockhash`; the transaction hash and log index are the executor's word).
    event LogAttested(
        uint256 indexed workflowId,
        uint256 indexed runIndex,
        uint256 blockNumber,
        bytes32 blockHash,
        bytes32 txHash,
        uint256 logIndex
    );
}

/// Every error, with the values a caller needs to understand it.
interface IAutometaErrors {
    error NotExecutor(address caller);
    error NotWorkflowOwner(uint256 workflowId, address caller);
    error UnknownWorkflow(uint256 workflowId);
    error InvalidSpec(string field);
    error InvalidTransition(uint256 workflowId, uint8 status, uint8 op);
    error InvalidOp(uint8 op);
    error SignatureExpired(uint256 deadline);
    error InvalidSignature();
    error InsufficientEscrow(address user, uint256 balance, uint256 needed);
    error TransferFailed(address to, uint256 amount);
    error ExecutionIsPaused();
    error NotEnoughGasForAction(uint256 workflowId, uint256 gasLimit);
    error BadBatch(uint256 length);
    error PremiumTooHigh(uint256 premiumBps, uint256 max);
    error MaxFailuresOutOfRange(uint256 value);
    error InvalidFeed(bytes32 asset, address feed);
    error TooManyAssets();
    error AmountTooLarge(uint256 amount);
    error UnknownAsset(bytes32 asset);
    error NonCanonicalCalldata(uint256 length, uint256 expected);
    error InvalidAccountNonce(address account, uint256 currentNonce); // as OpenZeppelin's Nonces
    error TipTooHigh(uint256 maxTipPerGas, uint256 max);
    error TimelockOutOfRange(uint256 delay);
    error UnknownChange(uint256 changeId);
    error ChangeNotReady(uint256 changeId, uint256 eta);
    error RenounceDisabled();
    error InvalidChainModule(address module);
    error SafeTransferFailed(address token);
}
