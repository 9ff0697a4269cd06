"""Attacks on the HTTP API, against the real app on the real dev chain: generated bodies
(malformed, wrong types, boundary numbers, unicode in every string, bad checksums) are a 4xx with
a reason — never a 5xx — and nothing is written to the store or the chain; the relayer sends
nothing that its owner did not sign (even when the same signed intent is raced against itself);
and no secret (relayer key, executor key, database password) reaches a log line or a response."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import structlog
from eth_account import Account
from eth_utils import to_checksum_address
from hypothesis import strategies as st
from sqlalchemy import func, select

from autometa.chain.accounts import dev_account
from autometa.chain.contracts import autometa
from autometa.domain.eip712 import create_typed_data, sign_typed_data, status_typed_data
from autometa.domain.kinds import StatusOp
from autometa.domain.workflow import WorkflowSpec
from autometa.logs import configure_logging
from autometa.store import Base
from tests.api.conftest import RECIPIENT, RELAYER, USER, Api, chain_now, close_api, deposit, open_api, seed_body
from tests.conftest import DevChain
from tests.support.coingecko_stub import CoinGeckoStub

ESCROW = 5 * 10**18
REFUSALS = {400, 401, 402, 403, 404, 405, 409, 413, 422}
BOGUS_SIG = "0x" + "ab" * 65
SETTINGS = hypothesis.settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)

# Strings an attacker would try in any string field: non-ASCII digits and hex (which Python's
# int() and str.isdigit() accept), homoglyphs, control characters, RTL overrides, surrogates'
# neighbours, emoji, NUL, very long text.
UNICODE = [
    "١٠٠٠",
    "１０００",
    "²",
    "0x" + "０" * 40,
    "0x" + "ａ" * 40,
    "0х" + "a" * 40,
    "ethereum\u202e",
    "eth\x00",
    "\ufeffethereum",
    "ＥＴＨＥＲＥＵＭ",
    "😀" * 20,
    "\u0301" * 10,
    "Ⅻ",
    "\n\r\t",
    "𝟙𝟘𝟘",
    "x" * 5000,
    "0x" + "ab" * 32 + "\u200b",
    "ethereum ",
    "NaN",
    "Infinity",
    "-0",
    "1e3",
    "0b101",
    "0o17",
    "1_000",
]

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**300), max_value=2**300),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(UNICODE),
    st.sampled_from([0, 1, -1, 2**32 - 1, 2**32, 2**40, 2**63 - 1, 2**63, 2**64, 2**96, 2**256 - 1, 2**256, 10**80]),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)

CREATE_PATHS = [
    ("user_address",),
    ("trigger_type",),
    ("trigger_data",),
    ("trigger_data", "token"),
    ("trigger_data", "comparator"),
    ("trigger_data", "price_usd"),
    ("trigger_data", "cooldown"),
    ("trigger_data", "at"),
    ("trigger_data", "interval"),
    ("action_type",),
    ("action_data",),
    ("action_data", "to"),
    ("action_data", "amount_wei"),
    ("action_data", "token"),
    ("action_data", "data"),
    ("max_runs",),
    ("gas_limit",),
    ("max_fee_per_run_wei",),
    ("signature",),
    ("nonce",),
    ("deadline",),
    ("max_relayer_fee_wei",),
    ("extra",),
]
_DELETE = object()


def _mutate(body: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in body.items()}
    node: Any = out
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if value is _DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return out


mutations = st.lists(
    st.tuples(st.sampled_from(CREATE_PATHS), st.one_of(_json, st.just(_DELETE))), min_size=1, max_size=3
)


# ---------------------------------------------------------------------------- what must not change


def _world(api: Api) -> tuple[Any, ...]:
    """Everything a refused request must leave as it was: the relayer's account on the chain,
    the contract's workflows and the user's nonce and escrow, and the store's rows."""
    w3 = api.chain.w3
    core = autometa(w3, api.chain.deployment.address)
    with api.store.engine.connect() as conn:
        rows = tuple(
            conn.execute(select(func.count()).select_from(table)).scalar_one() for table in Base.metadata.sorted_tables
        )
    return (
        w3.eth.get_transaction_count(RELAYER.address),
        w3.eth.get_balance(RELAYER.address),
        core.functions.workflowCount().call(),
        core.functions.nonces(USER.address).call(),
        core.functions.balanceOf(USER.address).call(),
        w3.eth.block_number,
        rows,
    )


