// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ActionExecutor} from "./ActionExecutor.sol";

/// @title Autometa — the deployed contract: WorkflowRegistry + ActionExecutor + FeeEscrow.
/// @notice The three modules share one storage so that a run touches the fewest cold slots and
/// makes no calls between our own contracts (see DEVELOPERS.md, "One contract, three modules").
/// The seed's REGISTRY_ADDRESS, ACTIONEXECUTOR_ADDRESS and FEEESCROW_ADDRESS all name it.
contract Autometa is ActionExecutor {
    /// @param timelockDelay seconds an admin change that could cost owners waits before it applies
    /// (MIN_TIMELOCK..MAX_TIMELOCK); changes made while no workflow exists apply at once.
    /// @param chainModule the IChainModule pricing this chain's L1 data fee (NoL1FeeModule on L1s).
    constructor(address admin, uint256 timelockDelay, address chainModule)
        ActionExecutor(admin, timelockDelay, chainModule)
    {}
}
