"""The relayer: turns a user's signed EIP-712 intent into a transaction paid from the relayer's
key and reimbursed from the user's escrow.

Every check that can refuse an intent runs before anything is sent, cheapest first: the body,
the signature recovered off-chain, the nonce, the owner's escrow against the fee they signed,
then a simulation with a real (non-zero) gas price — `eth_estimateGas` at price 0 skips the
reimbursement's storage writes and would under-estimate. So a throwaway key with an empty escrow
costs the relayer an RPC call, never gas.

Once a transaction is broadcast the request is never answered as failed for a reason other than
the contract's own revert: the relayer follows it in a background task (replacing it if stuck)
and the request waits up to `wait_timeout_s` for the receipt; without one (not mined yet, or the
node not answering) it answers 202 with a `RelayedTxOut`: the hash and the status URL to poll.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from eth_account import Account
from eth_account.messages import encode_typed_data
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD

from autometa.api.chain import ChainGateway, Fresh
from autometa.api.errors import ApiError, dependency_failure, invalid
from autometa.api.metrics import RELAYER_LATENCY, RELAYER_TXS
from autometa.api.schemas import (
    PreparedIntent,
    RelayedTxOut,
    SignedIntent,
    StatusChangedOut,
    WorkflowCreateBody,
    WorkflowCreatedOut,
)
from autometa.chain.revert import TransactionReverted, decode_revert, revert_data_from_exception
from autometa.chain.sender import NonceConsumed, SentTx, TransactionSender
from autometa.chain.sentences import insufficient_escrow, invalid_transition
from autometa.domain.eip712 import create_typed_data, status_typed_data
from autometa.domain.kinds import Status, StatusOp
from autometa.domain.workflow import WorkflowSpec, unsupported_token

log = structlog.get_logger("autometa.api.relayer")

PREPARE_HINT = (
    "a signature is required: POST the same body to {prepare}, sign the returned typed_data with "
    "eth_signTypedData_v4, then POST here again with signature, nonce, deadline and max_relayer_fee_wei"
)
# Gas the relayer expects a relayed call to use, for the fee it asks before a signature exists
# (the real cost is measured on-chain and reimbursed; the ask is only the cap the owner signs).
CREATE_GAS_GUESS = 350_000
STATUS_GAS_GUESS = 90_000
CALLDATA_GAS_PER_BYTE = 16
# Which statuses each operation may start from (the contract's transitions).
ALLOWED_FROM = {
    StatusOp.PAUSE: {Status.ACTIVE},
    StatusOp.RESUME: {Status.PAUSED},
    StatusOp.CANCEL: {Status.ACTIVE, Status.PAUSED},
}
STATUS_URL = "/api/workflow/tx/{tx_hash}"
FEES_MAX_AGE_S = 1.0  # the fee cap signed is 2 × base fee + tip: a second-old base fee is fine
R = TypeVar("R")


@dataclass(frozen=True)
class RelayerConfig:
    max_fee_wei: int
    supported_assets: tuple[str, ...]
    deadline_s: int = 3600  # how long a prepared intent stays signable
    max_deadline_s: int = 7 * 24 * 3600  # the furthest deadline the relayer accepts
    fee_headroom: float = 1.5  # on the guessed cost, for the fee asked
    gas_multiplier: float = 1.3
    gas_headroom: int = 20_000
    wait_timeout_s: float = 30.0  # a request waits this long for its receipt, then answers 202
    follow_timeout_s: float = 1800.0  # the background follower (replacing a stuck transaction) gives up after


class Relayer:
    def __init__(self, chain: ChainGateway, sender: TransactionSender, config: RelayerConfig) -> None:
        self.chain, self.sender, self.config = chain, sender, config
        self.address = sender.default_address
        # One owner's intents are checked and sent one at a time (see `_owner_lock`).
        self._owner_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # Broadcast transactions followed to their receipt, by first hash (joined intents share one).
        self._followers: dict[str, asyncio.Task[Any]] = {}
        self._resuming: asyncio.Task[None] | None = None
        # Market fees, ≤ FEES_MAX_AGE_S old, one read for a burst of requests.
        self._fees = Fresh(lambda: self.sender.fee_policy.current(self.chain.w3))

    def _owner_lock(self, owner: str) -> asyncio.Lock:
        """Held from the nonce check to the broadcast of one owner's intent: a second intent raced
        against it then sees the nonce used (409, nothing sent) or joins the very same transaction
        in flight — never a doomed duplicate the relayer pays gas for."""
        lock = self._owner_locks.get(owner)
        if lock is None:
            lock = self._owner_locks[owner] = asyncio.Lock()
        return lock

    # ------------------------------------------------------------------ prepare

    async def prepare_create(self, body: WorkflowCreateBody) -> PreparedIntent:
        info = await self.chain.info()
        _, now = await self.chain.head()
        spec = self._check_spec(body, now)
        owner = body.user_address
        nonce = await self.chain.nonce_of(owner)
        calldata_bytes = 600 + len(spec.to_abi()[11])
        fee = await self._ask_fee(CREATE_GAS_GUESS + CALLDATA_GAS_PER_BYTE * calldata_bytes)
        await self._check_escrow(owner, fee)
        deadline = now + self.config.deadline_s
        typed = create_typed_data(spec, owner, nonce, deadline, fee, info.chain_id, info.contract)
        return PreparedIntent(
            typed_data=typed,
            nonce=nonce,
            deadline=deadline,
            max_relayer_fee_wei=fee,
            chain_id=info.chain_id,
            contract=info.contract,
            relayer=self.address,
        )

    async def prepare_status(self, op: StatusOp, workflow_id: int, owner: str) -> PreparedIntent:
        info = await self.chain.info()
        _, now = await self.chain.head()
        await self._check_owner(op, workflow_id, owner)
        nonce = await self.chain.nonce_of(owner)
        fee = await self._ask_fee(STATUS_GAS_GUESS)
        await self._check_escrow(owner, fee)
        deadline = now + self.config.deadline_s
        typed = status_typed_data(op, workflow_id, owner, nonce, deadline, fee, info.chain_id, info.contract)
        return PreparedIntent(
            typed_data=typed,
            nonce=nonce,
            deadline=deadline,
            max_relayer_fee_wei=fee,
            chain_id=info.chain_id,
            contract=info.contract,
            relayer=self.address,
        )

    # ------------------------------------------------------------------ submit

    async def create(self, body: WorkflowCreateBody, intent: SignedIntent) -> WorkflowCreatedOut | RelayedTxOut:
        self._check_token(body.spec())  # a bad body names its field before the missing signature
        signature, nonce, deadline, fee = self._require_signed(intent, "/api/workflow/prepare")
        info = await self.chain.info()
        _, now = await self.chain.head()  # ≤ 1 s old: the contract checks the deadline again anyway
        spec = self._check_spec(body, now)
        owner = body.user_address
        self._check_terms(deadline, fee, now)
        typed = create_typed_data(spec, owner, nonce, deadline, fee, info.chain_id, info.contract)
        await self._check_signer(typed, signature, owner)
        core = await self.chain.core()
        data = core.encode_abi(
            "createWorkflowFor", args=[owner, spec.to_abi(), nonce, deadline, fee, bytes.fromhex(signature[2:])]
        )
        async with self._owner_lock(owner):
            await self._check_nonce(owner, nonce)
            await self._check_escrow(owner, fee)
            sent = await self._send("create", data, fee, nonce, f"relay-create:{owner}:{nonce}")
        return await self._outcome("create", sent, owner, lambda receipt: self.created(core, receipt))

    def created(self, core: Any, receipt: Any) -> WorkflowCreatedOut:
        (created,) = core.events.WorkflowCreated().process_receipt(receipt, errors=DISCARD)
        return WorkflowCreatedOut(
            workflow_id=int(created.args.workflowId),
            tx_hash=_hex(receipt["transactionHash"]),
            block_number=int(receipt["blockNumber"]),
            relayer=self.address,
            relayer_fee_wei=_reimbursed(core, receipt),
        )

    async def change_status(
        self, op: StatusOp, workflow_id: int, owner: str, intent: SignedIntent
    ) -> StatusChangedOut | RelayedTxOut:
        name = op.name.lower()
        signature, nonce, deadline, fee = self._require_signed(intent, f"/api/workflow/{workflow_id}/{name}/prepare")
        info = await self.chain.info()
        _, now = await self.chain.head()
        self._check_terms(deadline, fee, now)
        await self._check_owner(op, workflow_id, owner)
        typed = status_typed_data(op, workflow_id, owner, nonce, deadline, fee, info.chain_id, info.contract)
        await self._check_signer(typed, signature, owner)
        core = await self.chain.core()
        data = core.encode_abi(
            "changeStatusBySig", args=[workflow_id, int(op), nonce, deadline, fee, bytes.fromhex(signature[2:])]
        )
        async with self._owner_lock(owner):
            await self._check_nonce(owner, nonce)
            await self._check_escrow(owner, fee)
            sent = await self._send(name, data, fee, nonce, f"relay-{name}:{owner}:{nonce}")
        return await self._outcome(name, sent, owner, lambda receipt: self.status_changed(core, receipt))

    def status_changed(self, core: Any, receipt: Any) -> StatusChangedOut:
        """From the receipt alone (its `WorkflowStatusChanged`): no read after the transaction."""
        events = core.events.WorkflowStatusChanged().process_receipt(receipt, errors=DISCARD)
        last = events[-1]
        return StatusChangedOut(
            workflow_id=int(last.args.workflowId),
            status=Status(int(last.args.status)).label,
            tx_hash=_hex(receipt["transactionHash"]),
            block_number=int(receipt["blockNumber"]),
            relayer=self.address,
            relayer_fee_wei=_reimbursed(core, receipt),
        )

    # ------------------------------------------------------------------ checks

    def _check_token(self, spec: WorkflowSpec) -> None:
        problem = unsupported_token(spec, self.config.supported_assets)
        if problem:
            raise invalid("trigger_data.token", problem)

    def _check_spec(self, body: WorkflowCreateBody, now: int) -> WorkflowSpec:
        spec = body.spec()
        self._check_token(spec)
        try:
            spec.check_times(now)
        except ValueError as exc:
            field = "trigger_data.at" if "trigger_data.at" in str(exc) else "trigger_data"
            raise invalid(field, str(exc).removeprefix("trigger_data.at ")) from None
        return spec

    @staticmethod
    def _require_signed(intent: SignedIntent, prepare: str) -> tuple[str, int, int, int]:
        if intent.signature is None:
            raise ApiError(
                401,
                "signature_required",
                PREPARE_HINT.format(prepare=prepare),
                field="signature",
                details={"prepare": prepare},
            )
        missing = [n for n in ("nonce", "deadline", "max_relayer_fee_wei") if getattr(intent, n) is None]
        if missing:
            raise invalid(missing[0], "required with a signature (copy it from the prepared typed data)")
        assert intent.nonce is not None and intent.deadline is not None and intent.max_relayer_fee_wei is not None
        return intent.signature, intent.nonce, intent.deadline, intent.max_relayer_fee_wei

    def _check_terms(self, deadline: int, fee: int, now: int) -> None:
        if deadline <= now:
            raise ApiError(
                400, "expired", f"deadline: {deadline} has passed (chain time {now}); prepare again", field="deadline"
            )
        if deadline > now + self.config.max_deadline_s:
            raise invalid("deadline", f"at most {self.config.max_deadline_s} s ahead")
        if fee > self.config.max_fee_wei:
            raise invalid("max_relayer_fee_wei", f"at most {self.config.max_fee_wei} (MAX_RELAYER_FEE_WEI)")
        if fee == 0:
            raise invalid("max_relayer_fee_wei", "must be positive: the relayer does not pay for others' gas")

    async def _check_signer(self, typed: Mapping[str, Any], signature: str, owner: str) -> None:
        try:
            signer = Account.recover_message(encode_typed_data(full_message=dict(typed)), signature=signature)
        except Exception:
            signer = None
        if signer == owner:
            return  # the common case needs no RPC call
        if await self.chain.has_code(owner):
            return  # a contract wallet (ERC-1271): the simulation checks it
        if signer != owner:
            raise ApiError(
                401, "invalid_signature", "signature: not user_address's signature over these terms", field="signature"
            )

    async def _check_nonce(self, owner: str, nonce: int) -> None:
        current = await self.chain.nonce_of(owner)
        if nonce != current:
            raise self._bad_nonce(nonce, current)

    @staticmethod
    def _bad_nonce(nonce: int, current: int) -> ApiError:
        why = "already used" if nonce < current else "not yet valid"
        return ApiError(
            409,
            "bad_nonce",
            f"nonce: {nonce} is {why} (the owner's next nonce is {current}); prepare again",
            field="nonce",
        )

    async def _check_escrow(self, owner: str, fee: int) -> None:
        balance = await self.chain.balance_of(owner)
        if balance < fee:
            raise ApiError(
                402,
                "insufficient_escrow",
                f"max_relayer_fee_wei: {insufficient_escrow(owner, balance, fee)}",
                field="max_relayer_fee_wei",
                details={"balance_wei": str(balance), "fee_wei": str(fee)},
            )

    async def _check_owner(self, op: StatusOp, workflow_id: int, owner: str) -> None:
        try:
            view = await self.chain.get_workflow(workflow_id)
        except Exception as exc:
            if revert_data_from_exception(exc) is not None:
                raise ApiError(404, "not_found", f"workflow {workflow_id} does not exist") from None
            raise
        if view[1] != owner:
            raise ApiError(
                403, "not_owner", f"user_address: workflow {workflow_id} belongs to {view[1]}", field="user_address"
            )
        status = Status(int(view[2]))
        if status not in ALLOWED_FROM[op]:
            raise ApiError(409, "invalid_transition", f"workflow {workflow_id}: {invalid_transition(op, status)}")

    # ------------------------------------------------------------------ sending

    async def _ask_fee(self, gas: int) -> int:
        fees = await self._fees.get(FEES_MAX_AGE_S)
        return min(self.config.max_fee_wei, int(gas * fees.ceiling * self.config.fee_headroom))

    async def _send(self, kind: str, data: str, fee: int, nonce: int, purpose: str) -> SentTx:
        """Simulate, check the fee covers the gas, broadcast. An unfinished transaction of the same
        purpose (owner and nonce) is joined when it is this very intent, refused otherwise: its
        caller must not be told that a different workflow or status change is theirs."""
        info = await self.chain.info()
        fees = await self._fees.get(FEES_MAX_AGE_S)
        call = {"from": self.address, "to": info.contract, "data": data, "gasPrice": fees.ceiling}
        gas = await self._simulate(kind, call, nonce)
        tip = int(fees.max_priority_fee_per_gas or 0)
        expected_price = (fees.ceiling + tip) // 2 if fees.gas_price is None else fees.ceiling
        if gas * expected_price > fee:
            RELAYER_TXS.labels(kind=kind, outcome="refused").inc()
            raise ApiError(
                402,
                "fee_too_low",
                f"max_relayer_fee_wei: {fee} wei does not cover the gas "
                f"(~{gas * expected_price} wei at the current price); prepare again",
                field="max_relayer_fee_wei",
            )
        limit = int(gas * self.config.gas_multiplier) + self.config.gas_headroom
        tx = {"to": info.contract, "data": data, "gas": limit}
        sent = await self.sender.send(tx, purpose, fees=fees)
        if _hex(sent.unsigned.get("data", data)).lower() != data.lower():
            RELAYER_TXS.labels(kind=kind, outcome="refused").inc()
            raise ApiError(
                409,
                "bad_nonce",
                f"nonce: another intent with this nonce is being relayed ({sent.tx_hash}); prepare again",
                field="nonce",
                details={"tx_hash": sent.tx_hash},
            )
        log.info("relayer.sent", kind=kind, tx_hash=sent.tx_hash, purpose=purpose)
        return sent

    async def _outcome(self, kind: str, sent: SentTx, owner: str, result: Callable[[Any], R]) -> R | RelayedTxOut:
        """The answer for a broadcast transaction: `result(receipt)` once mined within the wait, the
        decoded revert if the contract refused it, else a pending `RelayedTxOut` (202): a sent
        intent is never answered as failed."""
        follower = self._follow(kind, sent)
        try:
            receipt = await asyncio.wait_for(asyncio.shield(follower), self.config.wait_timeout_s)
        except TransactionReverted:
            raise
        except Exception as exc:  # not mined yet, or the node could not say: the follower goes on
            why = "not mined yet" if isinstance(exc, TimeoutError) else f"the chain node did not answer ({exc})"
            if isinstance(exc, NonceConsumed):
                why = "its nonce was used by another transaction"
            log.warning("relayer.pending", kind=kind, tx_hash=sent.tx_hash, why=why[:200])
            return self.pending(kind, sent, owner, f"sent; {why}: poll the status URL")
        return result(receipt)

    def pending(self, kind: str, sent: SentTx, owner: str | None, message: str) -> RelayedTxOut:
        return RelayedTxOut(
            state="pending",
            kind=kind,  # type: ignore[arg-type]
            tx_hash=sent.tx_hash,  # type: ignore[arg-type]
            status_url=STATUS_URL.format(tx_hash=sent.original_hash),
            owner=owner,
            relayer=self.address,
            message=message,
        )

    def _follow(self, kind: str, sent: SentTx) -> asyncio.Task[Any]:
        """The task following `sent` to its receipt (one per transaction, shared by joined intents)."""
        task = self._followers.get(sent.original_hash)
        if task is None:
            task = asyncio.create_task(self._follow_until_mined(kind, sent), name=f"follow-{sent.original_hash}")
            self._followers[sent.original_hash] = task
            task.add_done_callback(lambda t: self._followed(sent.original_hash, t))
        return task

    def _followed(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._followers.get(key) is task:
            del self._followers[key]
        if not task.cancelled():
            task.exception()  # retrieved (the follower logged it): no "never retrieved" warning

    async def _follow_until_mined(self, kind: str, sent: SentTx) -> Any:
        """`sender.wait` (which replaces a stuck transaction), again after a chain failure, until
        the receipt or `follow_timeout_s`."""
        started = time.monotonic()
        deadline = started + self.config.follow_timeout_s
        while True:
            try:
                receipt = await self.sender.wait(sent, timeout=max(1.0, deadline - time.monotonic()))
            except TransactionReverted as exc:
                RELAYER_TXS.labels(kind=kind, outcome="reverted").inc()
                log.warning("relayer.reverted", kind=kind, tx_hash=sent.tx_hash, reason=exc.reason.message)
                raise
            except (TimeoutError, NonceConsumed) as exc:
                RELAYER_TXS.labels(kind=kind, outcome="timeout" if isinstance(exc, TimeoutError) else "dropped").inc()
                log.warning("relayer.not_mined", kind=kind, tx_hash=sent.tx_hash, error=str(exc))
                raise
            except Exception as exc:
                if dependency_failure(exc) is None or time.monotonic() > deadline:
                    log.error("relayer.follow_failed", kind=kind, tx_hash=sent.tx_hash, error=repr(exc)[:300])
                    raise
                log.warning("relayer.follow_retry", kind=kind, tx_hash=sent.tx_hash, error=str(exc)[:200])
                await asyncio.sleep(self.sender.config.poll_interval)
                continue
            RELAYER_TXS.labels(kind=kind, outcome="mined").inc()
            RELAYER_LATENCY.labels(kind=kind).observe(time.monotonic() - started)
            return receipt

    async def tx_status(self, asked: str, attempts: list[Any]) -> RelayedTxOut:
        """The state of a relayed transaction from its journal rows (every attempt at its nonce,
        first first: a fee bump replaces the hash) and the chain's receipts; 503 if the node
        cannot say (the transaction is not failed for that)."""
        try:
            return await self._tx_status(asked, attempts)
        except Exception as exc:
            unavailable = dependency_failure(exc)
            if unavailable is None:
                raise
            raise unavailable from None

    async def _tx_status(self, asked: str, attempts: list[Any]) -> RelayedTxOut:
        first = attempts[0]
        kind, owner = _kind_owner(str(first.purpose))
        out: dict[str, Any] = {
            "kind": kind,
            "owner": owner,
            "relayer": self.address,
            "status_url": STATUS_URL.format(tx_hash=str(first.tx_hash)),
        }
        core = await self.chain.core()
        for row in reversed(attempts):
            try:
                receipt = await self.chain.w3.eth.get_transaction_receipt(str(row.tx_hash))  # type: ignore[arg-type]
            except TransactionNotFound:
                continue
            mined = _hex(receipt["transactionHash"])
            if int(receipt["status"]) != 1:
                return RelayedTxOut(
                    state="reverted",
                    tx_hash=mined,
                    block_number=int(receipt["blockNumber"]),
                    message="mined, and refused by the contract: nothing was created or changed",
                    **out,
                )
            if kind == "create":
                created = self.created(core, receipt)
                return RelayedTxOut(
                    state="mined",
                    tx_hash=mined,
                    workflow_id=created.workflow_id,
                    block_number=created.block_number,
                    relayer_fee_wei=created.relayer_fee_wei,
                    message="created",
                    **out,
                )
            changed = self.status_changed(core, receipt)
            return RelayedTxOut(
                state="mined",
                tx_hash=mined,
                workflow_id=changed.workflow_id,
                workflow_status=changed.status,
                block_number=changed.block_number,
                relayer_fee_wei=changed.relayer_fee_wei,
                message=changed.status,
                **out,
            )
        latest = attempts[-1]
        if all(str(r.status) in ("dropped", "failed") for r in attempts):
            return RelayedTxOut(
                state="dropped",
                tx_hash=str(latest.tx_hash),
                message="not mined, and its nonce was used by another transaction (or the node "
                "refused it): nothing was created or changed; prepare again",
                **out,
            )
        return RelayedTxOut(
            state="pending", tx_hash=str(latest.tx_hash), message=f"sent ({asked}); not mined yet", **out
        )

    def resume_following(self) -> None:
        """In the background: follow what the journal says this key sent and nobody saw mined (an
        API restarted with relayed transactions in flight), so a stuck one is still replaced and
        its status URL ends mined. A chain that cannot be reached yet only delays it to the next
        send (the sender loads the journal then)."""
        self._resuming = asyncio.create_task(self._resume(), name="relayer-resume")

    async def _resume(self) -> None:
        try:
            in_flight = await self.sender.recover()
        except Exception as exc:  # the type only: an error's text may hold the RPC URL
            log.warning("relayer.resume_failed", error=type(exc).__name__)
            return
        for sent in in_flight:
            self._follow(_kind_owner(sent.purpose)[0], sent)
        if in_flight:
            log.info("relayer.resumed", following=len(in_flight))

    async def aclose(self) -> None:
        """Stop following (a restarted API finds the transactions in the journal)."""
        if self._resuming is not None:
            self._resuming.cancel()
            await asyncio.gather(self._resuming, return_exceptions=True)
        tasks = list(self._followers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _simulate(self, kind: str, call: dict[str, Any], nonce: int) -> int:
        """eth_call + eth_estimateGas at a non-zero gas price; a revert becomes a decoded 4xx (a
        nonce used since `_check_nonce` read it: 409 bad_nonce naming the owner's next one)."""
        try:
            await self.chain.w3.eth.call(call)  # type: ignore[arg-type]
            return int(await self.chain.w3.eth.estimate_gas(call))  # type: ignore[arg-type]
        except Exception as exc:
            data = revert_data_from_exception(exc)
            if data is None:
                raise
            RELAYER_TXS.labels(kind=kind, outcome="refused").inc()
            reason = decode_revert(data, self.sender.errors)
            if reason.name == "InvalidAccountNonce":
                raise self._bad_nonce(nonce, int(reason.args.get("currentNonce", 0))) from None
            raise TransactionReverted(reason, purpose=f"relay {kind}") from None


def _kind_owner(purpose: str) -> tuple[str, str | None]:
    """`relay-create:0xOwner:7` → ("create", "0xOwner")."""
    head, _, rest = purpose.partition(":")
    return head.removeprefix("relay-"), rest.rpartition(":")[0] or None


def _hex(value: bytes | str) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def _reimbursed(core: Any, receipt: Any) -> int:
    events = core.events.RelayerReimbursed().process_receipt(receipt, errors=DISCARD)
    return sum(int(e.args.amount) for e in events)