def _refused_with_reason(reply: Any, context: Any) -> None:
    assert reply.status_code in REFUSALS, (reply.status_code, reply.text[:500], context)
    body = reply.json()
    assert isinstance(body.get("error"), str) and body["error"], (reply.text[:500], context)
    assert isinstance(body.get("message"), str) and body["message"], (reply.text[:500], context)


@pytest.fixture
async def funded(api_embedded: Api) -> Api:
    deposit(api_embedded.chain, USER, ESCROW)
    return api_embedded


@pytest.fixture
async def funded_any(api: Api) -> Api:
    """Both backends: embedded, and distributed (PostgreSQL journal and store, Redis)."""
    deposit(api.chain, USER, ESCROW)
    return api


# ---------------------------------------------------------------------------- generated bodies


@hypothesis.given(changes=mutations)
@SETTINGS
async def test_generated_create_bodies_are_refused_with_a_reason(funded: Api, changes: Any) -> None:
    """Mutated signed-create bodies (the signature is not the owner's): always a 4xx with a
    reason, and nothing is sent, mined or stored."""
    before = _world(funded)
    body = seed_body(
        signature=BOGUS_SIG, nonce=0, deadline=chain_now(funded.chain) + 600, max_relayer_fee_wei=str(10**15)
    )
    for path, value in changes:
        body = _mutate(body, path, value)
    reply = await funded.client.post("/api/workflow/create", json=body)
    _refused_with_reason(reply, changes)
    assert _world(funded) == before


@hypothesis.given(changes=mutations)
@SETTINGS
async def test_generated_prepare_bodies_never_fail_the_server(funded: Api, changes: Any) -> None:
    """Prepare writes nothing whatever the body: a 4xx with a reason, or typed data to sign."""
    before = _world(funded)
    body = seed_body()
    for path, value in changes:
        body = _mutate(body, path, value)
    reply = await funded.client.post("/api/workflow/prepare", json=body)
    if reply.status_code != 200:
        _refused_with_reason(reply, changes)
    else:
        prepared = reply.json()  # typed data for exactly the owner asked about, within the relayer's fee cap
        assert prepared["typed_data"]["message"]["owner"] == to_checksum_address(body["user_address"])
        assert 0 < int(prepared["max_relayer_fee_wei"]) <= funded.settings.MAX_RELAYER_FEE_WEI
    assert _world(funded) == before


STATUS_KEYS = ["user_address", "signature", "nonce", "deadline", "max_relayer_fee_wei", "extra"]


@hypothesis.given(
    workflow_id=st.one_of(st.integers(min_value=-(2**70), max_value=2**70).map(str), st.sampled_from(UNICODE)),
    op=st.sampled_from(["pause", "resume", "cancel", "explode", "PAUSE", "pause\u0301", "😀"]),
    prepare=st.booleans(),
    body=st.dictionaries(st.sampled_from(STATUS_KEYS), _json, max_size=4) | _json,
)
@SETTINGS
async def test_generated_status_requests_are_refused_with_a_reason(
    funded: Api, workflow_id: str, op: str, prepare: bool, body: Any
) -> None:
    before = _world(funded)
    path = f"/api/workflow/{workflow_id}/{op}" + ("/prepare" if prepare else "")
    try:
        reply = await funded.client.post(path, json=body)
    except Exception:  # httpx refuses some URLs itself (e.g. NUL): no request was made
        hypothesis.reject()
    _refused_with_reason(reply, (path, body))
    assert _world(funded) == before


