"""The transaction sender: Autometa's relayer core.

`TransactionSender` signs and broadcasts transactions for one or more local keys on one chain:

* **Nonces** are assigned locally, one writer per key: an `asyncio.Lock` per (chain, sender)
  covers nonce assignment, signing, journaling and broadcast. The next nonce starts from the
  chain's `pending` count and the journal's in-flight entries; "nonce too low/high" and
  "replacement transaction underpriced" errors resync it from the chain, and a broadcast refused
  for any other reason gives its nonce back, so no gap is left. Fees and the block are read
  before the nonce is taken: between taking it and broadcasting there is no other RPC call, and
  a broadcast the node surely did not take (rate limited, no connection) gives the nonce back.
  **Several processes must not share a key**: the lock is per process. Give every worker its own.
* **Fees** come from `FeePolicy` (EIP-1559 under a cap, or legacy gasPrice). A broadcast refused
  because its max fee is below the block's base fee (priced from a base fee the caller read
  before a spike) is priced again from the node and sent again at once with the same nonce;
  when even the cap is below the base fee, `FeeCapBelowBaseFee` says so instead of a retry.
* **Stuck transactions** (not mined `replace_after_blocks` blocks after their last broadcast) are
  replaced with the same nonce and fees bumped by at least `fee_bump_percent`; whichever
  transaction of that nonce is mined wins and the others are journaled as replaced. A transaction
  the node no longer knows (dropped from the mempool) is rebroadcast once from its raw bytes, then
  replaced if it disappears again or the node refuses it.
* **The journal** (`TxJournal`) receives every signed transaction before it is broadcast; a
  restarted sender reloads the pending ones, follows them (`recover`, `wait`) and, with
  `dedupe=True`, returns the in-flight transaction instead of sending the same purpose twice.
* **Reverts** are decoded (`simulate` before sending, replay at the block after a failed
  receipt) into `TransactionReverted`.

Keys stay inside signers (`autometa.chain.signers`: a local key, a keystore, an AWS KMS key); the
sender only asks one to sign and never cares which kind it holds. A signature that cannot be
made (KMS unreachable past its retries, key disabled) gives the nonce back before anything is
journaled or broadcast, so it leaves no gap; a replacement that cannot be signed or journaled
(the store restarting) is tried again at the next look while the original stands. Logs carry
addresses, nonces, hashes, fees and purposes, never transaction parameters or keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import rlp
import structlog
from eth_account._utils.legacy_transactions import Transaction as LegacyTransaction
from eth_account.typed_transactions import TypedTransaction
from eth_typing import HexStr
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.exceptions import TransactionNotFound, Web3RPCError
from web3.types import RPCEndpoint

from autometa.chain.fees import GWEI, FeePolicy, Fees
from autometa.chain.heads import NewHeads
from autometa.chain.journal import (
    DROPPED,
    FAILED,
    MINED,
    PURPOSE_MAX,
    REVERTED,
    InMemoryJournal,
    JournalEntry,
    TxJournal,
)
from autometa.chain.nonces import KeyState
from autometa.chain.revert import (
    Abi,
    ErrorSpec,
    RevertReason,
    TransactionReverted,
    decode_revert,
    default_errors,
    error_table,
    revert_data_from_exception,
)
from autometa.chain.signers import Signer, SignerError, as_signer
from autometa.chain.txtypes import (
    NONCE_ERRORS,
    Attempt,
    BroadcastErrorKind,
    RawReceipt,
    SentTx,
    classify_broadcast_error,
)
from autometa.chain.web3 import RpcUnavailable

if TYPE_CHECKING:
    from autometa.config import Settings

__all__ = [
    "Attempt",
    "BroadcastError",
    "FeeCapBelowBaseFee",
    "NonceConsumed",
    "NotBroadcast",
    "RawReceipt",
    "SendError",
    "SenderConfig",
    "SigningFailed",
    "SentTx",
    "TransactionReverted",
    "TransactionSender",
]

log = structlog.get_logger("autometa.chain.sender")

_FEE_KEYS = ("gasPrice", "maxFeePerGas", "maxPriorityFeePerGas", "type")
_SIGNED_KEYS = ("to", "data", "value", "gas", "chainId", "accessList")


class SendError(Exception):
    """The sender could not get a transaction on chain."""


class BroadcastError(SendError):
    """The node refused a broadcast for a reason other than the nonce (the nonce was released)."""

    def __init__(self, message: str, kind: BroadcastErrorKind) -> None:
        super().__init__(message)
        self.kind = kind


class NotBroadcast(BroadcastError, ConnectionError):
    """The node could not be reached to take the transaction (rate limited past the retries, or no
    connection): nothing was sent and the nonce was given back. A ConnectionError: the API's 503."""

    def __init__(self, message: str) -> None:
        super().__init__(message, BroadcastErrorKind.UNREACHABLE)


