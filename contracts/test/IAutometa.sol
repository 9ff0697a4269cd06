// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "../src/AutometaTypes.sol";

/// The deployed Autometa's external interface, as the tests call it. The tests deploy the real,
/// via-IR-built contract from its artifact (vm.deployCode) and compile themselves without via-IR,
/// which keeps a cold `forge test` well under the time budget. Generated from the ABI.
interface IAutometa is IAutometaEvents, IAutometaErrors {
    function CANCEL_TYPEHASH() external view returns (bytes32);
    function CREATE_TYPEHASH() external view returns (bytes32);
    function MAX_BATCH() external view returns (uint256);
    function MAX_CALLDATA() external view returns (uint256);
    function MAX_GAS_LIMIT() external view returns (uint24);
    function MAX_PREMIUM_BPS() external view returns (uint256);
    function MIN_GAS_LIMIT() external view returns (uint24);
    function PAUSE_TYPEHASH() external view returns (bytes32);
    function RESUME_TYPEHASH() external view returns (bytes32);
    function SPEC_TYPEHASH() external view returns (bytes32);
    function acceptOwnership() external;
    function accountOf(address user) external view returns (uint256, uint256, bool);
    function assetId(bytes32 asset) external view returns (uint16);
    function assetInfo(bytes32 asset) external view returns (uint16, address, uint32, uint8);
    function balanceOf(address user) external view returns (uint256);
    function cancelWorkflow(uint256 workflowId) external;
    function changeStatusBySig(
        uint256 workflowId,
        uint8 op,
        uint256 nonce,
        uint256 deadline,
        uint256 maxRelayerFee,
        bytes calldata signature
    ) external;
    function config() external view returns (bool, uint256, uint256);
    function createWorkflow(WorkflowSpec calldata spec) external returns (uint256);
    function createWorkflowFor(
        address owner,
        WorkflowSpec calldata spec,
        uint256 nonce,
        uint256 deadline,
        uint256 maxRelayerFee,
        bytes calldata signature
    ) external returns (uint256);
    function currentPrice(bytes32 asset, uint64 attestedPrice) external view returns (bool, uint256, uint8);
    function deposit() external payable;
    function depositFor(address user) external payable;
    function domainSeparator() external view returns (bytes32);
    function eip712Domain()
        external
        view
        returns (bytes1, string memory, string memory, uint256, address, bytes32, uint256[] memory);
    function execute(uint256 workflowId, uint32 runIndex, uint64 attestedPrice) external;
    function executeBatch(uint256[] calldata runs) external;
    function executeWithProof(uint256 workflowId, uint32 runIndex, uint64 attested, bytes calldata proof) external;
    function triggerSpecs() external view returns (address);
    function adminModule() external view returns (address);
    function getWorkflow(uint256 workflowId) external view returns (WorkflowView memory);
    function hashSpec(WorkflowSpec calldata s) external pure returns (bytes32);
    function nonces(address owner) external view returns (uint256);
    function owner() external view returns (address);
    function pauseWorkflow(uint256 workflowId) external;
    function pendingOwner() external view returns (address);
    function proxyImplementation() external view returns (address);
    function proxyOf(address owner) external view returns (address);
    function renounceOwnership() external;
    function resumeWorkflow(uint256 workflowId) external;
    function setExecutor(address executor, bool allowed) external returns (uint256);
    function setFeed(bytes32 asset, address feed, uint32 maxAge) external returns (uint256);
    function registerAsset(bytes32 asset) external returns (uint16);
    function setMaxTip(uint64 maxTip) external returns (uint256);
    function setChainModule(address module) external returns (uint256);
    function chainModule() external view returns (address);
    function applyChange(uint256 changeId) external;
    function cancelChange(uint256 changeId) external;
    function pendingChange(uint256 changeId) external view returns (uint8, bytes32, uint256, uint256);
    function pendingChangeIds() external view returns (uint256[] memory);
    function maxTipPerGas() external view returns (uint256);
    function timelockDelay() external view returns (uint256);
    function MAX_TIP_BOUND() external view returns (uint256);
    function DEFAULT_MAX_TIP() external view returns (uint256);
    function MIN_TIMELOCK() external view returns (uint256);
    function MAX_TIMELOCK() external view returns (uint256);
    function NONCE_JUMP() external view returns (uint256);
    function invalidateNonces() external;
    function requiresOracle(uint256 workflowId) external view returns (bool);
    function transferFromForRun(address token, address from, address to, uint256 amount, uint256 gasLimit) external;
    function setMaxFailures(uint8 maxFailures) external;
    function setMaxGasPrice(uint64 maxGasPrice) external;
    function setPaused(bool paused) external;
    function setPremium(uint16 premiumBps) external returns (uint256);
    function transferOwnership(address newOwner) external;
    function withdraw(uint256 amount) external;
    function withdrawTo(address to, uint256 amount) external;
    function workflowCount() external view returns (uint256);
    function workflowCountOf(address owner) external view returns (uint256);
    function workflowsOf(address owner, uint256 offset, uint256 limit) external view returns (WorkflowView[] memory);
}