# ---------------------------------------------------------------------------- boundaries and unicode


def _price(value: Any, **extra: Any) -> dict[str, Any]:
    return {"trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": value, **extra}}


BOUNDARIES: list[tuple[str, dict[str, Any], bool]] = [
    # (name, change, valid)
    ("max_runs 2**32-1", {"max_runs": 2**32 - 1}, True),
    ("max_runs 2**32", {"max_runs": 2**32}, False),
    ("gas_limit min", {"gas_limit": 10_000}, True),
    ("gas_limit min-1", {"gas_limit": 9_999}, False),
    ("gas_limit max", {"gas_limit": 5_000_000}, True),
    ("gas_limit max+1", {"gas_limit": 5_000_001}, False),
    ("amount 2**96-1", {"action_data": {"to": RECIPIENT, "amount_wei": str(2**96 - 1)}}, True),
    ("amount 2**96", {"action_data": {"to": RECIPIENT, "amount_wei": str(2**96)}}, False),
    ("amount 0", {"action_data": {"to": RECIPIENT, "amount_wei": "0"}}, False),
    ("price 1e-8", _price("0.00000001"), True),
    ("price 1e-9", _price("0.000000001"), False),
    ("price max", _price("184467440737.09551615"), True),
    ("price max+", _price("184467440737.09551616"), False),
    ("price 0", _price(0), False),
    ("price nan", _price("NaN"), False),
    ("price inf", _price("Infinity"), False),
    ("price 1e400", _price("1e400"), False),
    ("cooldown 2**24-1", _price(1, cooldown=2**24 - 1), True),
    ("cooldown 2**24", _price(1, cooldown=2**24), False),
    ("comparator 2", {"trigger_data": {"token": "ethereum", "comparator": 2, "price_usd": 1}}, False),
    ("interval 2**32", {"trigger_type": 1, "trigger_data": {"interval": 2**32}}, False),
    ("at 2**40", {"trigger_type": 0, "trigger_data": {"at": 2**40}, "max_runs": 1}, False),
    ("max fee 2**80-1", {"max_fee_per_run_wei": str(2**80 - 1)}, True),
    ("max fee 2**80", {"max_fee_per_run_wei": str(2**80)}, False),
    ("max fee 0", {"max_fee_per_run_wei": "0"}, False),
    ("huge int literal", {"max_runs": 10**5000}, False),
    ("integral float for int", {"max_runs": 2.0}, True),  # JSON has one number type: 2.0 is 2
    ("fractional float for int", {"max_runs": 1.5}, False),
    ("bool for int", {"max_runs": True}, False),
    ("bool for comparator", {"trigger_data": {"token": "ethereum", "comparator": True, "price_usd": 1}}, False),
    (
        "bool for cooldown",
        {"trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": 1, "cooldown": False}},
        False,
    ),
    ("bool for time", {"trigger_type": 0, "trigger_data": {"at": True}, "max_runs": 1}, False),
    ("decimal string for int", {"max_runs": "2"}, True),  # integers may travel as decimal strings (wei do)
    ("word for int", {"max_runs": "two"}, False),
    ("unicode digits for int", {"max_runs": "٢"}, False),
    ("list for object", {"trigger_data": [1, 2]}, False),
    ("lowercase address", {"user_address": USER.address.lower()}, True),
    ("uppercase address", {"user_address": "0x" + USER.address[2:].upper()}, True),
]
UNICODE_FIELDS = [
    ("user_address",),
    ("trigger_data", "token"),
    ("action_data", "to"),
    ("action_data", "amount_wei"),
    ("trigger_data", "price_usd"),
    ("max_fee_per_run_wei",),
]


def _bad_checksums() -> Iterator[str]:
    """USER's address with the case of one letter flipped at each position (all invalid EIP-55)."""
    body = USER.address[2:]
    for i, ch in enumerate(body):
        if ch.isalpha():
            yield "0x" + body[:i] + ch.swapcase() + body[i + 1 :]