class FeeCapBelowBaseFee(BroadcastError):
    """The block's base fee (or the legacy gas price) is above the most this sender may pay per
    gas (`MAX_FEE_PER_GAS_GWEI`): no transaction of it can be mined until the market falls or the
    cap is raised. Nothing was sent; the nonce was given back."""

    def __init__(self, message: str, base_fee_wei: int, cap_wei: int) -> None:
        super().__init__(message, BroadcastErrorKind.BELOW_BASE_FEE)
        self.base_fee_wei, self.cap_wei = base_fee_wei, cap_wei


class SigningFailed(SendError):
    """The signer could not sign (nothing was journaled or broadcast; the nonce was given back)."""


class NonceConsumed(SendError):
    """The nonce of a sent transaction was used by a transaction this sender does not know (sent
    from the same key elsewhere): none of ours was mined."""


@dataclass(frozen=True)
class SenderConfig:
    max_fee_per_gas_wei: int = 500 * GWEI
    priority_fee_wei: int | None = 1 * GWEI  # None: ask the node (eth_maxPriorityFeePerGas)
    replace_after_blocks: int = 3
    fee_bump_percent: int = 15
    confirmations: int = 0
    legacy: bool | None = None  # None: legacy exactly when blocks have no baseFee
    poll_interval: float = 1.0
    gas_multiplier: float = 1.3  # estimate × multiplier + headroom, when `gas` is not given
    gas_headroom: int = 20_000
    max_nonce_retries: int = 5
    # For this long after a (re)broadcast a look is the receipt alone: a node that took the
    # transaction keeps it for more than a few blocks, and the lost/stuck checks cost three more
    # requests per look (the executor's RPC budget). 0: every look checks.
    quiet_after_send_s: float = 0.0
    first_look_s: float = 0.0  # `wait` looks for the receipt only this long after it starts

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> SenderConfig:
        values: dict[str, Any] = {
            "max_fee_per_gas_wei": int(settings.MAX_FEE_PER_GAS_GWEI * GWEI),
            "priority_fee_wei": int(settings.PRIORITY_FEE_GWEI * GWEI),
            "replace_after_blocks": settings.TX_REPLACE_AFTER_BLOCKS,
            "fee_bump_percent": settings.TX_FEE_BUMP_PERCENT,
            "confirmations": settings.confirmation_blocks,
            # a transaction is mined at the next block at the soonest: look then, and again
            # every half block while it is not
            "first_look_s": 1.1 * settings.block_time_s,
            "poll_interval": 0.5 * settings.block_time_s,
            "quiet_after_send_s": 3 * settings.block_time_s,
        }
        values.update(overrides)
        return cls(**values)

    def fee_policy(self) -> FeePolicy:
        return FeePolicy(
            cap_wei=self.max_fee_per_gas_wei,
            priority_fee_wei=self.priority_fee_wei,
            legacy=self.legacy,
            bump_percent=self.fee_bump_percent,
        )


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _unsigned_from_raw(raw_tx: str) -> dict[str, Any]:
    """The fields to re-sign a replacement with, from a journaled signed transaction."""
    raw = bytes.fromhex(raw_tx[2:] if raw_tx.startswith("0x") else raw_tx)
    if raw and raw[0] < 0x7F:
        fields = dict(TypedTransaction.from_bytes(HexBytes(raw)).as_dict())
    else:
        fields = dict(rlp.decode(raw, LegacyTransaction).as_dict())
        v = int(fields["v"])
        if v >= 35:
            fields["chainId"] = (v - 35) // 2
    out = {k: fields[k] for k in _SIGNED_KEYS if k in fields}
    if isinstance(out.get("to"), bytes):
        out["to"] = to_checksum_address(out["to"]) if out["to"] else None
    if not out.get("to"):
        out.pop("to", None)
    if isinstance(out.get("data"), bytes):
        out["data"] = _hex(out["data"])
    if not out.get("accessList"):
        out.pop("accessList", None)
    return out


