"""The contract's custom errors as sentences a person can act on, amounts in coin.

Every path says the same thing for the same refusal: the CLI sending directly, the relayer's
pre-checks and its simulation, the dashboard (through the relayer's answers)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from autometa.domain.kinds import Status, StatusOp

WEI_PER_COIN = Decimal(10**18)


def coin(wei: int) -> str:
    """`1500000000000000000` → `1.5 coin`; exact, no exponent, no trailing zeros."""
    value = (Decimal(int(wei)) / WEI_PER_COIN).normalize()
    text = format(value, "f")
    return f"{text} coin"


def invalid_transition(op: int, status: int) -> str:
    """`cannot pause a paused workflow`."""
    try:
        verb = StatusOp(op).name.lower()
    except ValueError:
        verb = f"apply operation {op} to"
    try:
        label = Status(status).label
    except ValueError:
        label = f"status-{status}"
    article = "an" if label[:1] in "aeiou" else "a"
    return f"cannot {verb} {article} {label} workflow"


def insufficient_escrow(user: str, balance: int, needed: int) -> str:
    return (
        f"the escrow of {user} holds {coin(balance)} but {coin(needed)} is needed; "
        "deposit first (`autometa escrow deposit`)"
    )


_SENTENCES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "InvalidTransition": lambda a: f"workflow {a['workflowId']}: {invalid_transition(a['op'], a['status'])}",
    "InsufficientEscrow": lambda a: insufficient_escrow(a["user"], a["balance"], a["needed"]),
    "UnknownWorkflow": lambda a: f"workflow {a['workflowId']} does not exist",
    "NotWorkflowOwner": lambda a: f"workflow {a['workflowId']} is not yours ({a['caller']} is not its owner)",
    "NotExecutor": lambda a: f"{a['caller']} is not an allow-listed executor",
    "InvalidSpec": lambda a: f"the workflow is invalid: {a['field']}",
    "InvalidOp": lambda a: f"unknown operation {a['op']}",
    "SignatureExpired": lambda a: f"the signature expired (deadline {a['deadline']}); prepare again",
    "InvalidSignature": lambda a: "the signature does not match the owner and the terms",
    "TransferFailed": lambda a: f"sending {coin(a['amount'])} to {a['to']} failed",
    "ExecutionIsPaused": lambda a: "execution is paused by the admin",
    "AmountTooLarge": lambda a: f"the amount {coin(a['amount'])} is too large",
    "InvalidAccountNonce": lambda a: "the nonce was already used or is not the next one; prepare again",
}


def sentence(name: str, args: Mapping[str, Any], fallback: str) -> str:
    """The sentence for custom error `name` with its decoded `args`; `fallback` (the raw form)
    for an error without one."""
    make = _SENTENCES.get(name)
    if make is None:
        return fallback
    try:
        return make(args)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return fallback


def human(reason: Any) -> str:
    """A decoded revert (`revert.RevertReason`) as a sentence; the raw form if none fits."""
    if getattr(reason, "kind", "") == "custom":
        return sentence(reason.name, reason.args, reason.message)
    return str(reason.message)