async def test_boundary_numbers_and_types(funded: Api) -> None:
    before = _world(funded)
    for name, change, valid in BOUNDARIES:
        for path in ("/api/workflow/prepare", "/api/workflow/create"):
            body = {**seed_body(), **change}
            if path.endswith("create"):
                body.update(
                    signature=BOGUS_SIG,
                    nonce=0,
                    deadline=chain_now(funded.chain) + 600,
                    max_relayer_fee_wei=str(10**15),
                )
            if name == "huge int literal":  # json.dumps would refuse it too: send the digits raw
                raw = seed_body()
                raw_text = '{"max_runs": ' + "9" * 5000 + "," + str(raw).replace("'", '"')[1:]
                reply = await funded.client.post(
                    path, content=raw_text.encode(), headers={"content-type": "application/json"}
                )
            else:
                reply = await funded.client.post(path, json=body)
            if valid and path.endswith("prepare"):
                assert reply.status_code == 200, (name, reply.text)
            elif valid:  # a valid body with a signature that is not the owner's
                assert reply.status_code == 401 and reply.json()["field"] == "signature", (name, reply.text)
            else:
                _refused_with_reason(reply, name)
                assert reply.status_code != 401 or not path.endswith("prepare"), (name, reply.text)
    assert _world(funded) == before


async def test_unicode_in_every_string_and_bad_checksums(funded: Api) -> None:
    before = _world(funded)
    for field in UNICODE_FIELDS:
        for text in [t for t in UNICODE if not t.isascii()]:
            body = _mutate(seed_body(), field, text)
            reply = await funded.client.post("/api/workflow/prepare", json=body)
            _refused_with_reason(reply, (field, text))
            assert reply.json()["field"] is not None, (field, text, reply.text)
    for bad in _bad_checksums():
        for field in (("user_address",), ("action_data", "to")):
            reply = await funded.client.post("/api/workflow/prepare", json=_mutate(seed_body(), field, bad))
            assert reply.status_code == 422 and "checksum" in reply.json()["message"], (field, bad, reply.text)
        reply = await funded.client.get(f"/api/workflow/user/{bad}")
        assert reply.status_code == 422 and reply.json()["field"] == "address", reply.text
        reply = await funded.client.post("/api/workflow/1/pause/prepare", json={"user_address": bad})
        assert reply.status_code == 422 and reply.json()["field"] == "user_address", reply.text
    # unicode in paths and queries
    for text in UNICODE[:15]:
        for path in (
            f"/api/workflow/user/{text}",
            f"/api/price/{text}",
            f"/api/workflow/{text}",
            f"/api/executions?user={text}",
            f"/api/stats?user={text}",
        ):
            try:
                reply = await funded.client.get(path)
            except Exception:  # httpx refuses some URLs itself: nothing reached the server
                continue
            assert reply.status_code < 500, (path, reply.text)
            if reply.status_code >= 400:
                _refused_with_reason(reply, path)
    assert _world(funded) == before


