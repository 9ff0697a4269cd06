// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// Contracts the local dev chain deploys beside Autometa: a Chainlink mock price feed per
// supported asset, and a mintable ERC-20 for trying token actions.
import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/tests/MockV3Aggregator.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

contract DevToken is ERC20 {
    constructor(string memory name_, string memory symbol_) ERC20(name_, symbol_) {}

    /// @notice Anyone may mint on the dev chain: it is test money.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
