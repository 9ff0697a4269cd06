// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {FeeEscrow} from "./FeeEscrow.sol";
import {OwnerProxy} from "./OwnerProxy.sol";
import {CalldataGas} from "./CalldataGas.sol";
import {TriggerSpecs} from "./TriggerSpecs.sol";
import "./AutometaTypes.sol";

/// @title WorkflowRegistry — workflows, and the only ways to change them.
/// @notice A workflow is created, paused, resumed or cancelled by its owner: directly, or by
/// anyone who relays the owner's EIP-712 signature. A relayer is reimbursed its actual gas cost
/// from the owner's escrow, never more than the `maxRelayerFee` the owner signed.
abstract contract WorkflowRegistry is FeeEscrow, EIP712 {
    /// Storage layout: slot 0 is the one every run writes; slots 0-2 are read as whole words by
    /// ActionExecutor (by bit offset: keep the field order) and by every run. Slot 3 holds a
    /// PRICE trigger's time window and is read only when the trigger has one. ERC-20 and call
    /// actions keep their extra data aside.
    ///
    /// Slot 1's last 112 bits (`trigger`) are a union on the trigger kind (offsets within it):
    /// - TIME / INTERVAL: startTime uint40 (0) | interval uint32 (40) | endTime uint40 (72)
    /// - PRICE:           assetId uint16 (0) | comparator uint8 (16) | priceUsd uint64 (24) |
    ///                    cooldown uint24 (88)
    /// A PRICE trigger's comparator byte is COMPARATOR_BELOW / COMPARATOR_ABOVE in bit 0 and
    /// PRICE_WINDOW in bit 1: set iff the spec has a startTime or an endTime, which then live in
    /// slot 3 (`windowStart`, `windowEnd`). A price run without a window touches slots 0-2 only.
    /// - STATE / CRON / LOG: as TIME / INTERVAL (the window; STATE's cooldown in `interval`), and
    ///   one word aside (`_triggerWord`: STATE the triggerData's hash, CRON the bitmaps, LOG the
    ///   next acceptable log) that a run reads; the triggerData itself is kept for the views only.
    struct Workflow {
        // slot 0
        address owner;
        uint8 status;
        uint8 triggerKind;
        uint8 actionKind;
        uint32 runCount;
        uint40 lastRun;
        // slot 1
        uint80 maxFeePerRun;
        uint24 gasLimit;
        uint32 maxRuns;
        uint8 failures;
        uint112 trigger; // the union above
        // slot 2
        address target;
        uint96 value; // NATIVE amount / CALL value
        // slot 3 (PRICE triggers with PRICE_WINDOW only)
        uint40 windowStart; // not before (0 = at once)
        uint40 windowEnd; // not after (0 = never)
    }

    /// Offsets within `Workflow.trigger` (add 144 for the bit offset in slot 1).
    uint256 internal constant T_START_TIME = 0;
    uint256 internal constant T_INTERVAL = 40;
    uint256 internal constant T_END_TIME = 72;
    uint256 internal constant T_ASSET_ID = 0;
    uint256 internal constant T_COMPARATOR = 16;
    uint256 internal constant T_PRICE_USD = 24;
    uint256 internal constant T_COOLDOWN = 88;
    /// Bit 1 of a PRICE trigger's stored comparator byte: the window is in slot 3.
    uint8 internal constant PRICE_WINDOW = 2;
    /// Bit 2 of a PRICE trigger's stored comparator byte: the asset had a feed when the workflow
    /// was created, so the workflow only ever fires on the oracle's price (never an attested one).
    uint8 internal constant ORACLE_REQUIRED = 4;

    struct TokenAction {
        address token;
        uint256 amount;
    }

    struct Asset {
        bytes32 name;
        address feed; // AggregatorV3Interface, or 0: the executor attests the price
        uint32 maxAge; // seconds a feed answer stays usable
        uint8 decimals;
    }

    uint24 public constant MIN_GAS_LIMIT = 10_000;
    uint24 public constant MAX_GAS_LIMIT = 5_000_000;
    uint256 public constant MAX_CALLDATA = 4096;
    /// Gas of a relayed call outside what `gasleft()` sees (intrinsic cost, signature decoding, the
    /// reimbursement itself); the calldata's own cost is counted exactly on top.
    uint256 internal constant RELAY_OVERHEAD = 9_000;
    /// The intrinsic gas of a transaction, charged once per transaction (see `_intrinsicGas`).
    uint256 internal constant INTRINSIC_GAS = 21_000;
    /// Transient slot set once this transaction's intrinsic gas has been charged to someone.
    bytes32 private constant INTRINSIC_CHARGED_SLOT = keccak256("autometa.intrinsic-charged");
    /// How far `invalidateNonces` moves an owner's nonce: past any signature they prepared ahead.
    uint256 public constant NONCE_JUMP = 2 ** 20;

    bytes32 public constant SPEC_TYPEHASH = keccak256(
        "WorkflowSpec(uint8 triggerKind,uint8 comparator,uint40 startTime,uint40 endTime,uint32 interval,uint64 priceUsd,bytes32 asset,uint8 actionKind,address target,address token,uint256 amount,bytes data,uint32 maxRuns,uint24 gasLimit,uint80 maxFeePerRun,bytes triggerData)"
    );
    bytes32 public constant CREATE_TYPEHASH = keccak256(
        "CreateWorkflow(address owner,WorkflowSpec spec,uint256 nonce,uint256 deadline,uint256 maxRelayerFee)WorkflowSpec(uint8 triggerKind,uint8 comparator,uint40 startTime,uint40 endTime,uint32 interval,uint64 priceUsd,bytes32 asset,uint8 actionKind,address target,address token,uint256 amount,bytes data,uint32 maxRuns,uint24 gasLimit,uint80 maxFeePerRun,bytes triggerData)"
    );
    bytes32 public constant PAUSE_TYPEHASH = keccak256(
        "PauseWorkflow(address owner,uint256 workflowId,uint256 nonce,uint256 deadline,uint256 maxRelayerFee)"
    );
    bytes32 public constant RESUME_TYPEHASH = keccak256(
        "ResumeWorkflow(address owner,uint256 workflowId,uint256 nonce,uint256 deadline,uint256 maxRelayerFee)"
    );
    bytes32 public constant CANCEL_TYPEHASH = keccak256(
        "CancelWorkflow(address owner,uint256 workflowId,uint256 nonce,uint256 deadline,uint256 maxRelayerFee)"
    );

    address public immutable proxyImplementation;
    /// Creation-time checks of the STATE / CRON / LOG kinds (see TriggerSpecs: why apart).
    TriggerSpecs public immutable triggerSpecs;

    /// Owners' signature nonces (first: the slot OpenZeppelin's Nonces held, so the layout stays).
    mapping(address => uint256) private _nonces;
    uint256 internal _workflowCount;
    mapping(uint256 => Workflow) internal _workflows;
    mapping(uint256 => TokenAction) internal _tokenActions;
    mapping(uint256 => bytes) internal _callData;
    mapping(address => uint256[]) internal _owned;
    mapping(bytes32 => uint16) internal _assetIds; // name → id (1-based)
    mapping(uint16 => Asset) internal _assets;
    uint16 internal _assetCount;
    mapping(uint256 => bytes32) internal _triggerWord; // STATE / CRON / LOG: what a run reads
    mapping(uint256 => bytes) internal _triggerData; // STATE / CRON / LOG: the spec's, for the views

    constructor() EIP712("Autometa", "1") {
        proxyImplementation = address(new OwnerProxy(address(this)));
        triggerSpecs = new TriggerSpecs();
    }

    // ------------------------------------------------------------------ create

    /// @notice Create a workflow owned by the sender.
    function createWorkflow(WorkflowSpec calldata spec) external nonReentrant returns (uint256 workflowId) {
        _requireCreationOpen();
        return _create(msg.sender, spec);
    }

    /// @notice Create a workflow for `owner`, who signed it (EIP-712 `CreateWorkflow`).
    /// The sender is reimbursed its gas from the owner's escrow, at most `maxRelayerFee`.
    function createWorkflowFor(
        address owner,
        WorkflowSpec calldata spec,
        uint256 nonce,
        uint256 deadline,
        uint256 maxRelayerFee,
        bytes calldata signature
    ) external nonReentrant returns (uint256 workflowId) {
        uint256 gasStart = gasleft();
        // the exact ABI encoding: 6 head words, the spec (16 words, both bytes' lengths + contents), the signature
        _requireCanonical(
            4 + 32 * 6 + 32 * 18 + _padded(spec.data.length) + _padded(spec.triggerData.length) + 32
                + _padded(signature.length)
        );
        _requireCreationOpen();
        bytes32 structHash =
            keccak256(abi.encode(CREATE_TYPEHASH, owner, hashSpec(spec), nonce, deadline, maxRelayerFee));
        _checkSignature(owner, structHash, nonce, deadline, signature);
        workflowId = _create(owner, spec);
        _reimburseRelayer(owner, gasStart, maxRelayerFee);
    }

    // ------------------------------------------------------------------ status

    /// Direct status changes consume the owner's nonce: a signature prepared before (say, an
    /// unsent RESUME) can no longer undo what the owner just did.
    function pauseWorkflow(uint256 workflowId) external nonReentrant {
        _changeStatus(workflowId, msg.sender, OP_PAUSE);
        _useNonce(msg.sender);
    }

    function resumeWorkflow(uint256 workflowId) external nonReentrant {
        _changeStatus(workflowId, msg.sender, OP_RESUME);
        _useNonce(msg.sender);
    }

    function cancelWorkflow(uint256 workflowId) external nonReentrant {
        _changeStatus(workflowId, msg.sender, OP_CANCEL);
        _useNonce(msg.sender);
    }

    /// @notice Invalidate every signature the sender has given and not yet seen used: the nonce
    /// moves `NONCE_JUMP` ahead, past any nonce a signature could have been prepared with.
    function invalidateNonces() external nonReentrant {
        uint256 next = _nonces[msg.sender] + NONCE_JUMP;
        _nonces[msg.sender] = next;
        emit NoncesInvalidated(msg.sender, next);
    }

    /// @notice The nonce the owner's next signature must carry.
    function nonces(address owner) external view returns (uint256) {
        return _nonces[owner];
    }

    /// @notice Pause (op 0), resume (1) or cancel (2) a workflow with its owner's EIP-712
    /// signature (`PauseWorkflow` / `ResumeWorkflow` / `CancelWorkflow`).
    function changeStatusBySig(
        uint256 workflowId,
        uint8 op,
        uint256 nonce,
        uint256 deadline,
        uint256 maxRelayerFee,
        bytes calldata signature
    ) external nonReentrant {
        uint256 gasStart = gasleft();
        _requireCanonical(4 + 32 * 6 + 32 + _padded(signature.length));
        address owner = _workflows[workflowId].owner;
        if (owner == address(0)) revert UnknownWorkflow(workflowId);
        bytes32 typehash = op == OP_PAUSE
            ? PAUSE_TYPEHASH
            : op == OP_RESUME ? RESUME_TYPEHASH : op == OP_CANCEL ? CANCEL_TYPEHASH : bytes32(0);
        if (typehash == bytes32(0)) revert InvalidOp(op);
        bytes32 structHash = keccak256(abi.encode(typehash, owner, workflowId, nonce, deadline, maxRelayerFee));
        _checkSignature(owner, structHash, nonce, deadline, signature);
        _changeStatus(workflowId, owner, op);
        _reimburseRelayer(owner, gasStart, maxRelayerFee);
    }

    // ------------------------------------------------------------------ views

    function workflowCount() external view returns (uint256) {
        return _workflowCount;
    }

    function workflowCountOf(address owner) external view returns (uint256) {
        return _owned[owner].length;
    }

    function getWorkflow(uint256 workflowId) public view returns (WorkflowView memory v) {
        Workflow storage w = _workflows[workflowId];
        if (w.owner == address(0)) revert UnknownWorkflow(workflowId);
        v.id = workflowId;
        v.owner = w.owner;
        v.status = w.status;
        v.runCount = w.runCount;
        v.lastRun = w.lastRun;
        v.failures = w.failures;
        WorkflowSpec memory s = v.spec;
        s.triggerKind = w.triggerKind;
        uint256 trig = w.trigger;
        if (w.triggerKind == TRIGGER_PRICE) {
            uint8 comparator = uint8(trig >> T_COMPARATOR);
            s.comparator = comparator & COMPARATOR_ABOVE;
            s.priceUsd = uint64(trig >> T_PRICE_USD);
            s.interval = uint24(trig >> T_COOLDOWN);
            s.asset = _assets[uint16(trig >> T_ASSET_ID)].name;
            if (comparator & PRICE_WINDOW != 0) {
                s.startTime = w.windowStart;
                s.endTime = w.windowEnd;
            }
        } else {
            s.startTime = uint40(trig >> T_START_TIME);
            s.interval = uint32(trig >> T_INTERVAL);
            s.endTime = uint40(trig >> T_END_TIME);
        }
        s.actionKind = w.actionKind;
        s.target = w.target;
        if (w.actionKind == ACTION_ERC20) {
            TokenAction storage t = _tokenActions[workflowId];
            s.token = t.token;
            s.amount = t.amount;
        } else {
            s.amount = w.value;
        }
        if (w.actionKind == ACTION_CALL) s.data = _callData[workflowId];
        if (w.triggerKind > TRIGGER_PRICE) s.triggerData = _triggerData[workflowId];
        s.maxRuns = w.maxRuns;
        s.gasLimit = w.gasLimit;
        s.maxFeePerRun = w.maxFeePerRun;
    }

    /// @notice `owner`'s workflows, oldest first, `limit` from `offset`.
    function workflowsOf(address owner, uint256 offset, uint256 limit)
        external
        view
        returns (WorkflowView[] memory page)
    {
        uint256[] storage ids = _owned[owner];
        uint256 end = offset + limit;
        if (end > ids.length) end = ids.length;
        if (offset >= end) return new WorkflowView[](0);
        page = new WorkflowView[](end - offset);
        for (uint256 i = offset; i < end; ++i) {
            page[i - offset] = getWorkflow(ids[i]);
        }
    }

    /// @notice The proxy that makes `owner`'s contract calls (deployed with their first call workflow).
    function proxyOf(address owner) public view returns (address) {
        return Clones.predictDeterministicAddress(proxyImplementation, bytes32(uint256(uint160(owner))));
    }

    /// @notice Whether a price workflow fires only on its asset's oracle (the asset had a feed
    /// at creation), even if that feed is later removed: then it waits, it never takes an attested price.
    function requiresOracle(uint256 workflowId) external view returns (bool) {
        Workflow storage w = _workflows[workflowId];
        if (w.owner == address(0)) revert UnknownWorkflow(workflowId);
        return w.triggerKind == TRIGGER_PRICE && (uint8(w.trigger >> T_COMPARATOR) & ORACLE_REQUIRED) != 0;
    }

    function assetId(bytes32 asset) external view returns (uint16) {
        return _assetIds[asset];
    }

    function assetInfo(bytes32 asset) external view returns (uint16 id, address feed, uint32 maxAge, uint8 decimals) {
        id = _assetIds[asset];
        Asset storage a = _assets[id];
        return (id, a.feed, a.maxAge, a.decimals);
    }

    /// @notice EIP-712 struct hash of a spec (what `CreateWorkflow.spec` contributes).
    function hashSpec(WorkflowSpec calldata s) public pure returns (bytes32) {
        // Two halves keep the stack shallow; static fields concatenate to the single encoding.
        bytes memory head = abi.encode(
            SPEC_TYPEHASH, s.triggerKind, s.comparator, s.startTime, s.endTime, s.interval, s.priceUsd, s.asset
        );
        bytes memory tail = abi.encode(
            s.actionKind,
            s.target,
            s.token,
            s.amount,
            keccak256(s.data),
            s.maxRuns,
            s.gasLimit,
            s.maxFeePerRun,
            keccak256(s.triggerData)
        );
        return keccak256(bytes.concat(head, tail));
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------ internals

    /// Hook: the executor module closes creation during an emergency pause.
    function _requireCreationOpen() internal view virtual;

    /// Hook: the most gas price a fee or reimbursement is computed with right now (base fee +
    /// the deployment's tip cap), set by the executor module.
    function _gasPriceCeiling() internal view virtual returns (uint256);

    /// The transaction's intrinsic 21,000 gas for the first charge in a transaction, 0 after:
    /// several runs or intents in one transaction (a batching contract, a multicall) share it.
    function _intrinsicGas() internal returns (uint256 intrinsic) {
        bytes32 slot = INTRINSIC_CHARGED_SLOT;
        bool charged;
        assembly ("memory-safe") {
            charged := tload(slot)
            if iszero(charged) { tstore(slot, 1) }
        }
        if (!charged) intrinsic = INTRINSIC_GAS;
    }

    /// Refuse calldata that is not exactly the ABI encoding of the call's arguments: appended
    /// bytes would otherwise be charged to the owner as calldata gas.
    function _requireCanonical(uint256 expected) internal pure {
        if (msg.data.length != expected) revert NonCanonicalCalldata(msg.data.length, expected);
    }

    function _padded(uint256 length) internal pure returns (uint256) {
        return (length + 31) & ~uint256(31);
    }

    function _useNonce(address owner) private returns (uint256 current) {
        unchecked {
            // a nonce cannot realistically overflow (each step is a transaction or NONCE_JUMP)
            current = _nonces[owner]++;
        }
    }

    function _useCheckedNonce(address owner, uint256 nonce) private {
        uint256 current = _useNonce(owner);
        if (nonce != current) revert InvalidAccountNonce(owner, current);
    }

    function _checkSignature(
        address owner,
        bytes32 structHash,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) private {
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        if (!SignatureChecker.isValidSignatureNow(owner, _hashTypedDataV4(structHash), signature)) {
            revert InvalidSignature();
        }
        _useCheckedNonce(owner, nonce);
    }

    /// Reimburse the relayer's actual gas (at most `maxRelayerFee`) from the owner's escrow, by
    /// crediting the relayer's balance. Reverts if the owner cannot pay: a relayer never pays
    /// for strangers.
    function _reimburseRelayer(address owner, uint256 gasStart, uint256 maxRelayerFee) private {
        if (msg.sender == owner || maxRelayerFee == 0) return;
        uint256 price = tx.gasprice;
        {
            uint256 ceiling = _gasPriceCeiling();
            if (ceiling < price) price = ceiling;
        }
        uint256 cost = (gasStart - gasleft() + RELAY_OVERHEAD + _intrinsicGas() + CalldataGas.cost()) * price;
        uint256 amount = cost < maxRelayerFee ? cost : maxRelayerFee;
        Account storage a = _accounts[owner];
        uint256 balance = a.balance;
        if (balance < amount) revert InsufficientEscrow(owner, balance, amount);
        a.balance = uint128(balance - amount);
        _credit(msg.sender, amount);
        emit RelayerReimbursed(owner, msg.sender, amount);
    }

    function _create(address owner, WorkflowSpec calldata s) private returns (uint256 workflowId) {
        _validate(s);
        workflowId = ++_workflowCount;
        Workflow storage w = _workflows[workflowId];
        w.owner = owner;
        w.status = STATUS_ACTIVE;
        w.triggerKind = s.triggerKind;
        w.actionKind = s.actionKind;
        w.maxFeePerRun = s.maxFeePerRun;
        w.gasLimit = s.gasLimit;
        w.maxRuns = s.maxRuns;
        w.target = s.target;
        if (s.triggerKind == TRIGGER_PRICE) {
            uint256 comparator = s.comparator;
            // Only assets the admin registered (with a feed, or as attested) can be priced: the
            // 65,535 asset ids are not open to anyone who creates a workflow.
            uint16 aid = _assetIds[s.asset];
            if (aid == 0) revert UnknownAsset(s.asset);
            if (_assets[aid].feed != address(0)) comparator |= ORACLE_REQUIRED;
            if (s.startTime != 0 || s.endTime != 0) {
                comparator |= PRICE_WINDOW;
                w.windowStart = s.startTime;
                w.windowEnd = s.endTime;
            }
            // _validate bounds the cooldown to 24 bits
            w.trigger = uint112(
                (uint256(aid) << T_ASSET_ID) | (comparator << T_COMPARATOR) | (uint256(s.priceUsd) << T_PRICE_USD)
                    | (uint256(s.interval) << T_COOLDOWN)
            );
        } else {
            w.trigger = uint112(
                (uint256(s.startTime) << T_START_TIME) | (uint256(s.interval) << T_INTERVAL)
                    | (uint256(s.endTime) << T_END_TIME)
            );
        }
        if (s.triggerKind > TRIGGER_PRICE) {
            // the one creation-time dispatch point of the STATE / CRON / LOG kinds
            _triggerWord[workflowId] = triggerSpecs.check(s.triggerKind, s.triggerData);
            _triggerData[workflowId] = s.triggerData;
        }
        if (s.actionKind == ACTION_ERC20) {
            _tokenActions[workflowId] = TokenAction(s.token, s.amount);
        } else {
            w.value = uint96(s.amount);
        }
        if (s.actionKind == ACTION_CALL) {
            _callData[workflowId] = s.data;
            _ensureProxy(owner);
        }
        _owned[owner].push(workflowId);
        emit WorkflowCreated(workflowId, owner, msg.sender, s);
    }

    function _validate(WorkflowSpec calldata s) private view {
        uint8 tk = s.triggerKind;
        if (tk > TRIGGER_LOG) revert InvalidSpec("triggerKind");
        if (tk <= TRIGGER_PRICE && s.triggerData.length != 0) revert InvalidSpec("triggerData");
        if (s.maxRuns == 0) revert InvalidSpec("maxRuns");
        if (s.endTime != 0 && s.endTime <= s.startTime) revert InvalidSpec("endTime");
        if (s.endTime != 0 && s.endTime <= block.timestamp) revert InvalidSpec("endTime");
        if (tk == TRIGGER_TIME) {
            if (s.startTime == 0) revert InvalidSpec("startTime");
            if (s.maxRuns != 1) revert InvalidSpec("maxRuns");
        } else if (tk == TRIGGER_INTERVAL) {
            if (s.interval == 0) revert InvalidSpec("interval");
        } else if (tk > TRIGGER_PRICE) {
            // CRON runs once per tick, LOG once per log: no cooldown; STATE's is `interval`
            if (tk != TRIGGER_STATE && s.interval != 0) revert InvalidSpec("interval");
        } else {
            if (s.comparator > COMPARATOR_ABOVE) revert InvalidSpec("comparator");
            if (s.priceUsd == 0) revert InvalidSpec("priceUsd");
            if (s.asset == bytes32(0)) revert InvalidSpec("asset");
            if (s.interval > type(uint24).max) revert InvalidSpec("interval"); // the stored cooldown is 24 bits
        }
        if (tk != TRIGGER_PRICE && (s.comparator != 0 || s.priceUsd != 0 || s.asset != bytes32(0))) {
            revert InvalidSpec("priceUsd");
        }
        if (s.gasLimit < MIN_GAS_LIMIT || s.gasLimit > MAX_GAS_LIMIT) revert InvalidSpec("gasLimit");
        if (s.maxFeePerRun == 0) revert InvalidSpec("maxFeePerRun");
        uint8 ak = s.actionKind;
        if (ak > ACTION_CALL) revert InvalidSpec("actionKind");
        if (s.target == address(0) || s.target == address(this)) revert InvalidSpec("target");
        if (ak == ACTION_ERC20) {
            if (s.token.code.length == 0 || s.token == address(this)) revert InvalidSpec("token");
            if (s.amount == 0) revert InvalidSpec("amount");
        } else {
            if (s.token != address(0)) revert InvalidSpec("token");
            if (s.amount > type(uint96).max) revert InvalidSpec("amount");
        }
        if (ak == ACTION_NATIVE && s.amount == 0) revert InvalidSpec("amount");
        if (ak == ACTION_CALL) {
            if (s.target.code.length == 0) revert InvalidSpec("target");
            if (s.data.length > MAX_CALLDATA) revert InvalidSpec("data");
        } else if (s.data.length != 0) {
            revert InvalidSpec("data");
        }
    }

    function _ensureProxy(address owner) private {
        address predicted = proxyOf(owner);
        if (predicted.code.length != 0) return;
        address proxy = Clones.cloneDeterministic(proxyImplementation, bytes32(uint256(uint160(owner))));
        OwnerProxy(payable(proxy)).initialize(owner);
        emit ProxyDeployed(owner, proxy);
    }

    function _changeStatus(uint256 workflowId, address caller, uint8 op) private {
        Workflow storage w = _workflows[workflowId];
        address owner = w.owner;
        if (owner == address(0)) revert UnknownWorkflow(workflowId);
        if (owner != caller) revert NotWorkflowOwner(workflowId, caller);
        uint8 status = w.status;
        uint8 next;
        if (op == OP_PAUSE && status == STATUS_ACTIVE) {
            next = STATUS_PAUSED;
        } else if (op == OP_RESUME && status == STATUS_PAUSED) {
            next = STATUS_ACTIVE;
            w.failures = 0;
        } else if (op == OP_CANCEL && (status == STATUS_ACTIVE || status == STATUS_PAUSED)) {
            next = STATUS_CANCELLED;
        } else {
            revert InvalidTransition(workflowId, status, op);
        }
        w.status = next;
        emit WorkflowStatusChanged(workflowId, next, CHANGE_BY_OWNER);
    }
}