async def test_malformed_bodies(funded: Api) -> None:
    before = _world(funded)
    json_type = {"content-type": "application/json"}
    cases: list[tuple[bytes, dict[str, str]]] = [
        (b"", json_type),
        (b"null", json_type),
        (b"{", json_type),
        (b'{"a":1}{"b":2}', json_type),
        (b"\xff\xfe\x00garbage", json_type),
        (b'{"user_address": "\xed\xa0\x80"}', json_type),
        (b"[" * 5000 + b"]" * 5000, json_type),
        (b'{"a":' * 3000 + b"1" + b"}" * 3000, json_type),
        (b'{"user_address": NaN}', json_type),
        (b"user_address=0x1", {"content-type": "application/x-www-form-urlencoded"}),
        (b'{"user_address": "x"}', {"content-type": "text/plain"}),
        (b'{"user_address": "x"}', {}),
        (b"\x00" * 1000, {"content-type": "application/octet-stream"}),
        (b"{" + b" " * 65_600 + b"}", json_type),
        (b'{"user_address": "' + b"a" * 70_000 + b'"}', json_type),
    ]
    for path in (
        "/api/workflow/prepare",
        "/api/workflow/create",
        "/api/workflow/1/pause",
        "/api/workflow/1/cancel/prepare",
    ):
        for content, headers in cases:
            reply = await funded.client.post(path, content=content, headers=headers)
            _refused_with_reason(reply, (path, content[:40]))
    # a body that lies about its length, and a chunked body over the limit
    reply = await funded.client.post(
        "/api/workflow/create", content=b"{}", headers={**json_type, "content-length": "x"}
    )
    _refused_with_reason(reply, "bad content-length")

    async def chunks() -> Any:
        for _ in range(100):
            yield b" " * 1024

    reply = await funded.client.post("/api/workflow/create", content=chunks(), headers=json_type)
    assert reply.status_code == 413, reply.text
    assert _world(funded) == before


# ---------------------------------------------------------------------------- the relayer signs nothing for others


def _signed_create(api: Api, account: Any, body: dict[str, Any], nonce: int = 0, fee: int = 10**15) -> dict[str, Any]:
    spec = WorkflowSpec.model_validate({k: v for k, v in body.items() if k != "user_address"})
    deadline = chain_now(api.chain) + 600
    typed = create_typed_data(spec, body["user_address"], nonce, deadline, fee, 31337, api.chain.deployment.address)
    return {
        **body,
        "signature": sign_typed_data(account, typed),
        "nonce": nonce,
        "deadline": deadline,
        "max_relayer_fee_wei": str(fee),
    }


def _signed_status(
    api: Api,
    account: Any,
    op: StatusOp,
    wid: int,
    owner: str,
    nonce: int,
    fee: int = 10**15,
    chain_id: int = 31337,
    contract: str | None = None,
) -> dict[str, Any]:
    deadline = chain_now(api.chain) + 600
    typed = status_typed_data(op, wid, owner, nonce, deadline, fee, chain_id, contract or api.chain.deployment.address)
    return {
        "user_address": owner,
        "signature": sign_typed_data(account, typed),
        "nonce": nonce,
        "deadline": deadline,
        "max_relayer_fee_wei": str(fee),
    }


async def test_relayer_sends_nothing_the_owner_did_not_sign(funded_any: Api) -> None:
    """Status changes signed by someone else, for another op, another workflow, another chain
    or contract, with a changed fee, or a create whose spec was altered after signing."""
    api = funded_any
    wid = (await api.typed.create_signed(USER, seed_body())).workflow_id
    second = (await api.typed.create_signed(USER, seed_body())).workflow_id
    nonce = int(autometa(api.chain.w3, api.chain.deployment.address).functions.nonces(USER.address).call())
    stranger, other_contract = Account.create(), dev_account(7).address
    before = _world(api)
    good = _signed_status(api, USER, StatusOp.PAUSE, wid, USER.address, nonce)
    cases: dict[str, tuple[str, dict[str, Any]]] = {
        "stranger's signature": ("pause", _signed_status(api, stranger, StatusOp.PAUSE, wid, USER.address, nonce)),
        "signed pause, sent as cancel": ("cancel", good),
        "signed for another workflow": (
            "pause",
            _signed_status(api, USER, StatusOp.PAUSE, second, USER.address, nonce),
        ),
        "another chain": ("pause", _signed_status(api, USER, StatusOp.PAUSE, wid, USER.address, nonce, chain_id=1284)),
        "another contract": (
            "pause",
            _signed_status(api, USER, StatusOp.PAUSE, wid, USER.address, nonce, contract=other_contract),
        ),
        "fee raised after signing": ("pause", {**good, "max_relayer_fee_wei": str(10**15 + 1)}),
        "deadline moved after signing": ("pause", {**good, "deadline": good["deadline"] + 1}),
        "stale nonce": ("pause", _signed_status(api, USER, StatusOp.PAUSE, wid, USER.address, nonce - 1)),
    }
    for name, (op, request) in cases.items():
        reply = await api.client.post(f"/api/workflow/{wid}/{op}", json=request)
        _refused_with_reason(reply, name)
        assert reply.status_code in (401, 409), (name, reply.text)
    # a create signed by the owner, then altered: every field the owner committed to
    signed = _signed_create(api, USER, seed_body(), nonce=nonce)
    altered = {
        "recipient": {**signed, "action_data": {"to": dev_account(8).address, "amount_wei": "1000000000000000000"}},
        "amount": {**signed, "action_data": {"to": RECIPIENT, "amount_wei": "2000000000000000000"}},
        "threshold": {**signed, "trigger_data": {"token": "ethereum", "comparator": 1, "price_usd": 3200}},
        "max fee per run": {**signed, "max_fee_per_run_wei": "20000000000000000"},
        "runs": {**signed, "max_runs": 5},
        "owner": {**signed, "user_address": dev_account(9).address},
    }
    for name, request in altered.items():
        reply = await api.client.post("/api/workflow/create", json=request)
        assert reply.status_code == 401 and reply.json()["field"] == "signature", (name, reply.text)
    assert _world(api) == before


