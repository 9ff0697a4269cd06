// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";
import {IChainModule} from "./ChainModules.sol";
import "./AutometaTypes.sol";

/// @title AutometaAdmin — the admin functions of Autometa, run by Autometa's fallback with
/// delegatecall (so on Autometa's storage, emitting Autometa's events).
/// @notice Apart because EIP-170 caps Autometa's runtime at 24,576 bytes: the hot path and the
/// registry stay there, the admin's rarely called setters and timelock queue come here. Called
/// directly (not through Autometa) it has no owner, so every setter reverts.
///
/// STORAGE: the variables below mirror Autometa's layout slot for slot (`forge inspect
/// Autometa storageLayout`); the admin functions read and write only the named ones, the
/// `_unusedN` placeholders keep the others' slots. Change both together —
/// contracts/test/AdminModule.t.sol fails when they drift.
contract AutometaAdmin is IAutometaEvents, IAutometaErrors {
    struct Account {
        uint128 balance;
        uint64 maxGasPrice;
        bool isExecutor;
    }

    struct Asset {
        bytes32 name;
        address feed;
        uint32 maxAge;
        uint8 decimals;
    }

    struct Config {
        bool paused;
        uint16 premiumBps;
        uint8 maxFailures;
        uint40 maxTip;
        bool l1Fee;
        IChainModule chainModule;
    }

    struct Change {
        uint8 kind;
        uint40 eta;
        bytes32 key;
        uint256 value;
    }

    /// Ownable's error, so a stranger's call fails exactly as before the split.
    error OwnableUnauthorizedAccount(address account);

    mapping(address => Account) internal _accounts; // slot 0 (FeeEscrow)
    string private _unused1; // EIP712 name fallback
    string private _unused2; // EIP712 version fallback
    mapping(address => uint256) private _unused3; // nonces
    uint256 internal _workflowCount; // slot 4
    mapping(uint256 => uint256) private _unused5; // workflows
    mapping(uint256 => uint256) private _unused6; // token actions
    mapping(uint256 => uint256) private _unused7; // call data
    mapping(address => uint256) private _unused8; // owned
    mapping(bytes32 => uint16) internal _assetIds; // slot 9
    mapping(uint16 => Asset) internal _assets; // slot 10
    uint16 internal _assetCount; // slot 11
    mapping(uint256 => uint256) private _unused12; // trigger words
    mapping(uint256 => uint256) private _unused13; // trigger data
    address private _owner; // slot 14 (Ownable)
    address private _unused15; // Ownable2Step's pending owner
    Config internal _config; // slot 16
    uint256 internal _changeCount; // slot 17
    mapping(uint256 => Change) internal _changes; // slot 18

    uint256 public constant MAX_PREMIUM_BPS = 5_000;
    uint256 public constant MAX_TIP_BOUND = 50 gwei;
    uint256 public immutable timelockDelay;

    constructor(uint256 delay) {
        timelockDelay = delay;
    }

    modifier onlyOwner() {
        if (msg.sender != _owner) revert OwnableUnauthorizedAccount(msg.sender);
        _;
    }

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
    function pendingChange(uint256 changeId)
        external
        view
        returns (uint8 kind, bytes32 key, uint256 value, uint256 eta)
    {
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

    // ------------------------------------------------------------------ internals

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

    /// A feed's decimals, refusing anything that is not a usable AggregatorV3Interface.
    function _feedDecimals(bytes32 asset, address feed, uint32 maxAge) private view returns (uint8 decimals) {
        if (maxAge == 0 || feed.code.length == 0) revert InvalidFeed(asset, feed);
        decimals = AggregatorV3Interface(feed).decimals();
        if (decimals > 36) revert InvalidFeed(asset, feed);
    }

    function _assetIdOrRegister(bytes32 name) internal returns (uint16 id) {
        id = _assetIds[name];
        if (id != 0) return id;
        if (_assetCount == type(uint16).max) revert TooManyAssets();
        id = ++_assetCount;
        _assetIds[name] = id;
        _assets[id].name = name;
        emit AssetRegistered(name, id);
    }
}
