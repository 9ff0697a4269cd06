"""`autometa workflow create|list|show|pause|resume|cancel|kinds` — signed with the user's key."""

from __future__ import annotations

import time
from typing import Annotated, Any

import httpx
import typer
from web3.logs import DISCARD

from autometa.chain.deploy import transact
from autometa.cli.common import (
    AsOpt,
    BadInput,
    CliError,
    chain_context,
    console,
    emit,
    handle_errors,
    load_key,
    progress,
    read_json_arg,
    resolve_relayer,
)
from autometa.cli.workflow_text import describe_row, relayer_refused, resolve_relative, spec_from_flags
from autometa.domain.eip712 import sign_typed_data
from autometa.domain.kinds import Status, StatusOp
from autometa.domain.triggers import all_kinds
from autometa.domain.types import check_address
from autometa.domain.workflow import WorkflowSpec, unsupported_token

app = typer.Typer(help="Create and manage your workflows.", no_args_is_help=True)

RpcOpt = Annotated[str | None, typer.Option(help="JSON-RPC endpoint (default: MOONBASE_RPC)")]
KeyOpt = Annotated[str | None, typer.Option(help="your private key (default: $USER_PRIVATE_KEY)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
RelayOpt = Annotated[
    str | None,
    typer.Option(
        help="send through this backend's relayer (http://host:8000, or `up`: the running "
        "`autometa up`'s) instead of directly"
    ),
]


def view_to_dict(view: Any) -> dict[str, Any]:
    wid, owner, status, run_count, last_run, failures, spec = view
    return {
        "id": wid,
        "owner": owner,
        "status": Status(status).label,
        "run_count": run_count,
        "last_run": last_run or None,
        "failures": failures,
        "spec": WorkflowSpec.from_abi(spec).model_dump(mode="json"),
    }


@app.command()
@handle_errors
def create(
    body: Annotated[
        str | None,
        typer.Argument(help="the workflow as JSON (README: workflow JSON), or @file.json; or use the flags"),
    ] = None,
    token: Annotated[str | None, typer.Option(help="price trigger: the asset id, e.g. ethereum")] = None,
    below: Annotated[str | None, typer.Option(help="price trigger: fire when the price is below this USD")] = None,
    above: Annotated[str | None, typer.Option(help="price trigger: fire when the price is above this USD")] = None,
    at: Annotated[str | None, typer.Option(help="time trigger: unix seconds, or +SECONDS from now")] = None,
    every: Annotated[int | None, typer.Option(min=1, help="interval trigger: every this many seconds")] = None,
    cron: Annotated[str | None, typer.Option(help="cron trigger: five fields in UTC, e.g. '0 9 * * 1-5'")] = None,
    send: Annotated[str | None, typer.Option(help="action: send this many coins (with --to)")] = None,
    to: Annotated[str | None, typer.Option(help="action: the recipient of --send")] = None,
    max_runs: Annotated[int | None, typer.Option(min=1, help="at most this many runs")] = None,
    rpc_url: RpcOpt = None,
    key: KeyOpt = None,
    relayer: RelayOpt = None,
    as_json: JsonOpt = False,
    as_role: AsOpt = None,
) -> None:
    """Create a workflow owned by your key: JSON, or flags for the common cases
    (`--token ethereum --below 3200 --send 1 --to 0x…`, `--every 3600 --send 0.1 --to 0x…`,
    `--cron '0 9 * * 1-5' --send 0.1 --to 0x…`)."""
    if body is not None:
        if any(v is not None for v in (token, below, above, at, every, cron, send, to)):
            raise BadInput("give the workflow as JSON or as flags, not both")
        data = read_json_arg(body)
        if not isinstance(data, dict):
            raise BadInput("the workflow must be a JSON object")
        if max_runs is not None:
            data["max_runs"] = max_runs
    else:
        data = spec_from_flags(
            token=token, below=below, above=above, at=at, every=every, cron=cron, send=send, to=to, max_runs=max_runs
        )
    data.pop("user_address", None)
    spec = WorkflowSpec.model_validate(resolve_relative(data, None))  # bad input is said before any connection
    account = load_key(key, as_role=as_role)
    relayer = resolve_relayer(relayer)
    if relayer:
        result = _create_via_relayer(relayer, account, spec)
    else:
        ctx = chain_context(rpc_url)
        now = int(ctx.w3.eth.get_block("latest")["timestamp"])
        spec = WorkflowSpec.model_validate(resolve_relative(data, now))
        problem = unsupported_token(spec, ctx.settings.SUPPORTED_ASSETS)  # the relayer's check, same words
        if problem:
            raise BadInput(f"trigger_data.token: {problem}")
        spec.check_times(now)
        with progress("creating workflow…"):
            receipt = transact(ctx.w3, account, ctx.core.functions.createWorkflow(spec.to_abi()))
        (event,) = ctx.core.events.WorkflowCreated().process_receipt(receipt, errors=DISCARD)
        result = {"workflow_id": event.args.workflowId, "tx_hash": "0x" + receipt["transactionHash"].hex()}
    emit(
        result,
        as_json,
        lambda: console.print(f"created workflow {result['workflow_id']} (tx {result['tx_hash']})", highlight=False),
    )


def _create_via_relayer(base_url: str, account: Any, spec: WorkflowSpec) -> dict[str, Any]:
    body = {"user_address": account.address, **spec.model_dump(mode="json", exclude_none=True)}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        prepared = client.post("/api/workflow/prepare", json=body)
        if prepared.status_code != 200:
            raise relayer_refused(prepared)
        typed = prepared.json()["typed_data"]
        signature = sign_typed_data(account, typed)
        message = typed["message"]
        created = client.post(
            "/api/workflow/create",
            json={
                **body,
                "signature": signature,
                "nonce": message["nonce"],
                "deadline": message["deadline"],
                "max_relayer_fee_wei": str(message["maxRelayerFee"]),
            },
        )
        if created.status_code not in (200, 202):
            raise relayer_refused(created)
        return _follow_relayed(client, created)


FOLLOW_TIMEOUT_S = 300.0


def _follow_relayed(client: httpx.Client, reply: httpx.Response) -> dict[str, Any]:
    """A 200 as it is; a 202 (sent, not mined yet) followed on its status URL until mined."""
    result: dict[str, Any] = reply.json()
    if reply.status_code != 202:
        return result
    console.print(f"submitted, tx {result['tx_hash']}, waiting for it to be mined…", highlight=False)
    deadline = time.monotonic() + FOLLOW_TIMEOUT_S
    while result.get("state") == "pending" and time.monotonic() < deadline:
        time.sleep(1.0)
        try:
            status = client.get(result["status_url"])
        except httpx.TransportError:
            continue
        if status.status_code == 200:
            result = {**status.json(), "status_url": result["status_url"]}
    if result.get("state") == "pending":
        raise CliError(
            f"sent as tx {result['tx_hash']} but not mined after {FOLLOW_TIMEOUT_S:.0f} s; "
            f"its state: GET {result['status_url']}"
        )
    if result.get("state") != "mined":
        raise CliError(f"tx {result['tx_hash']} {result.get('state')}: {result.get('message', '')}")
    if result.get("workflow_status"):
        result["status"] = result["workflow_status"]
    return result


@app.command()
@handle_errors
def kinds(as_json: JsonOpt = False) -> None:
    """The trigger kinds (`trigger_type`, by name or number) and their `trigger_data` fields."""
    rows: list[dict[str, Any]] = [
        {
            "name": k.name,
            "code": k.code,
            "label": k.label,
            "creatable": k.needs_contract is None,
            "fields": [f for f in k.data_model.model_fields if f != "kind_"],
            **({"needs": k.needs_contract} if k.needs_contract else {}),
        }
        for k in all_kinds()
    ]

    def human() -> None:
        for r in rows:
            note = "" if r["creatable"] else f"  (not yet: needs {r['needs']})"
            console.print(f"{r['code']}  {r['name']:<9} {r['label']}: {', '.join(r['fields'])}{note}", highlight=False)

    emit(rows, as_json, human)


@app.command("list")
@handle_errors
def list_(
    owner: Annotated[str | None, typer.Option(help="whose workflows (default: your key's address)")] = None,
    offset: int = 0,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    rpc_url: RpcOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    as_role: AsOpt = None,
) -> None:
    """List a user's workflows (read from the chain)."""
    who = check_address(owner) if owner else load_key(key, as_role=as_role).address
    ctx = chain_context(rpc_url)
    rows = [view_to_dict(v) for v in ctx.core.functions.workflowsOf(who, offset, limit).call()]

    def human() -> None:
        if not rows:
            console.print(f"{who} has no workflows", highlight=False)
        for row in rows:
            console.print(describe_row(row), highlight=False)

    emit(rows, as_json, human)


@app.command()
@handle_errors
def show(workflow_id: int, rpc_url: RpcOpt = None, as_json: JsonOpt = False) -> None:
    """Show one workflow."""
    ctx = chain_context(rpc_url)
    row = view_to_dict(ctx.core.functions.getWorkflow(workflow_id).call())
    emit(row, as_json, lambda: console.print(describe_row(row, detail=True), highlight=False))


def _change(
    op: StatusOp,
    workflow_id: int,
    rpc_url: str | None,
    key: str | None,
    relayer: str | None,
    as_json: bool,
    as_role: str | None = None,
) -> None:
    account = load_key(key, as_role=as_role)
    relayer = resolve_relayer(relayer)
    name = op.name.lower()
    if relayer:
        result = _change_via_relayer(relayer, account, op, workflow_id)
    else:
        ctx = chain_context(rpc_url)
        fn = {StatusOp.PAUSE: "pauseWorkflow", StatusOp.RESUME: "resumeWorkflow", StatusOp.CANCEL: "cancelWorkflow"}[op]
        with progress(f"{name} workflow {workflow_id}…"):
            receipt = transact(ctx.w3, account, getattr(ctx.core.functions, fn)(workflow_id))
        status = Status(ctx.core.functions.getWorkflow(workflow_id).call()[2]).label
        result = {"workflow_id": workflow_id, "status": status, "tx_hash": "0x" + receipt["transactionHash"].hex()}
    emit(
        result,
        as_json,
        lambda: console.print(
            f"workflow {workflow_id}: {result.get('status', name)} (tx {result.get('tx_hash', '?')})", highlight=False
        ),
    )


def _change_via_relayer(base_url: str, account: Any, op: StatusOp, workflow_id: int) -> dict[str, Any]:
    name = op.name.lower()
    with httpx.Client(base_url=base_url, timeout=30) as client:
        prepared = client.post(f"/api/workflow/{workflow_id}/{name}/prepare", json={"user_address": account.address})
        if prepared.status_code != 200:
            raise relayer_refused(prepared)
        typed = prepared.json()["typed_data"]
        message = typed["message"]
        reply = client.post(
            f"/api/workflow/{workflow_id}/{name}",
            json={
                "user_address": account.address,
                "signature": sign_typed_data(account, typed),
                "nonce": message["nonce"],
                "deadline": message["deadline"],
                "max_relayer_fee_wei": str(message["maxRelayerFee"]),
            },
        )
        if reply.status_code not in (200, 202):
            raise relayer_refused(reply)
        return _follow_relayed(client, reply)


@app.command()
@handle_errors
def pause(
    workflow_id: int,
    rpc_url: RpcOpt = None,
    key: KeyOpt = None,
    relayer: RelayOpt = None,
    as_json: JsonOpt = False,
    as_role: AsOpt = None,
) -> None:
    """Pause one of your workflows."""
    _change(StatusOp.PAUSE, workflow_id, rpc_url, key, relayer, as_json, as_role)


@app.command()
@handle_errors
def resume(
    workflow_id: int,
    rpc_url: RpcOpt = None,
    key: KeyOpt = None,
    relayer: RelayOpt = None,
    as_json: JsonOpt = False,
    as_role: AsOpt = None,
) -> None:
    """Resume one of your paused workflows."""
    _change(StatusOp.RESUME, workflow_id, rpc_url, key, relayer, as_json, as_role)


@app.command()
@handle_errors
def cancel(
    workflow_id: int,
    rpc_url: RpcOpt = None,
    key: KeyOpt = None,
    relayer: RelayOpt = None,
    as_json: JsonOpt = False,
    as_role: AsOpt = None,
) -> None:
    """Cancel one of your workflows for good."""
    _change(StatusOp.CANCEL, workflow_id, rpc_url, key, relayer, as_json, as_role)