class TransactionSender:
    """Send transactions from `accounts` (signers, or eth_account LocalAccounts, which are wrapped
    in one) on the chain behind `w3`.

    journal: where signed transactions are persisted before broadcast (default: in memory only).
    config: fees, replacement and confirmation policy (`SenderConfig.from_settings(settings)`).
    abis: extra ABIs whose custom errors decode reverts (the Autometa ABI is always included).
    """

    def __init__(
        self,
        w3: AsyncWeb3[Any],
        accounts: Signer | Any | Sequence[Signer | Any],
        *,
        journal: TxJournal | None = None,
        config: SenderConfig | None = None,
        abis: Sequence[Abi] = (),
    ) -> None:
        given: list[Any] = list(accounts) if isinstance(accounts, list | tuple) else [accounts]
        accs = [as_signer(a) for a in given]
        if not accs:
            raise ValueError("TransactionSender needs at least one account")
        self.w3 = w3
        self._accounts: dict[str, Signer] = {to_checksum_address(a.address): a for a in accs}
        self.default_address = to_checksum_address(accs[0].address)
        self.journal: TxJournal = journal if journal is not None else InMemoryJournal()
        self.config = config or SenderConfig()
        self.fee_policy = self.config.fee_policy()
        self.errors: dict[bytes, ErrorSpec] = {**default_errors(), **error_table(*abis)}
        self._chain_id: int | None = None
        self._states: dict[tuple[int, str], KeyState] = {}

    def __repr__(self) -> str:
        return f"TransactionSender(addresses={list(self._accounts)}, config={self.config!r})"

    @property
    def addresses(self) -> list[str]:
        return list(self._accounts)

    # ------------------------------------------------------------------------------ basics

    async def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(await self.w3.eth.chain_id)
        return self._chain_id

    def _account_for(self, params: Mapping[str, Any]) -> Signer:
        sender = params.get("from")
        if sender is None:
            return self._accounts[self.default_address]
        try:
            return self._accounts[to_checksum_address(sender)]
        except KeyError:
            raise ValueError(f"this sender holds no key for {sender}") from None

    async def _state(self, address: str) -> KeyState:
        chain_id = await self.chain_id()
        key = (chain_id, address)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = KeyState(chain_id=chain_id, address=address)
        if state.next_nonce is None:
            async with state.lock:
                if state.next_nonce is None:
                    await self._initialise(state)
        return state

    def _logger(self, state: KeyState | SentTx) -> Any:
        if isinstance(state, SentTx):
            return log.bind(chain_id=state.chain_id, sender=state.sender, nonce=state.nonce, purpose=state.purpose)
        return log.bind(chain_id=state.chain_id, sender=state.address)

    async def _pending_count(self, address: str) -> int:
        return int(await self.w3.eth.get_transaction_count(to_checksum_address(address), "pending"))

    async def _latest_count(self, address: str) -> int:
        return int(await self.w3.eth.get_transaction_count(to_checksum_address(address), "latest"))

    # ------------------------------------------------------------------------ recovery

    async def _initialise(self, state: KeyState) -> None:
        """Next nonce from the chain and the journal; in-flight transactions from the journal."""
        entries = self.journal.pending(state.chain_id, state.address)
        block = int(await self.w3.eth.block_number)
        by_nonce: dict[int, list[JournalEntry]] = {}
        for entry in entries:
            by_nonce.setdefault(entry.nonce, []).append(entry)
        for nonce, group in sorted(by_nonce.items()):
            sent = SentTx(
                chain_id=state.chain_id,
                sender=state.address,
                nonce=nonce,
                purpose=group[0].purpose,
                gas_limit=group[-1].gas_limit,
                attempts=[
                    Attempt(
                        e.tx_hash,
                        e.raw_tx,
                        Fees(e.max_fee_per_gas, e.max_priority_fee_per_gas, e.gas_price),
                        block,
                    )
                    for e in group
                ],
                unsigned=_unsigned_from_raw(group[-1].raw_tx),
                last_action_block=block,
            )
            state.in_flight[nonce] = sent
        chain_pending = await self._pending_count(state.address)
        state.resync(chain_pending)
        self._logger(state).info(
            "sender.nonce_initialised",
            next_nonce=state.next_nonce,
            chain_pending=chain_pending,
            recovered=len(state.in_flight),
        )

    async def recover(self) -> list[SentTx]:
        """Load every key's journaled, unfinished transactions; check each once (settle the
        mined, rebroadcast the ones the node lost) and return those still in flight. Follow them
        with `wait`."""
        out: list[SentTx] = []
        for address in self._accounts:
            state = await self._state(address)
            for sent in sorted(state.in_flight.values(), key=lambda s: s.nonce):
                try:
                    async with sent.follow_lock:
                        await self._step(sent)
                except SendError as exc:
                    self._logger(sent).warning("sender.recover_failed", error=str(exc))
                if not sent.done:
                    out.append(sent)
        return out

    def in_flight(self, address: str | None = None) -> list[SentTx]:
        """Unfinished transactions this sender knows, by nonce."""
        out = [
            s
            for (_, addr), st in self._states.items()
            if address is None or addr == to_checksum_address(address)
            for s in st.in_flight.values()
            if not s.done
        ]
        return sorted(out, key=lambda s: (s.sender, s.nonce))

    # ------------------------------------------------------------------------ simulate

    def _call_params(self, params: Mapping[str, Any], account: Signer) -> dict[str, Any]:
        call = {k: v for k, v in params.items() if k not in ("nonce", *_FEE_KEYS)}
        call["from"] = account.address
        return call

    async def simulate(self, tx_params: Mapping[str, Any], block: int | str = "latest") -> int:
        """eth_call then eth_estimateGas; returns the gas estimate, raises `TransactionReverted`
        with the decoded reason if the transaction would revert."""
        account = self._account_for(tx_params)
        call = self._call_params(tx_params, account)
        try:
            await self.w3.eth.call(call, block)  # type: ignore[arg-type]
            estimate_params = {k: v for k, v in call.items() if k != "gas"}
            return int(await self.w3.eth.estimate_gas(estimate_params, block))  # type: ignore[arg-type]
        except Exception as exc:
            data = revert_data_from_exception(exc)
            if data is None:
                raise
            raise TransactionReverted(decode_revert(data, self.errors)) from None

    async def revert_reason(self, tx_hash: str, block_number: int | None = None) -> RevertReason:
        """Why a mined transaction reverted: its call replayed at its block."""
        tx = await self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        block = block_number if block_number is not None else int(tx["blockNumber"] or 0)
        call: dict[str, Any] = {"from": tx["from"], "data": tx["input"], "value": tx["value"], "gas": tx["gas"]}
        if tx.get("to"):
            call["to"] = tx["to"]
        last: Exception | None = None
        for at in (block, max(block - 1, 0)):
            try:
                await self.w3.eth.call(call, at)  # type: ignore[arg-type]
            except Exception as exc:
                data = revert_data_from_exception(exc)
                if data is not None:
                    return decode_revert(data, self.errors)
                last = exc
        message = f"reverted ({last})" if last else "reverted (the reason could not be reproduced by a replay)"
        return RevertReason("unknown", "", message=message)

    # ------------------------------------------------------------------------ send

    async def send(
        self,
        tx_params: Mapping[str, Any],
        purpose: str,
        *,
        dedupe: bool = True,
        fees: Fees | None = None,
        block: int | None = None,
    ) -> SentTx:
        """Assign a nonce, sign, journal and broadcast. Returns once the node accepted the
        transaction. `tx_params` must not carry a nonce; fees in it are ignored (the fee policy
        sets them); `gas` is estimated (with headroom) if missing, which raises
        `TransactionReverted` for a call that would revert.

        `purpose` (at most 64 characters; longer is cut) names the work in logs and the journal.
        With `dedupe`, an unfinished transaction of the same key and purpose (one recovered from
        the journal after a restart, say) is returned instead of sending a second one. `fees`,
        `block`: current fees and head number the caller already has (else read here)."""
        if "nonce" in tx_params:
            raise ValueError("the sender assigns nonces: remove `nonce` from tx_params")
        purpose = purpose[:PURPOSE_MAX]
        account = self._account_for(tx_params)
        address = to_checksum_address(account.address)
        state = await self._state(address)
        if dedupe and (existing := self._find_purpose(state, purpose)) is not None:
            self._logger(existing).info("sender.deduplicated", tx_hash=existing.tx_hash)
            return existing

        unsigned = {k: v for k, v in tx_params.items() if k not in ("from", "nonce", *_FEE_KEYS)}
        unsigned["chainId"] = state.chain_id
        if "gas" not in unsigned:
            estimate = await self.simulate(tx_params, "pending")
            unsigned["gas"] = int(estimate * self.config.gas_multiplier) + self.config.gas_headroom

        # Read before the nonce is taken (and outside the key's lock, which every send queues on).
        fees = fees if fees is not None else await self.fee_policy.current(self.w3)
        block = block if block is not None else int(await self.w3.eth.block_number)
        async with state.lock:
            if dedupe and (existing := self._find_purpose(state, purpose)) is not None:
                return existing
            return await self._send_locked(state, account, unsigned, purpose, fees, block)

    @staticmethod
    def _find_purpose(state: KeyState, purpose: str) -> SentTx | None:
        for sent in state.in_flight.values():
            if sent.purpose == purpose and not sent.done:
                return sent
        return None

    async def _send_locked(
        self, state: KeyState, account: Signer, unsigned: dict[str, Any], purpose: str, fees: Fees, block: int
    ) -> SentTx:
        logger = self._logger(state).bind(purpose=purpose)
        repriced: tuple[Fees, int] | None = None
        for attempt in range(self.config.max_nonce_retries):
            if repriced is not None:  # refused below the base fee: the fees just read
                (fees, block), repriced = repriced, None
            elif attempt > 0:  # a nonce error: the market may have moved too
                fees = await self.fee_policy.current(self.w3)
                block = int(await self.w3.eth.block_number)
            # Taken only now, with everything the broadcast needs known: a failed read must not
            # leave the nonce used locally and never broadcast (a hole every later transaction
            # waits behind in the node's queue).
            nonce = state.take()
            try:
                entry = await self._sign(account, state, unsigned, nonce, fees, purpose)
            except SignerError as exc:
                state.release(nonce)  # nothing signed, nothing sent: the nonce is free again
                logger.error("tx.sign_failed", nonce=nonce, signer=account.kind, error=str(exc))
                raise SigningFailed(f"{purpose}: could not sign: {exc}") from exc
            except Exception:
                state.release(nonce)
                raise
            try:
                # write-ahead: journaled before the node sees it; in a thread, so that a store's
                # commit (~10-30 ms on a busy machine) does not stop the event loop meanwhile
                await asyncio.to_thread(self.journal.add, entry)
            except Exception:
                state.release(nonce)  # never broadcast: the nonce is free again
                raise
            error = await self._broadcast(entry.raw_tx)
            # What is followed as in flight if the node has (or may have) the transaction.
            sent = SentTx(
                chain_id=state.chain_id,
                sender=state.address,
                nonce=nonce,
                purpose=purpose,
                gas_limit=int(unsigned["gas"]),
                attempts=[Attempt(entry.tx_hash, entry.raw_tx, fees, block)],
                unsigned=dict(unsigned),
                last_action_block=block,
            )
            if error is None or classify_broadcast_error(error) is BroadcastErrorKind.ALREADY_KNOWN:
                state.in_flight[nonce] = sent
                logger.info("tx.sent", nonce=nonce, tx_hash=entry.tx_hash, fees=str(fees))
                return sent
            if _not_taken(error):
                # Rate limited past the retries, or never connected: the node surely does not
                # have it. Give the nonce back (no gap) and say so: nothing was sent.
                self.journal.set_status(entry.tx_hash, FAILED)
                state.release(nonce)
                logger.warning("tx.broadcast_unreachable", nonce=nonce, error=str(error)[:200])
                raise NotBroadcast(f"{purpose}: the chain node did not take the transaction: {error}") from error
            if not isinstance(error, Web3RPCError):
                # Transport failure: the node may or may not have it. Keep it in flight (journaled);
                # the follower rebroadcasts it if the node does not know it. No gap, no double send.
                state.in_flight[nonce] = sent
                logger.warning("tx.broadcast_uncertain", nonce=nonce, tx_hash=entry.tx_hash, error=str(error)[:200])
                return sent
            kind = classify_broadcast_error(error)
            self.journal.set_status(entry.tx_hash, FAILED)
            if kind in NONCE_ERRORS:
                try:
                    chain_pending = await self._pending_count(state.address)
                except Exception:
                    state.release(nonce)  # refused, so unused by us: no gap while we cannot resync
                    raise
                at_least = nonce + 1 if kind is not BroadcastErrorKind.NONCE_TOO_HIGH else None
                new = state.resync(chain_pending, at_least=at_least)
                logger.warning(
                    "tx.nonce_resync", kind=kind.value, tried=nonce, next_nonce=new, chain_pending=chain_pending
                )
                continue
            state.release(nonce)  # refused: unused, and taken again by the next attempt (no gap)
            logger.warning("tx.broadcast_refused", nonce=nonce, kind=kind.value, error=_rpc_message(error))
            if kind is BroadcastErrorKind.BELOW_BASE_FEE:
                repriced = await self._repriced(fees, purpose, error, logger)
                continue
            raise BroadcastError(f"{purpose}: node refused the transaction: {_rpc_message(error)}", kind)
        raise SendError(f"{purpose}: not taken after {self.config.max_nonce_retries} attempts (nonce or fee refused)")

    async def _repriced(self, refused: Fees, purpose: str, error: BaseException, logger: Any) -> tuple[Fees, int]:
        """Fees and head read afresh after a refusal below the base fee, for an immediate resend:
        the fees were priced from a base fee read before a spike (the executor prices from the
        scheduler's block), and waiting for the follower's replacement or a job reclaim costs
        blocks or tens of seconds. Raises `FeeCapBelowBaseFee` when the market is above the cap,
        and `BroadcastError` when the fresh fees are no higher than the refused ones (the node's
        answers disagree: a resend would be refused the same way)."""
        fees, market = await self.fee_policy.quote(self.w3)
        cap = self.fee_policy.cap_wei
        if market > cap:
            logger.warning("tx.fee_cap_below_base_fee", base_fee=market, cap=cap, refused=str(refused))
            raise FeeCapBelowBaseFee(
                f"{purpose}: the block's base fee ({market / GWEI:.3f} gwei) is above the fee cap "
                f"({cap / GWEI:.3f} gwei, MAX_FEE_PER_GAS_GWEI)",
                market,
                cap,
            ) from error
        if fees.ceiling <= refused.ceiling:
            raise BroadcastError(
                f"{purpose}: node refused the transaction: {_rpc_message(error)}", BroadcastErrorKind.BELOW_BASE_FEE
            ) from error
        logger.info("tx.repriced", refused=str(refused), fees=str(fees), base_fee=market)
        return fees, int(await self.w3.eth.block_number)

    async def _sign(
        self,
        account: Signer,
        state: KeyState,
        unsigned: Mapping[str, Any],
        nonce: int,
        fees: Fees,
        purpose: str,
    ) -> JournalEntry:
        tx = {**unsigned, "nonce": nonce, **fees.as_params()}
        if not fees.is_legacy:
            tx["type"] = 2
        if account.remote:  # a KMS round trip: keep the event loop free meanwhile
            signed = await asyncio.to_thread(account.sign_transaction, tx)
        else:
            signed = account.sign_transaction(tx)
        return JournalEntry(
            chain_id=state.chain_id,
            sender=state.address,
            nonce=nonce,
            tx_hash=_hex(signed.hash),
            raw_tx=_hex(signed.raw_transaction),
            tx_type=fees.tx_type,
            gas_limit=int(unsigned["gas"]),
            purpose=purpose,
            max_fee_per_gas=fees.max_fee_per_gas,
            max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
            gas_price=fees.gas_price,
        )

    async def _broadcast(self, raw_tx: str) -> Exception | None:
        try:
            await self.w3.eth.send_raw_transaction(HexStr(raw_tx))
        except Exception as exc:  # classified by the caller
            return exc
        return None

    # ------------------------------------------------------------------------ follow

    async def wait(
        self,
        sent: SentTx,
        confirmations: int | None = None,
        *,
        timeout: float | None = None,
        raise_on_revert: bool = True,
        heads: NewHeads | None = None,
        raw: bool = False,
    ) -> Any:
        """Follow `sent` until one of its attempts is mined `confirmations` blocks deep (default
        from the config), replacing and rebroadcasting as needed. Returns the receipt; raises
        `TransactionReverted` (decoded reason) for a failed receipt unless `raise_on_revert` is
        false, `NonceConsumed` if an unknown transaction took the nonce, `TimeoutError` after
        `timeout` seconds.

        `heads`: a new-head subscription; while it is up, each look comes right after a new block
        instead of on the timed schedule (`first_look_s`, then every `poll_interval`). `raw`: the
        receipt as the node sent it (`RawReceipt`: logs undecoded, hex strings) instead of web3's
        formatted one, which costs a keccak per log address and a formatter pass per field (the
        executor decodes its few events itself)."""
        depth = self.config.confirmations if confirmations is None else confirmations
        deadline = None if timeout is None else time.monotonic() + timeout
        if sent.receipt is None and self.config.first_look_s > 0:
            # not mined before the next block anyway
            # the first head after the one we sent at (the block the caller gave may be older)
            after = max(sent.last_action_block, heads.head or 0) if heads is not None else 0
            if heads is None or not await heads.beyond(after, 2 * self.config.first_look_s):
                await asyncio.sleep(self.config.first_look_s)
        while True:
            if sent.receipt is not None:
                receipt = sent.receipt
            else:
                async with sent.follow_lock:
                    receipt = await self._step(sent, raw, heads.head if heads is not None else None)
                if receipt is not None and depth > 0:
                    receipt = await self._confirmed(receipt, depth, deadline, raw)
                if receipt is not None:
                    async with sent.follow_lock:
                        await self._settle(sent, receipt)
            if receipt is not None:
                if raw and not isinstance(receipt, RawReceipt):  # followed by a formatted caller first
                    receipt = await self._receipt(_hex(receipt["transactionHash"]), raw=True) or receipt
                if int(receipt["status"]) != 1 and raise_on_revert:
                    reason = await self.revert_reason(sent.tx_hash, int(receipt["blockNumber"]))
                    raise TransactionReverted(
                        reason,
                        tx_hash=sent.tx_hash,
                        block_number=int(receipt["blockNumber"]),
                        purpose=sent.purpose,
                        receipt=receipt,
                    )
                return receipt
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{sent.purpose}: nonce {sent.nonce} not mined within {timeout} s")
            if heads is None or not await heads.beyond(heads.head, 4 * self.config.poll_interval):
                await asyncio.sleep(self.config.poll_interval)

    async def send_and_wait(
        self,
        tx_params: Mapping[str, Any],
        purpose: str,
        confirmations: int | None = None,
        *,
        timeout: float | None = None,
        raise_on_revert: bool = True,
    ) -> Any:
        sent = await self.send(tx_params, purpose)
        return await self.wait(sent, confirmations, timeout=timeout, raise_on_revert=raise_on_revert)

    async def _confirmed(self, receipt: Any, depth: int, deadline: float | None, raw: bool = False) -> Any:
        """Wait for `depth` blocks on top of the receipt's block; None if it was reorged out."""
        target = int(receipt["blockNumber"]) + depth
        while int(await self.w3.eth.block_number) < target:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"transaction {_hex(receipt['transactionHash'])} not confirmed in time")
            await asyncio.sleep(self.config.poll_interval)
        fresh = await self._receipt(_hex(receipt["transactionHash"]), raw)
        if fresh is None or fresh["blockHash"] != receipt["blockHash"]:
            log.warning("tx.reorged", tx_hash=_hex(receipt["transactionHash"]))
            return None
        return fresh

    async def _receipt(self, tx_hash: str, raw: bool = False) -> Any:
        if raw:
            reply = await self.w3.provider.make_request(RPCEndpoint("eth_getTransactionReceipt"), [tx_hash])
            if reply.get("error"):
                raise Web3RPCError(str(reply["error"]), rpc_response=reply)
            return RawReceipt.from_json(reply["result"]) if reply.get("result") else None
        try:
            return await self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    async def _known_hash(self, tx_hash: str) -> Any:
        try:
            return await self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    async def _find_receipt(self, sent: SentTx, raw: bool = False) -> Any:
        for attempt in reversed(sent.attempts):
            receipt = await self._receipt(attempt.tx_hash, raw)
            if receipt is not None:
                return receipt
        return None

    async def _settle(self, sent: SentTx, receipt: Any) -> None:
        """Journal the mined attempt (and the replaced ones) and forget `sent` as in flight.
        The journal is written in a thread: thirty batches mined in one block were thirty
        commits in a row on the event loop, and their receipts were seen over 1.5 s."""
        if sent.receipt is not None:
            return
        winner = _hex(receipt["transactionHash"])
        block = int(receipt["blockNumber"])
        status = MINED if int(receipt["status"]) == 1 else REVERTED
        replaced = [a.tx_hash for a in sent.attempts if a.tx_hash.lower() != winner.lower()]

        def journal() -> None:
            self.journal.set_status(winner, status, block)
            for tx_hash in replaced:
                self.journal.mark_replaced(tx_hash, winner)

        await asyncio.to_thread(journal)
        sent.mined_hash, sent.block_number, sent.status, sent.receipt = winner, block, status, receipt
        state = self._states.get((sent.chain_id, sent.sender))
        if state is not None and state.in_flight.get(sent.nonce) is sent:
            del state.in_flight[sent.nonce]
        self._logger(sent).info(
            "tx.mined",
            tx_hash=winner,
            block=block,
            status=status,
            replacements=sent.replacements,
            gas_used=int(receipt["gasUsed"]),
        )

    async def _step(self, sent: SentTx, raw: bool = False, head: int | None = None) -> Any:
        """One look at an unfinished transaction: its receipt if one attempt is mined, else
        rebroadcast or replace it if it is lost or stuck, and return None. `head`: the newest
        block a head subscription has seen, if one is up."""
        if sent.receipt is not None:
            return sent.receipt
        if sent.status in (FAILED, DROPPED):
            raise NonceConsumed(f"{sent.purpose}: nonce {sent.nonce} was used by another transaction")
        receipt = await self._find_receipt(sent, raw)
        if receipt is not None:
            return receipt
        if time.monotonic() - sent.last_action_at < self.config.quiet_after_send_s:
            # Too early to call it stuck, but a block has been mined without it: if the node has
            # lost it (a mempool eviction; anvil drops one now and then under a burst), send the
            # same bytes again now rather than after the quiet time (3 blocks later). A node that
            # still has it costs one lookup; a lagging one answers "already known".
            if head is not None and head > sent.last_action_block and sent.rebroadcasts == 0:
                if not await self._known(sent):
                    await self._rebroadcast(sent, head)
            return None
        logger = self._logger(sent)
        if await self._latest_count(sent.sender) > sent.nonce:
            receipt = await self._find_receipt(sent, raw)  # mined between the two looks?
            if receipt is not None:
                return receipt
            sent.consumed_strikes += 1
            if sent.consumed_strikes >= 3:
                for attempt in sent.attempts:
                    self.journal.set_status(attempt.tx_hash, DROPPED)
                sent.status = DROPPED
                state = self._states.get((sent.chain_id, sent.sender))
                if state is not None and state.in_flight.get(sent.nonce) is sent:
                    del state.in_flight[sent.nonce]
                logger.error("tx.nonce_consumed", hashes=sent.hashes)
                raise NonceConsumed(f"{sent.purpose}: nonce {sent.nonce} was used by another transaction")
            return None
        block = int(await self.w3.eth.block_number)
        if not await self._known(sent):
            if sent.rebroadcasts == 0 and await self._rebroadcast(sent, block):
                return None
            await self._replace(sent, block, "dropped")
        elif block - sent.last_action_block >= self.config.replace_after_blocks:
            if await self._fill_gaps(sent, block):
                return None
            await self._replace(sent, block, "stuck")
        return None

    async def _known(self, sent: SentTx) -> bool:
        """Whether the node knows any attempt of `sent` (in its mempool or mined)."""
        for attempt in reversed(sent.attempts):
            if await self._known_hash(attempt.tx_hash) is not None:
                return True
        return False

    async def _rebroadcast(self, sent: SentTx, block: int) -> bool:
        """Send the newest attempt's bytes again (once per transaction). True if that settles it
        for now (accepted, already known, or its nonce used: the next look tells); False if the
        node refused it otherwise, and it must be replaced."""
        sent.rebroadcasts += 1
        error = await self._broadcast(sent.attempts[-1].raw_tx)
        kind = None if error is None else classify_broadcast_error(error)
        self._logger(sent).warning(
            "tx.rebroadcast",
            tx_hash=sent.attempts[-1].tx_hash,
            refused=None if error is None else _rpc_message(error),
        )
        if kind is None or kind is BroadcastErrorKind.ALREADY_KNOWN:
            sent.last_action_block, sent.last_action_at = block, time.monotonic()
            return True
        return kind is BroadcastErrorKind.NONCE_TOO_LOW  # mined or consumed: the next look settles it

    async def _fill_gaps(self, sent: SentTx, block: int) -> bool:
        """Fill the nonces below `sent` that no transaction holds, so that it can be mined; True
        if there were any. A hole appears when a reorg drops a mined transaction of ours (its
        SentTx is settled, so nobody sends that nonce again) or the node forgets one: the node
        then holds everything above it as queued, forever, and bumping fees cannot help. Each
        hole gets a zero-value transfer to ourselves (not journaled: it carries no work, and a
        lost filler leaves the hole to be found and filled again)."""
        state = await self._state(sent.sender)
        async with state.lock:
            chain_pending = await self._pending_count(sent.sender)
            holes = [n for n in range(chain_pending, sent.nonce) if n not in state.in_flight]
            if not holes:
                return False
            account = self._accounts[sent.sender]
            fees = await self.fee_policy.current(self.w3)
            sent.last_action_block, sent.last_action_at = block, time.monotonic()
            logger = self._logger(sent)
            for nonce in holes:
                filler = {"to": sent.sender, "value": 0, "gas": 21_000, "data": "0x", "chainId": state.chain_id}
                try:
                    entry = await self._sign(account, state, filler, nonce, fees, "nonce-gap")
                except SignerError as exc:  # the hole stays; it is found and filled at the next look
                    logger.warning("tx.nonce_gap_unsigned", hole=nonce, error=str(exc))
                    return True
                error = await self._broadcast(entry.raw_tx)
                logger.warning(
                    "tx.nonce_gap_filled",
                    hole=nonce,
                    tx_hash=entry.tx_hash,
                    refused=None if error is None else _rpc_message(error),
                )
            return True

    async def _replace(self, sent: SentTx, block: int, why: str) -> None:
        """Sign the same nonce again with bumped fees and broadcast it."""
        account = self._accounts[sent.sender]
        state = await self._state(sent.sender)
        logger = self._logger(sent)
        async with state.lock:
            market = await self.fee_policy.current(self.w3)
            previous = sent.fee_floor or sent.fees
            fees = self.fee_policy.bump(previous, market)
            sent.last_action_block, sent.last_action_at = block, time.monotonic()
            if fees is None:
                logger.warning("tx.replace_at_cap", why=why, fees=str(previous), cap=self.fee_policy.cap_wei)
                return
            try:
                entry = await self._sign(account, state, sent.unsigned, sent.nonce, fees, sent.purpose)
            except SignerError as exc:  # the current attempt stands; replaced at a later look
                logger.warning("tx.replace_unsigned", why=why, error=str(exc))
                return
            try:
                await asyncio.to_thread(self.journal.add, entry)  # write-ahead, as in `send`
            except Exception as exc:
                # The store is down (PostgreSQL restarting): not broadcast, so the current attempt
                # stands and the next look replaces it. Raised, it ended the follow and left this
                # nonce in flight with nobody to follow it — its transaction gone from the node
                # (a base-fee spike evicted it), every later one of the key queued behind it.
                logger.warning("tx.replace_unjournaled", why=why, error=str(exc)[:300])
                return
            error = await self._broadcast(entry.raw_tx)
            kind = None if error is None else classify_broadcast_error(error)
            if kind is None or kind is BroadcastErrorKind.ALREADY_KNOWN:
                sent.attempts.append(Attempt(entry.tx_hash, entry.raw_tx, fees, block))
                sent.fee_floor = None
                logger.info(
                    "tx.replaced",
                    why=why,
                    replaces=sent.attempts[-2].tx_hash,
                    tx_hash=entry.tx_hash,
                    fees=str(fees),
                    previous_fees=str(previous),
                )
                return
            if not isinstance(error, Web3RPCError):
                # Unknown outcome: keep it as an attempt so its receipt is looked for too.
                sent.attempts.append(Attempt(entry.tx_hash, entry.raw_tx, fees, block))
                logger.warning("tx.replace_uncertain", tx_hash=entry.tx_hash, error=str(error))
                return
            with contextlib.suppress(Exception):  # refused either way; a pending entry is only rebroadcast
                await asyncio.to_thread(self.journal.set_status, entry.tx_hash, FAILED)
            if kind in (
                BroadcastErrorKind.REPLACEMENT_UNDERPRICED,
                BroadcastErrorKind.FEE_TOO_LOW,
                BroadcastErrorKind.BELOW_BASE_FEE,
            ):
                sent.fee_floor = fees  # bump from here next time
            logger.warning("tx.replace_refused", why=why, kind=kind.value if kind else None, error=_rpc_message(error))


def _not_taken(error: BaseException) -> bool:
    """A broadcast error after which the node surely does not have the transaction."""
    if isinstance(error, RpcUnavailable):  # the retrying provider gives up on a broadcast only then
        return True
    if isinstance(error, aiohttp.ClientResponseError):
        return error.status == 429
    return isinstance(error, aiohttp.ClientConnectorError)


def _rpc_message(error: BaseException) -> str:
    response = getattr(error, "rpc_response", None)
    if isinstance(response, Mapping):
        err = response.get("error")
        if isinstance(err, Mapping) and err.get("message"):
            return str(err["message"])
    return str(error)
