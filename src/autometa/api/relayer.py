"""The relayer: turns a user's signed EIP-712 intent into a transaction paid from the relayer's
key and reimbursed from the user's escrow.

Every check that can refuse an intent runs before anything is sent, cheapest first: the body,
the signature recovered off-chain, the nonce, the owner's escrow against the fee they signed,
then a simulation with a real (non-zero) gas price — `eth_estimateGas` at price 0 skips the
reimbursement's storage writes and would under-estimate. So a throwaway key with an empty escrow
costs the relayer an RPC call, never gas.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from eth_account import Account
from eth_account.messages import encode_typed_data
from web3.logs import DISCARD

from autometa.api.chain import ChainGateway
from autometa.api.errors import ApiError, invalid
from autometa.api.metrics import RELAYER_LATENCY, RELAYER_TXS
from autometa.api.schemas import (
    PreparedIntent,
    SignedIntent,
    StatusChangedOut,
    WorkflowCreateBody,
    WorkflowCreatedOut,
)
from autometa.chain.revert import TransactionReverted, decode_revert, revert_data_from_exception
from autometa.chain.sender import SentTx, TransactionSender
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


@dataclass(frozen=True)
class RelayerConfig:
    max_fee_wei: int
    supported_assets: tuple[str, ...]
    deadline_s: int = 3600  # how long a prepared intent stays signable
    max_deadline_s: int = 7 * 24 * 3600  # the furthest deadline the relayer accepts
    fee_headroom: float = 1.5  # on the guessed cost, for the fee asked
    gas_multiplier: float = 1.3
    gas_headroom: int = 20_000
    wait_timeout_s: float = 120.0


class Relayer:
    def __init__(self, chain: ChainGateway, sender: TransactionSender, config: RelayerConfig) -> None:
        self.chain, self.sender, self.config = chain, sender, config
        self.address = sender.default_address
        # One owner's intents are checked and sent one at a time (see `_owner_lock`).
        self._owner_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

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
        return PreparedIntent(typed_data=typed, nonce=nonce, deadline=deadline, max_relayer_fee_wei=fee,
                              chain_id=info.chain_id, contract=info.contract, relayer=self.address)  # fmt: skip

    async def prepare_status(self, op: StatusOp, workflow_id: int, owner: str) -> PreparedIntent:
        info = await self.chain.info()
        _, now = await self.chain.head()
        await self._check_owner(op, workflow_id, owner)
        nonce = await self.chain.nonce_of(owner)
        fee = await self._ask_fee(STATUS_GAS_GUESS)
        await self._check_escrow(owner, fee)
        deadline = now + self.config.deadline_s
        typed = status_typed_data(op, workflow_id, owner, nonce, deadline, fee, info.chain_id, info.contract)
        return PreparedIntent(typed_data=typed, nonce=nonce, deadline=deadline, max_relayer_fee_wei=fee,
                              chain_id=info.chain_id, contract=info.contract, relayer=self.address)  # fmt: skip

    # ------------------------------------------------------------------ submit

    async def create(self, body: WorkflowCreateBody, intent: SignedIntent) -> WorkflowCreatedOut:
        self._check_token(body.spec())  # a bad body names its field before the missing signature
        signature, nonce, deadline, fee = self._require_signed(intent, "/api/workflow/prepare")
        info = await self.chain.info()
        _, now = await self.chain.head(max_age=0)
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
            sent = await self._send("create", data, fee, f"relay-create:{owner}:{nonce}")
        receipt = await self._wait("create", sent)
        (created,) = core.events.WorkflowCreated().process_receipt(receipt, errors=DISCARD)
        return WorkflowCreatedOut(
            workflow_id=int(created.args.workflowId), tx_hash=_hex(receipt["transactionHash"]),
            block_number=int(receipt["blockNumber"]), relayer=self.address,
            relayer_fee_wei=_reimbursed(core, receipt),
        )  # fmt: skip

    async def change_status(
        self, op: StatusOp, workflow_id: int, owner: str, intent: SignedIntent
    ) -> StatusChangedOut:
        name = op.name.lower()
        signature, nonce, deadline, fee = self._require_signed(intent, f"/api/workflow/{workflow_id}/{name}/prepare")
        info = await self.chain.info()
        _, now = await self.chain.head(max_age=0)
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
            sent = await self._send(name, data, fee, f"relay-{name}:{owner}:{nonce}")
        receipt = await self._wait(name, sent)
        status = Status(int((await self.chain.get_workflow(workflow_id))[2]))
        return StatusChangedOut(
            workflow_id=workflow_id, status=status.label, tx_hash=_hex(receipt["transactionHash"]),
            block_number=int(receipt["blockNumber"]), relayer=self.address,
            relayer_fee_wei=_reimbursed(core, receipt),
        )  # fmt: skip

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
            raise ApiError(401, "signature_required", PREPARE_HINT.format(prepare=prepare), field="signature",
                           details={"prepare": prepare})  # fmt: skip
        missing = [n for n in ("nonce", "deadline", "max_relayer_fee_wei") if getattr(intent, n) is None]
        if missing:
            raise invalid(missing[0], "required with a signature (copy it from the prepared typed data)")
        assert intent.nonce is not None and intent.deadline is not None and intent.max_relayer_fee_wei is not None
        return intent.signature, intent.nonce, intent.deadline, intent.max_relayer_fee_wei

    def _check_terms(self, deadline: int, fee: int, now: int) -> None:
        if deadline <= now:
            raise ApiError(400, "expired", f"deadline: {deadline} has passed (chain time {now}); prepare again",
                           field="deadline")  # fmt: skip
        if deadline > now + self.config.max_deadline_s:
            raise invalid("deadline", f"at most {self.config.max_deadline_s} s ahead")
        if fee > self.config.max_fee_wei:
            raise invalid("max_relayer_fee_wei", f"at most {self.config.max_fee_wei} (MAX_RELAYER_FEE_WEI)")
        if fee == 0:
            raise invalid("max_relayer_fee_wei", "must be positive: the relayer does not pay for others' gas")

    async def _check_signer(self, typed: Mapping[str, Any], signature: str, owner: str) -> None:
        if await self.chain.has_code(owner):
            return  # a contract wallet (ERC-1271): the simulation checks it
        try:
            signer = Account.recover_message(encode_typed_data(full_message=dict(typed)), signature=signature)
        except Exception:
            signer = None
        if signer != owner:
            raise ApiError(401, "invalid_signature", "signature: not user_address's signature over these terms",
                           field="signature")  # fmt: skip

    async def _check_nonce(self, owner: str, nonce: int) -> None:
        current = await self.chain.nonce_of(owner)
        if nonce != current:
            why = "already used" if nonce < current else "not yet valid"
            raise ApiError(409, "bad_nonce", f"nonce: {nonce} is {why} (the owner's next nonce is {current}); "
                           "prepare again", field="nonce")  # fmt: skip

    async def _check_escrow(self, owner: str, fee: int) -> None:
        balance = await self.chain.balance_of(owner)
        if balance < fee:
            raise ApiError(402, "insufficient_escrow",
                           f"max_relayer_fee_wei: {insufficient_escrow(owner, balance, fee)}",
                           field="max_relayer_fee_wei",
                           details={"balance_wei": str(balance), "fee_wei": str(fee)})  # fmt: skip

    async def _check_owner(self, op: StatusOp, workflow_id: int, owner: str) -> None:
        try:
            view = await self.chain.get_workflow(workflow_id)
        except Exception as exc:
            if revert_data_from_exception(exc) is not None:
                raise ApiError(404, "not_found", f"workflow {workflow_id} does not exist") from None
            raise
        if view[1] != owner:
            raise ApiError(403, "not_owner", f"user_address: workflow {workflow_id} belongs to {view[1]}",
                           field="user_address")  # fmt: skip
        status = Status(int(view[2]))
        if status not in ALLOWED_FROM[op]:
            raise ApiError(409, "invalid_transition", f"workflow {workflow_id}: {invalid_transition(op, status)}")

    # ------------------------------------------------------------------ sending

    async def _ask_fee(self, gas: int) -> int:
        fees = await self.sender.fee_policy.current(self.chain.w3)
        return min(self.config.max_fee_wei, int(gas * fees.ceiling * self.config.fee_headroom))

    async def _send(self, kind: str, data: str, fee: int, purpose: str) -> SentTx:
        """Simulate, check the fee covers the gas, broadcast. An unfinished transaction of the same
        purpose (owner and nonce) is joined when it is this very intent, refused otherwise: its
        caller must not be told that a different workflow or status change is theirs."""
        info = await self.chain.info()
        fees = await self.sender.fee_policy.current(self.chain.w3)
        call = {"from": self.address, "to": info.contract, "data": data, "gasPrice": fees.ceiling}
        gas = await self._simulate(kind, call)
        tip = int(fees.max_priority_fee_per_gas or 0)
        expected_price = (fees.ceiling + tip) // 2 if fees.gas_price is None else fees.ceiling
        if gas * expected_price > fee:
            RELAYER_TXS.labels(kind=kind, outcome="refused").inc()
            raise ApiError(402, "fee_too_low", f"max_relayer_fee_wei: {fee} wei does not cover the gas "
                           f"(~{gas * expected_price} wei at the current price); prepare again",
                           field="max_relayer_fee_wei")  # fmt: skip
        limit = int(gas * self.config.gas_multiplier) + self.config.gas_headroom
        tx = {"to": info.contract, "data": data, "gas": limit}
        sent = await self.sender.send(tx, purpose)
        if _hex(sent.unsigned.get("data", data)).lower() != data.lower():
            RELAYER_TXS.labels(kind=kind, outcome="refused").inc()
            raise ApiError(409, "bad_nonce", f"nonce: another intent with this nonce is being relayed "
                           f"({sent.tx_hash}); prepare again", field="nonce",
                           details={"tx_hash": sent.tx_hash})  # fmt: skip
        log.info("relayer.sent", kind=kind, tx_hash=sent.tx_hash, purpose=purpose)
        return sent

    async def _wait(self, kind: str, sent: SentTx) -> Any:
        started = time.monotonic()
        try:
            receipt = await self.sender.wait(sent, timeout=self.config.wait_timeout_s)
        except TransactionReverted as exc:
            RELAYER_TXS.labels(kind=kind, outcome="reverted").inc()
            log.warning("relayer.reverted", kind=kind, tx_hash=sent.tx_hash, reason=exc.reason.message)
            raise
        except TimeoutError:
            RELAYER_TXS.labels(kind=kind, outcome="timeout").inc()
            raise ApiError(504, "not_mined", f"transaction {sent.tx_hash} was sent but is not mined yet",
                           details={"tx_hash": sent.tx_hash}) from None  # fmt: skip
        RELAYER_TXS.labels(kind=kind, outcome="mined").inc()
        RELAYER_LATENCY.labels(kind=kind).observe(time.monotonic() - started)
        return receipt

    async def _simulate(self, kind: str, call: dict[str, Any]) -> int:
        """eth_call + eth_estimateGas at a non-zero gas price; a revert becomes a decoded 4xx."""
        try:
            await self.chain.w3.eth.call(call)  # type: ignore[arg-type]
            return int(await self.chain.w3.eth.estimate_gas(call))  # type: ignore[arg-type]
        except Exception as exc:
            data = revert_data_from_exception(exc)
            if data is None:
                raise
            RELAYER_TXS.labels(kind=kind, outcome="refused").inc()
            raise TransactionReverted(decode_revert(data, self.sender.errors), purpose=f"relay {kind}") from None


def _hex(value: bytes | str) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def _reimbursed(core: Any, receipt: Any) -> int:
    events = core.events.RelayerReimbursed().process_receipt(receipt, errors=DISCARD)
    return sum(int(e.args.amount) for e in events)
