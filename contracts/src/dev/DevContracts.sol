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

/// Makes several calls in one transaction (a batching contract, as an executor may use one):
/// bench/fee_integrity.py allow-lists it to show the intrinsic gas is charged once per transaction.
contract DevMulticall {
    function run(address target, bytes[] calldata calls) external {
        for (uint256 i; i < calls.length; ++i) {
            (bool ok, bytes memory ret) = target.call(calls[i]);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
        }
    }
}

/// A call target whose gas use changes after a simulation: it burns all the gas it is given while
/// armed. bench/fee_integrity.py uses it for the "one owner reverts the batch" attack.
contract DevGasBurner {
    bool public armed;
    uint256 public hits;

    function arm(bool on) external {
        armed = on;
    }

    function act(bytes calldata) external {
        hits += 1;
        while (armed) {
            hits += 1;
        }
    }
}