async def test_one_signed_intent_raced_is_sent_once(funded_any: Api) -> None:
    """The same signed create submitted ten times at once: one transaction, one workflow; the
    others get the same answer or a 409 — the relayer never pays for a doomed duplicate."""
    api = funded_any
    request = _signed_create(api, USER, seed_body())
    count, _balance, workflows, *_ = _world(api)
    replies = await asyncio.gather(*(api.client.post("/api/workflow/create", json=request) for _ in range(10)))
    ok = [r for r in replies if r.status_code == 200]
    assert ok, [r.text for r in replies]
    assert {r.json()["workflow_id"] for r in ok} == {workflows + 1}
    for reply in replies:
        assert reply.status_code in (200, 409), reply.text
    after_count, _, after_workflows, *_ = _world(api)
    assert after_workflows == workflows + 1, "one workflow"
    assert after_count == count + 1, "one transaction from the relayer"


# ---------------------------------------------------------------------------- secrets


@contextlib.contextmanager
def _captured_stderr() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    saved = sys.stderr
    sys.stderr = stream
    try:
        yield stream
    finally:
        sys.stderr = saved


def _restore_structlog() -> None:
    structlog.reset_defaults()


async def test_secrets_never_reach_logs_or_responses(
    dev_chain: DevChain, coingecko: CoinGeckoStub, tmp_path: Path
) -> None:
    """Real failing operations — refused intents, a reverted simulation, an unreachable chain, an
    unreachable database, an executor with no gas money, an unexpected error — with structured
    logs on (console and JSON): neither the relayer key, the executor key nor the database
    password appears in a log line or a response."""
    from autometa.chain.sender import TransactionSender
    from autometa.store import Store

    relayer_key = bytes(RELAYER.key).hex()
    executor = Account.create()
    executor_key = bytes(executor.key).hex()
    db_password = "pw-Xq7zSecret"
    rpc_secret = "rpc-K3ySecret"  # an RPC provider's key, in the URL's userinfo and path
    secrets = [relayer_key, executor_key, db_password, rpc_secret]
    texts: list[str] = []
    try:
        for json_logs in (False, True):
            configure_logging("DEBUG", json=json_logs)
            with _captured_stderr() as err:
                api, prefix = await open_api("embedded", dev_chain, coingecko, tmp_path / f"a{json_logs}", None)
                try:
                    deposit(dev_chain, USER, ESCROW)
                    texts += await _failing_requests(api)
                    # the executor's key, with no coin for gas: the node refuses its transaction
                    sender = TransactionSender(api.services.chain.w3, Account.from_key(executor.key))
                    try:
                        await sender.send({"to": RECIPIENT, "value": 1, "gas": 21_000}, "attack-test-no-funds")
                    except Exception as exc:
                        texts.append(repr(exc) + str(exc))
                        structlog.get_logger("test").exception("executor_send_failed")
                    else:
                        raise AssertionError("an unfunded executor's transaction was accepted")
                finally:
                    await close_api(api, prefix)
                # the database password, in a URL that cannot connect
                try:
                    Store.open(f"postgresql+psycopg://autometa:{db_password}@127.0.0.1:1/none")
                except Exception as exc:
                    texts.append(repr(exc) + str(exc))
                    structlog.get_logger("test").exception("store_failed", url_error=str(exc))
                # an unreachable chain, for the relayer (its key is loaded)
                try:
                    rpc = f"http://u:{rpc_secret}@127.0.0.1:1/v3/{rpc_secret}"
                    down, prefix = await open_api(
                        "embedded", dev_chain, coingecko, tmp_path / f"d{json_logs}", None, MOONBASE_RPC=rpc
                    )
                except Exception as exc:
                    texts.append(repr(exc) + str(exc))
                else:
                    try:
                        reply = await down.client.post("/api/workflow/prepare", json=seed_body())
                        texts.append(reply.text)
                        assert reply.status_code == 503, reply.text
                    finally:
                        await close_api(down, prefix)
            texts.append(err.getvalue())
    finally:
        _restore_structlog()
    blob = "\n".join(texts)
    # the capture saw the real failures: refused intents, the node refusing the executor, the
    # database and the chain unreachable, and the relayer's own transactions
    for evidence in (
        "invalid_signature",
        "insufficient_escrow",
        "bad_nonce",
        "tx.broadcast_refused",
        "Insufficient funds",
        "store_failed",
        "OperationalError",
        "chain_unavailable",
        "relayer.sent",
    ):
        assert evidence in blob, evidence
    for secret in secrets:
        assert secret not in blob and secret.upper() not in blob, f"a secret leaked: ...{secret[-6:]}"


