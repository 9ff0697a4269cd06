"""Workflows as a person reads them, `workflow create` flags as the workflow JSON, and the
relayer's refusals as one sentence."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from autometa.chain.sentences import coin
from autometa.cli.common import EXIT_FAILED, EXIT_USAGE, BadInput, CliError
from autometa.domain.kinds import UINT32_MAX, TriggerType
from autometa.domain.triggers import get_kind


def _when(ts: int | None) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "-"


def _usd(value: Any) -> str:
    return "$" + format(Decimal(str(value)).normalize(), "f")


def describe_trigger(kind: int, data: dict[str, Any]) -> str:
    if kind == 0:
        return f"at {_when(data['at'])}"
    if kind == 1:
        text = f"every {data['interval']} s"
        if data.get("start"):
            text += f" from {_when(data['start'])}"
        if data.get("end"):
            text += f" until {_when(data['end'])}"
        return text
    if kind == TriggerType.PRICE:
        side = "below" if int(data["comparator"]) == 0 else "above"
        text = f"when {data['token']} is {side} {_usd(data['price_usd'])}"
        if data.get("cooldown"):
            text += f" (at most every {data['cooldown']} s)"
        return text
    # any other kind says itself (the registry's one line): no kind is read as another
    trigger = get_kind(kind)
    return trigger.describe(trigger.data_model.model_validate(data))


def describe_action(kind: int, data: dict[str, Any]) -> str:
    if kind == 0:
        return f"send {coin(int(data['amount_wei']))} to {data['to']}"
    if kind == 1:
        return f"send {data['amount']} units of ERC-20 {data['token']} to {data['to']}"
    size = (len(data.get("data", "0x")) - 2) // 2
    value = int(data.get("value_wei", 0))
    return f"call {data['target']} ({size} bytes of calldata" + (f", {coin(value)})" if value else ")")


def describe_runs(run_count: int, max_runs: int) -> str:
    return f"{run_count} run(s), no limit" if max_runs >= UINT32_MAX else f"{run_count} of {max_runs} run(s)"


def describe_row(row: dict[str, Any], detail: bool = False) -> str:
    """One workflow (`workflow_commands.view_to_dict`) in one line, or a few with `detail`."""
    spec = row["spec"]
    trigger = describe_trigger(int(spec["trigger_type"]), spec["trigger_data"])
    action = describe_action(int(spec["action_type"]), spec["action_data"])
    runs = describe_runs(int(row["run_count"]), int(spec["max_runs"]))
    line = f"#{row['id']:<5} {row['status']:<10} {trigger} → {action}; {runs}"
    if not detail:
        return line
    fee = coin(int(spec["max_fee_per_run_wei"]))
    return "\n".join(
        [
            line,
            f"  owner      {row['owner']}",
            f"  last run   {_when(row['last_run'])}",
            f"  failures   {row['failures']}",
            f"  gas limit  {spec['gas_limit']}; at most {fee} fee per run",
        ]
    )


def resolve_relative(data: dict[str, Any], now: int | None) -> dict[str, Any]:
    """`"at": "+60"` → 60 s after the chain's time (or this machine's, through a relayer)."""
    trigger = data.get("trigger_data")
    if isinstance(trigger, dict) and isinstance(trigger.get("at"), str) and trigger["at"].startswith("+"):
        offset = trigger["at"][1:]
        if not (offset.isascii() and offset.isdigit()):
            raise BadInput(f"trigger_data.at: {trigger['at']!r} is neither unix seconds nor +SECONDS")
        base = now if now is not None else int(time.time())
        data = {**data, "trigger_data": {**trigger, "at": base + int(offset)}}
    return data


def spec_from_flags(
    *,
    token: str | None,
    below: str | None,
    above: str | None,
    at: str | None,
    every: int | None,
    send: str | None,
    cron: str | None = None,
    to: str | None,
    max_runs: int | None,
) -> dict[str, Any]:
    """The workflow JSON for the common cases, so that JSON is optional."""
    from autometa.cli.common import parse_coin

    triggers = [
        name
        for name, given in (("price", token or below or above), ("time", at), ("interval", every), ("cron", cron))
        if given is not None
    ]
    if len(triggers) != 1:
        raise BadInput(
            "name one trigger: --token T with --below/--above USD, --at TIME, --every SECONDS or --cron 'SPEC'"
        )
    trigger: dict[str, Any]
    if triggers[0] == "price":
        if token is None or (below is None) == (above is None):
            raise BadInput("a price trigger needs --token and exactly one of --below / --above")
        trigger = {
            "token": token,
            "comparator": "below" if below is not None else "above",
            "price_usd": below if below is not None else above,
        }
    elif triggers[0] == "time":
        trigger = {"at": at if str(at).startswith("+") else _int(str(at), "--at")}
    elif triggers[0] == "cron":
        trigger = {"spec": cron}
    else:
        trigger = {"interval": every}
    if send is None or to is None:
        raise BadInput("the action needs --send AMOUNT (coins) and --to ADDRESS (ERC-20 and calls: use JSON)")
    data: dict[str, Any] = {
        "trigger_type": triggers[0],
        "trigger_data": trigger,
        "action_type": "native",
        "action_data": {"to": to, "amount_wei": str(parse_coin(send, wei=False))},
    }
    if max_runs is not None:
        data["max_runs"] = max_runs
    return data


def _int(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise BadInput(f"{name}: {text!r} is neither unix seconds nor +SECONDS")
    return int(text)


def relayer_refused(response: httpx.Response) -> CliError:
    """The relayer's refusal as its own sentence (never raw JSON); bad input exits 2."""
    try:
        body = response.json()
        message = str(body.get("message") or body.get("detail") or body)
    except ValueError:
        message = response.text.strip()[:300] or response.reason_phrase
    code = EXIT_USAGE if response.status_code in (400, 422) else EXIT_FAILED
    return CliError(f"the relayer refused ({response.status_code}): {message}", code)
