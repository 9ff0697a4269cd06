// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Cron, Spec, Field, FieldType} from "./vendor/Cron.sol";
import "./AutometaTypes.sol";

/// @title TriggerSpecs — creation-time checks of the STATE, CRON and LOG trigger kinds.
/// @notice Stateless; the Autometa constructor deploys it with `new` and calls it only when a
/// workflow of these kinds is created. Why a second contract: Autometa's runtime is within a few
/// bytes of EIP-170's 24,576, and parsing a cron string (Chainlink's `Cron`) alone is several
/// kilobytes. Its runtime does not count against Autometa's (only Autometa's initcode, ≤ 49,152,
/// carries it). The run-time checks stay in Autometa (ActionExecutor._kindHolds): a call to this
/// contract on every run would cost a cold account access (2,600 gas) for nothing.
///
/// `triggerData` per kind (packed, so the executor's calldata and the stored copy stay short):
/// - STATE: target (20) | word (1) | readAs (1) | comparator (1) | viewGas (4) | threshold (32) | calldata
///          readAs: READ_* ; comparator: CMP_* ; the view is `target.staticcall{gas: viewGas}(calldata)`,
///          its return word #word read as readAs and compared `value <comparator> threshold`.
/// - CRON:  the 5-field cron string (UTC), fields separated by single spaces, as Chainlink's `Cron`
///          parses it (`*`, `n`, `a-b`, `*/n`, `a,b,…`); stored on-chain as 134-bit minute/hour/day/
///          month/weekday bitmaps (CRON_* offsets) plus the creation time.
/// - LOG:   emitter (20) | topic0 (32) | mask (1: bit i = topic i+1 is filtered) | the filtered topics (32 each)
///          The contract cannot read logs: the filter is what the executor must match, attested per run.
contract TriggerSpecs is IAutometaErrors {
    uint256 public constant STATE_HEAD = 59; // bytes before a STATE trigger's calldata
    uint256 public constant MAX_VIEW_CALLDATA = 4096;
    uint256 public constant MIN_VIEW_GAS = 10_000;
    uint256 public constant MAX_VIEW_GAS = 1_000_000;
    uint256 public constant MAX_WORD = 63;
    uint256 public constant MAX_CRON_LENGTH = 200;

    /// @notice Check a kind's triggerData; returns the word Autometa stores for its runs: STATE the
    /// data's keccak256 (the executor supplies the data, the run checks it against this); CRON the
    /// bitmaps with the creation time at CRON_CREATED; LOG 0 (the cursor of the next acceptable log).
    function check(uint8 kind, bytes calldata data) external view returns (bytes32) {
        if (kind == TRIGGER_STATE) {
            _checkState(data);
            return keccak256(data);
        }
        if (kind == TRIGGER_CRON) {
            if (data.length == 0 || data.length > MAX_CRON_LENGTH) revert InvalidSpec("triggerData");
            // Chainlink's parser reads any character as a digit ("a" = 49): only cron's own pass
            for (uint256 i; i < data.length; ++i) {
                bytes1 ch = data[i];
                if ((ch < "0" || ch > "9") && ch != " " && ch != "*" && ch != "/" && ch != "," && ch != "-") {
                    revert InvalidSpec("triggerData");
                }
            }
            try this.cronBits(string(data)) returns (uint256 bits) {
                return bytes32(bits | (block.timestamp << CRON_CREATED));
            } catch {
                revert InvalidSpec("triggerData");
            }
        }
        if (kind == TRIGGER_LOG) {
            _checkLog(data);
            return 0;
        }
        revert InvalidSpec("triggerKind");
    }

    function _checkState(bytes calldata d) private view {
        if (d.length < STATE_HEAD || d.length - STATE_HEAD > MAX_VIEW_CALLDATA) revert InvalidSpec("triggerData");
        address target = address(bytes20(d[0:20]));
        uint256 word = uint8(d[20]);
        uint256 readAs = uint8(d[21]);
        uint256 cmp = uint8(d[22]);
        uint256 viewGas = uint32(bytes4(d[23:27]));
        uint256 threshold = uint256(bytes32(d[27:59]));
        if (target.code.length == 0 || target == msg.sender) revert InvalidSpec("triggerData.target");
        if (word > MAX_WORD) revert InvalidSpec("triggerData.word");
        if (readAs > READ_ADDRESS) revert InvalidSpec("triggerData.readAs");
        if (cmp > CMP_NE || (readAs >= READ_BOOL && cmp < CMP_EQ)) revert InvalidSpec("triggerData.comparator");
        if (viewGas < MIN_VIEW_GAS || viewGas > MAX_VIEW_GAS) revert InvalidSpec("triggerData.viewGas");
        if ((readAs == READ_BOOL && threshold > 1) || (readAs == READ_ADDRESS && threshold >> 160 != 0)) {
            revert InvalidSpec("triggerData.threshold");
        }
    }

    function _checkLog(bytes calldata d) private pure {
        if (d.length < 53) revert InvalidSpec("triggerData");
        uint256 mask = uint8(d[52]);
        uint256 filtered = (mask & 1) + ((mask >> 1) & 1) + ((mask >> 2) & 1);
        if (mask > 7 || d.length != 53 + 32 * filtered) revert InvalidSpec("triggerData");
        if (bytes20(d[0:20]) == bytes20(0)) revert InvalidSpec("triggerData.emitter");
        if (bytes32(d[20:52]) == bytes32(0)) revert InvalidSpec("triggerData.topic0");
    }

    // ------------------------------------------------------------------ cron

    /// @notice A cron string's bitmaps, as Chainlink's `Cron.toSpec` parses and validates it
    /// (reverts on what it refuses): minute bits 0-59, hour 60-83, day 84-114 (bit 84 = day 1),
    /// month 115-126 (bit 115 = January), weekday 127-133 (bit 127 = Sunday).
    function cronBits(string calldata cron) external pure returns (uint256 bits) {
        Spec memory s = Cron.toSpec(cron);
        bits = _bits(s.minute, 0, 59, CRON_MINUTE) | _bits(s.hour, 0, 23, CRON_HOUR) | _bits(s.day, 1, 31, CRON_DAY)
            | _bits(s.month, 1, 12, CRON_MONTH) | _bits(s.dayOfWeek, 0, 6, CRON_WEEKDAY);
    }

    /// @notice Chainlink's own next tick of `cron` from this block's time (tests compare the
    /// off-chain scheduler's next-due with it).
    function cronNextTick(string calldata cron) external view returns (uint256) {
        return Cron.nextTick(Cron.toSpec(cron));
    }

    /// @notice Chainlink's own last tick of `cron` at or before this block's time.
    function cronLastTick(string calldata cron) external view returns (uint256) {
        return Cron.lastTick(Cron.toSpec(cron));
    }

    /// Bit (offset + v - min) set for every v in min..max the field matches — Chainlink's
    /// `Cron.matches(Field, value)` rule (private there), so the run-time check is a bit test.
    function _bits(Field memory f, uint256 min, uint256 max, uint256 offset) private pure returns (uint256 bits) {
        for (uint256 v = min; v <= max; ++v) {
            bool m;
            FieldType t = f.fieldType;
            if (t == FieldType.WILD) {
                m = true;
            } else if (t == FieldType.INTERVAL) {
                m = v % f.interval == 0;
            } else if (t == FieldType.EXACT) {
                m = v == f.singleValue;
            } else if (t == FieldType.RANGE) {
                m = v >= f.rangeStart && v <= f.rangeEnd;
            } else {
                for (uint256 i; i < f.listLength; ++i) {
                    if (v == f.list[i]) m = true;
                }
            }
            if (m) bits |= 1 << (offset + v - min);
        }
    }
}