async def _failing_requests(api: Api) -> list[str]:
    """Requests that fail at every stage of the relayer; their response bodies."""
    out: list[str] = []
    stranger = Account.create()
    requests: list[tuple[str, Any]] = [
        ("/api/workflow/create", seed_body()),
        ("/api/workflow/create", _signed_create(api, stranger, seed_body())),
        ("/api/workflow/create", _signed_create(api, USER, seed_body(), nonce=9)),
        ("/api/workflow/create", _signed_create(api, USER, seed_body(), fee=1)),  # below the gas: simulated
        ("/api/workflow/prepare", seed_body(stranger.address)),
        ("/api/workflow/999/pause/prepare", {"user_address": USER.address}),
        ("/api/workflow/create", {"user_address": "0x" + bytes(RELAYER.key).hex()}),  # a key in the input
    ]
    for path, body in requests:
        reply = await api.client.post(path, json=body)
        assert 400 <= reply.status_code < 500, (path, reply.text)
        out.append(reply.text)
    # a created workflow, then an op the contract refuses in simulation (the state changed under it)
    wid = (await api.typed.create_signed(USER, seed_body())).workflow_id
    nonce = int(autometa(api.chain.w3, api.chain.deployment.address).functions.nonces(USER.address).call())
    request = _signed_status(api, USER, StatusOp.PAUSE, wid, USER.address, nonce)
    api.chain.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    reply = await api.client.post(f"/api/workflow/{wid}/pause", json=request)
    out.append(reply.text)
    return out


