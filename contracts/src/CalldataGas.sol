// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The exact intrinsic gas of this call's calldata (16 per non-zero byte, 4 per zero
/// byte), so fees and reimbursements charge what the transaction really cost.
library CalldataGas {
    function cost() internal pure returns (uint256 total) {
        assembly ("memory-safe") {
            let len := calldatasize()
            let nonzero := 0
            for { let i := 0 } lt(i, len) { i := add(i, 32) } {
                // Fold each byte to 0x01 if non-zero, then sum the bytes with one multiply.
                let x := calldataload(i)
                x := and(or(x, shr(4, x)), 0x0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f)
                x := and(or(x, shr(2, x)), 0x0303030303030303030303030303030303030303030303030303030303030303)
                x := and(or(x, shr(1, x)), 0x0101010101010101010101010101010101010101010101010101010101010101)
                nonzero := add(nonzero, shr(248, mul(x, 0x0101010101010101010101010101010101010101010101010101010101010101)))
            }
            total := add(mul(nonzero, 16), mul(sub(len, nonzero), 4))
        }
    }
}
