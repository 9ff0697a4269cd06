// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title OwnerProxy — the account one owner's contract-call actions come from.
/// @notice Each owner gets their own clone, so a called contract can trust `msg.sender` as
/// "this owner's automation" and no workflow can act with another user's authority or funds.
/// Only the Autometa core (running the owner's workflow) or the owner may make it call.
contract OwnerProxy {
    address public immutable core;
    address public owner;

    error NotAuthorized(address caller);
    error AlreadyInitialized();
    error SweepFailed();

    constructor(address core_) {
        core = core_;
    }

    function initialize(address owner_) external {
        if (msg.sender != core) revert NotAuthorized(msg.sender);
        if (owner != address(0)) revert AlreadyInitialized();
        owner = owner_;
    }

    /// @notice Call `target` with `data` and `msg.value`; bubbles up a revert.
    function forward(address target, bytes calldata data) external payable returns (bytes memory result) {
        if (msg.sender != core && (msg.sender != owner || owner == address(0))) revert NotAuthorized(msg.sender);
        bool ok;
        (ok, result) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 32), mload(result))
            }
        }
    }

    /// @notice The owner takes back coin a called contract sent to the proxy.
    function sweep(address payable to, uint256 amount) external {
        if (msg.sender != owner || owner == address(0)) revert NotAuthorized(msg.sender);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert SweepFailed();
    }

    receive() external payable {}
}