def test_log_redaction_is_the_last_step_for_tracebacks_and_stdlib_records() -> None:
    """A key inside an exception's message (rendered into the traceback) or in a record of a
    stdlib logger (uvicorn, web3, alembic log through `logging`, not structlog) is masked too."""
    key = "0x" + bytes(RELAYER.key).hex()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        for json_logs in (False, True):
            stdlib = io.StringIO()
            root.handlers = [logging.StreamHandler(stdlib)]  # what basicConfig installs in a process
            configure_logging("INFO", json=json_logs)
            with _captured_stderr() as err:
                try:
                    raise ValueError(f"could not use key {key}")
                except ValueError:
                    structlog.get_logger("test").exception("failed_with_key")
                    logging.getLogger("asgi.server").exception("Exception in ASGI application")
                logging.getLogger("web3.providers").warning("request with %s failed", key)
                logging.getLogger("autometa.test").error("key=" + key)
            out = err.getvalue() + stdlib.getvalue()
            assert "failed_with_key" in out and "Exception in ASGI application" in out and "request with" in out
            assert "could not use key" in out and "Traceback" in out
            assert key[2:] not in out and key[2:].upper() not in out, out
    finally:
        _restore_structlog()
        root.handlers, root.level = saved_handlers, saved_level


async def test_two_intents_with_one_nonce_raced_each_get_their_own_answer(funded_any: Api) -> None:
    """The owner signs two different workflows with the same nonce (prepared twice) and both are
    submitted at once: only one can exist. Its caller gets its id; the other caller must not be
    told that *its* workflow was created (it gets a 409), and the relayer sends one transaction."""
    api = funded_any
    first = _signed_create(api, USER, seed_body())
    other_body = seed_body(action_data={"to": RECIPIENT, "amount_wei": "7"})
    second = _signed_create(api, USER, other_body)
    count, _balance, workflows, *_ = _world(api)
    replies = await asyncio.gather(*(api.client.post("/api/workflow/create", json=r) for r in (first, second) * 3))
    core = autometa(api.chain.w3, api.chain.deployment.address)
    created_amount = int(core.functions.getWorkflow(workflows + 1).call()[6][10])
    winners = 0
    for request, reply in zip((first, second) * 3, replies, strict=True):
        if reply.status_code == 200:  # only the created intent's callers, with its id
            assert int(request["action_data"]["amount_wei"]) == created_amount, reply.text
            assert reply.json()["workflow_id"] == workflows + 1, reply.text
            winners += 1
        else:  # the other intent, or a duplicate that came after the transaction was mined
            assert reply.status_code == 409 and reply.json()["field"] == "nonce", reply.text
    assert winners >= 1
    after_count, _, after_workflows, *_ = _world(api)
    assert after_workflows == workflows + 1 and after_count == count + 1


async def test_two_intents_with_one_nonce_while_the_first_is_pending(funded_any: Api) -> None:
    """As above on a chain that does not mine at once: the second intent arrives while the first
    transaction is still pending (its nonce not yet used on-chain) and is refused, not joined."""
    api = funded_any
    first = _signed_create(api, USER, seed_body())
    second = _signed_create(api, USER, seed_body(action_data={"to": RECIPIENT, "amount_wei": "7"}))
    count, _balance, workflows, *_ = _world(api)
    w3 = api.chain.w3
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        task = asyncio.ensure_future(api.client.post("/api/workflow/create", json=first))
        for _ in range(200):  # until the first is broadcast and pending
            if w3.eth.get_transaction_count(RELAYER.address, "pending") > count:
                break
            await asyncio.sleep(0.02)
        assert w3.eth.get_transaction_count(RELAYER.address, "pending") == count + 1
        again = await api.client.post("/api/workflow/create", json=second)
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        reply = await asyncio.wait_for(task, timeout=60)
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    assert reply.status_code == 200 and reply.json()["workflow_id"] == workflows + 1, reply.text
    assert again.status_code == 409 and again.json()["field"] == "nonce", again.text
    after_count, _, after_workflows, *_ = _world(api)
    assert after_workflows == workflows + 1 and after_count == count + 1
