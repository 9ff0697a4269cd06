"""The executor's own log decoding (precomputed topics + eth-abi) agrees with web3's on a real
mined batch and on the raw logs of eth_simulateV1, and its executeBatch calldata is web3's."""

from __future__ import annotations

from typing import Any

from autometa.chain.accounts import dev_role
from autometa.chain.contracts import autometa
from autometa.chain.deploy import transact
from autometa.chain.events import BatchCodec, EventDecoder
from autometa.contracts import load_artifact
from autometa.domain.kinds import SkipReason
from tests.worker.helpers import advance, create, deposit, now, spec


def _hex_log(raw: Any) -> dict[str, Any]:
    """A web3-formatted log as the node sends it (hex strings), like a raw receipt's."""
    return {
        "address": str(raw["address"]).lower(),
        "topics": ["0x" + bytes(t).hex() for t in raw["topics"]],
        "data": "0x" + bytes(raw["data"]).hex(),
        "logIndex": hex(int(raw["logIndex"])),
    }


def test_run_events_decode_like_web3_from_formatted_and_raw_logs(dev_chain) -> None:  # type: ignore[no-untyped-def]
    w3, address, user = dev_chain.w3, dev_chain.deployment.address, dev_role("user")
    deposit(w3, address, user, 10**18)
    t0 = now(w3)
    ids = [create(w3, address, user, spec(0, {"at": t0 + 100})) for _ in range(3)]
    advance(w3, 120)
    core = autometa(w3, address)
    codec = BatchCodec(address)
    runs = [wid << 96 for wid in ids] + [ids[0] << 96 | 5 << 64]  # the last: a one-shot run again, skipped
    data = codec.calldata(runs)
    assert data == core.encode_abi("executeBatch", args=[runs])  # the same bytes as web3's
    receipt = transact(w3, dev_role("executor"), core.functions.executeBatch(runs), gas=3_000_000)
    assert "0x" + bytes(w3.eth.get_transaction(receipt["transactionHash"])["input"]).hex() == data

    def plain(args: Any) -> dict[str, Any]:  # addresses come lowercase from eth-abi: no keccak per log
        return {k: v.lower() if isinstance(v, str) else v for k, v in dict(args).items()}

    expected = [
        ("RunExecuted", plain(ev.args), int(ev.logIndex)) for ev in core.events.RunExecuted().process_receipt(receipt)
    ] + [("RunSkipped", plain(ev.args), int(ev.logIndex)) for ev in core.events.RunSkipped().process_receipt(receipt)]
    assert len(expected) == 4 and {e[0] for e in expected} == {"RunExecuted", "RunSkipped"}
    for logs in (receipt["logs"], [_hex_log(raw) for raw in receipt["logs"]]):
        got = [(d.event, d.args, d.log_index) for d in codec.run_events(logs)]
        assert sorted(got, key=lambda e: e[2]) == sorted(expected, key=lambda e: e[2])
    skipped = [d for d in codec.run_events(receipt["logs"]) if d.event == "RunSkipped"]
    assert SkipReason(int(skipped[0].args["reason"])) == SkipReason.NOT_ACTIVE  # it ran: completed


def test_logs_of_another_contract_or_event_are_not_decoded(dev_chain) -> None:  # type: ignore[no-untyped-def]
    w3, address = dev_chain.w3, dev_chain.deployment.address
    core = autometa(w3, address)
    receipt = transact(w3, dev_role("user"), core.functions.deposit(), value=10**18)  # not a run event
    codec = BatchCodec(address)
    logs = list(receipt["logs"])
    assert logs and codec.run_events(logs) == []
    every = EventDecoder(load_artifact("Autometa").abi)
    decoded = every.decode_all(logs)
    assert decoded and all(d.event != "RunExecuted" for d in decoded)
    other = "0x" + "11" * 20
    moved = [{**_hex_log(raw), "address": other} for raw in logs]
    assert every.decode_all(moved, bytes.fromhex(address[2:])) == []  # another contract's
    assert EventDecoder(load_artifact("Autometa").abi).decode({"topics": [], "data": "0x", "address": other}) is None
