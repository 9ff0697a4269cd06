"""`autometa notify …` — subscribe (signed with your key, through the API), list, read the delivery
log, re-send, and run a delivery worker of your own (`deliver`)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import httpx
import typer

from autometa.cli.common import CliError, console, emit, handle_errors, load_key, settings_with
from autometa.domain.eip712 import sign_typed_data

app = typer.Typer(help="Notifications: subscriptions, delivery log, re-send, delivery worker.", no_args_is_help=True)

ApiOpt = Annotated[str, typer.Option("--api", help="the Autometa API (for signed changes)")]
KeyOpt = Annotated[str | None, typer.Option(help="your private key (default: $USER_PRIVATE_KEY)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _store() -> Any:
    from autometa.store import Store

    return Store.open(settings_with(None).database_url)


def _signed(client: httpx.Client, prepare: str, prepare_body: dict[str, Any], account: Any) -> dict[str, Any]:
    prepared = client.post(prepare, json=prepare_body)
    if prepared.status_code != 200:
        raise CliError(f"the API refused: {prepared.status_code} {_reason(prepared)}")
    data = prepared.json()
    return {
        "signature": sign_typed_data(account, data["typed_data"]),
        "nonce": data["nonce"],
        "deadline": data["deadline"],
    }


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", response.text))
    except ValueError:
        return response.text[:200]


@app.command()
@handle_errors
def subscribe(
    channel: Annotated[str, typer.Option(help="webhook | email | apprise")],
    target: Annotated[str, typer.Option(help="webhook URL, email address, or apprise URL (slack://, tgram://…)")],
    events: Annotated[str, typer.Option(help="comma-separated event kinds, or *")] = "*",
    secret: Annotated[str | None, typer.Option(help="webhook signing secret (≥ 16 characters)")] = None,
    workflows: Annotated[str | None, typer.Option(help="comma-separated workflow ids (default: all yours)")] = None,
    runway_runs: Annotated[int, typer.Option(help="escrow.runway_low below this many runs")] = 3,
    runway_days: Annotated[float, typer.Option(help="… or below this many days")] = 1.0,
    name: Annotated[str, typer.Option(help="a name for it")] = "",
    api: ApiOpt = "http://localhost:8000",
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Subscribe your workflows' events to a channel (signed with your key)."""
    account = load_key(key)
    body: dict[str, Any] = {
        "owner": account.address,
        "channel": channel,
        "target": target,
        "secret": secret,
        "events": [e.strip() for e in events.split(",") if e.strip()],
        "workflow_ids": [int(w) for w in workflows.split(",")] if workflows else None,
        "runway_runs": runway_runs,
        "runway_days": runway_days,
        "name": name,
    }
    with httpx.Client(base_url=api, timeout=30) as client:
        signed = _signed(client, "/api/notifications/subscriptions/prepare", body, account)
        reply = client.post("/api/notifications/subscriptions", json=body | signed)
    if reply.status_code != 201:
        raise CliError(f"the API refused: {reply.status_code} {_reason(reply)}")
    sub = reply.json()
    emit(sub, as_json, lambda: console.print(f"subscription {sub['id']}: {sub['channel']} → {sub['target_hint']}"))


@app.command()
@handle_errors
def unsubscribe(
    subscription_id: int, api: ApiOpt = "http://localhost:8000", key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """Delete one of your subscriptions (signed with your key)."""
    account = load_key(key)
    owner = {"owner": account.address}
    with httpx.Client(base_url=api, timeout=30) as client:
        signed = _signed(client, f"/api/notifications/subscriptions/{subscription_id}/delete/prepare", owner, account)
        reply = client.request("DELETE", f"/api/notifications/subscriptions/{subscription_id}", json=owner | signed)
    if reply.status_code != 200:
        raise CliError(f"the API refused: {reply.status_code} {_reason(reply)}")
    emit(reply.json(), as_json, lambda: console.print(f"subscription {subscription_id}: deleted"))


@app.command("list")
@handle_errors
def list_(
    owner: Annotated[str | None, typer.Argument(help="an owner's address (default: the operator's)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Subscriptions in the store: an owner's, or the operator's from the configuration."""
    from autometa.api.routes.notifications import subscription_view

    with _store() as store:
        subs = store.notifications.list_subscriptions(owner=owner, operator=owner is None)
    rows = [subscription_view(s).model_dump(mode="json") for s in subs]

    def human() -> None:
        for r in rows:
            console.print(
                f"{r['id']:>5}  {r['name']:<20} {r['channel']:<8} {r['target_hint']:<40} {','.join(r['events'])}",
                highlight=False,
            )
        if not rows:
            console.print("no subscriptions")

    emit(rows, as_json, human)


@app.command()
@handle_errors
def deliveries(
    subscription_id: int,
    status: Annotated[str | None, typer.Option(help="pending | delivered | dead | cancelled")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The delivery log of a subscription, newest first."""
    from autometa.api.routes.notifications import delivery_view

    with _store() as store:
        page = store.notifications.deliveries(subscription_id, status=status, limit=limit)
    rows = [delivery_view(d, e).model_dump(mode="json", exclude={"event"}) for d, e in page.items]

    def human() -> None:
        for r in rows:
            console.print(
                f"{r['id']:>6}  {r['status']:<9} tries {r['attempts']:<3} {r['event_type']:<22} "
                f"{r['last_error'] or ''}",
                highlight=False,
            )
        console.print(f"{page.total} deliveries")

    emit({"total": page.total, "deliveries": rows}, as_json, human)


@app.command()
@handle_errors
def resend(delivery_id: int, as_json: JsonOpt = False) -> None:
    """Deliver again (operator: straight in the store; owners use the API)."""
    with _store() as store:
        if not store.notifications.resend(delivery_id):
            raise CliError(f"delivery {delivery_id} does not exist or its subscription was deleted")
    emit(
        {"delivery_id": delivery_id, "status": "pending"},
        as_json,
        lambda: console.print(f"delivery {delivery_id}: queued again"),
    )


@app.command()
@handle_errors
def status(as_json: JsonOpt = False) -> None:
    """Deliveries by status (pending, due now, delivered, dead): what to watch when on call."""
    with _store() as store:
        counts = store.notifications.counts()
    emit(counts, as_json, lambda: console.print("  ".join(f"{k} {v}" for k, v in counts.items())))


@app.command()
@handle_errors
def deliver(
    chain_id: Annotated[
        int | None, typer.Option(help="the chain of the operator's subscriptions (default: ask RPC)")
    ] = None,
) -> None:
    """Run a delivery worker (any number may run beside `autometa api`; each row goes to one)."""
    from autometa.cli.common import stop_on_signals
    from autometa.logs import configure_logging
    from autometa.notify.service import build_worker, serve

    settings = settings_with(None)
    configure_logging(settings.LOG_LEVEL, settings.LOG_JSON)
    known = chain_id or settings.expected_chain_id

    async def ask_chain() -> int:
        from autometa.chain.web3 import connect_async

        return int(await connect_async(settings.rpc_url).eth.chain_id)

    async def main() -> None:
        with _store() as store:
            stop = stop_on_signals()
            await serve(
                settings, store, stop, known if known is not None else ask_chain, worker=build_worker(settings, store)
            )

    asyncio.run(main())
