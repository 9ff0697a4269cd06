// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IAutometaEvents, IAutometaErrors} from "./AutometaTypes.sol";

/// @title FeeEscrow — users' native-coin balances that pay for their workflows.
/// @notice Anyone deposits for anyone; only the owner of a balance withdraws it. Only the
/// executor and registry logic of this same contract debit a balance, and only for a run of
/// the owner's own workflow (amount + a fee capped by the owner) or a relayer reimbursement
/// the owner signed. Executor fees and relayer reimbursements are credited to the payee's
/// own balance, so the solvency invariant is simply: this contract holds ≥ Σ balances.
abstract contract FeeEscrow is IAutometaEvents, IAutometaErrors, ReentrancyGuardTransient {
    /// One slot per address: the hot path reads balance, gas-price cap and executor flag together.
    struct Account {
        uint128 balance;
        uint64 maxGasPrice; // the owner's cap on the gas price a fee is computed with (0 = no cap)
        bool isExecutor; // allow-listed to execute runs (set by the admin)
    }

    mapping(address => Account) internal _accounts;

    /// @notice Deposit `msg.value` into the sender's balance.
    function deposit() external payable nonReentrant {
        _credit(msg.sender, msg.value);
        emit Deposited(msg.sender, msg.sender, msg.value);
    }

    /// @notice Deposit `msg.value` into `user`'s balance.
    function depositFor(address user) external payable nonReentrant {
        if (user == address(0)) revert TransferFailed(user, msg.value);
        _credit(user, msg.value);
        emit Deposited(user, msg.sender, msg.value);
    }

    /// @notice Withdraw `amount` of the sender's balance to the sender, at any time.
    function withdraw(uint256 amount) external nonReentrant {
        _withdraw(msg.sender, payable(msg.sender), amount);
    }

    /// @notice Withdraw `amount` of the sender's balance to `to`.
    function withdrawTo(address payable to, uint256 amount) external nonReentrant {
        if (to == address(0)) revert TransferFailed(to, amount);
        _withdraw(msg.sender, to, amount);
    }

    /// @notice Cap the gas price any fee of the sender's workflows is computed with (0 = no cap).
    function setMaxGasPrice(uint64 maxGasPrice) external nonReentrant {
        _accounts[msg.sender].maxGasPrice = maxGasPrice;
        emit MaxGasPriceSet(msg.sender, maxGasPrice);
    }

    function balanceOf(address user) external view returns (uint256) {
        return _accounts[user].balance;
    }

    function accountOf(address user) external view returns (uint256 balance, uint256 maxGasPrice, bool isExecutor) {
        Account storage a = _accounts[user];
        return (a.balance, a.maxGasPrice, a.isExecutor);
    }

    /// @notice Plain transfers are deposits for the sender.
    receive() external payable nonReentrant {
        _credit(msg.sender, msg.value);
        emit Deposited(msg.sender, msg.sender, msg.value);
    }

    function _withdraw(address user, address payable to, uint256 amount) private {
        Account storage a = _accounts[user];
        uint256 balance = a.balance;
        if (amount == 0 || amount > balance) revert InsufficientEscrow(user, balance, amount);
        a.balance = uint128(balance - amount);
        emit Withdrawn(user, to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }

    function _credit(address user, uint256 amount) internal {
        Account storage a = _accounts[user];
        uint256 balance = uint256(a.balance) + amount;
        if (balance > type(uint128).max) revert AmountTooLarge(amount);
        a.balance = uint128(balance);
    }
}
