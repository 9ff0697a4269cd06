"""The operator's own subscriptions, from ``NOTIFY_OPERATOR_SUBSCRIPTIONS`` (a JSON list):

    [{"name": "ops-slack", "channel": "apprise", "target": "slack://T000/B000/XXXX",
      "events": ["executor.low_gas", "run.failed"]},
     {"name": "ops-hook", "channel": "webhook", "target": "https://ops.example/hook", "secret": "…"}]

``events`` defaults to every operator event; ``workflow_ids`` (optional) narrows owner events.
Errors name the entry and field, never the target or secret.
"""

from __future__ import annotations

import json
from typing import Any

from autometa.notify.targets import TargetError, check_apprise_url, check_email, check_webhook_url, hint
from autometa.store.notifications import CHANNELS, EVENT_KINDS, OPERATOR_EVENTS

MIN_SECRET_CHARS = 16


def check_target(channel: str, target: str, secret: str | None, *, operator: bool) -> str:
    """Validate one target; returns it normalised. Raises TargetError (a ValueError)."""
    if channel == "webhook":
        check_webhook_url(target)
        if not secret or len(secret) < MIN_SECRET_CHARS:
            raise TargetError(f"a webhook needs a secret of at least {MIN_SECRET_CHARS} characters")
        return target
    if channel == "email":
        return check_email(target)
    if channel == "apprise":
        check_apprise_url(target, operator=operator)
        return target
    raise TargetError(f"channel must be one of {', '.join(CHANNELS)}")


def parse_operator_subscriptions(raw: str, *, runway_runs: int = 3, runway_days: float = 1.0) -> list[dict[str, Any]]:
    """The entries, checked; ``runway_*``: the thresholds of entries that set none
    (NOTIFY_RUNWAY_RUNS / NOTIFY_RUNWAY_DAYS)."""
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(items, list):
        raise ValueError("must be a JSON list of subscriptions")
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, item in enumerate(items):
        where = f"entry {i}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: must be an object")
        unknown = set(item) - {
            "name",
            "channel",
            "target",
            "secret",
            "events",
            "workflow_ids",
            "runway_runs",
            "runway_days",
        }
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        name = item.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 64:
            raise ValueError(f"{where}: name must be a string of 1-64 characters")
        if name in names:
            raise ValueError(f"{where}: name {name!r} is used twice")
        names.add(name)
        where = f"entry {i} ({name})"
        channel, target, secret = item.get("channel"), item.get("target"), item.get("secret")
        if channel not in CHANNELS:
            raise ValueError(f"{where}: channel must be one of {', '.join(CHANNELS)}")
        if not isinstance(target, str) or not target:
            raise ValueError(f"{where}: target must be a non-empty string")
        if secret is not None and not isinstance(secret, str):
            raise ValueError(f"{where}: secret must be a string")
        try:
            target = check_target(channel, target, secret, operator=True)
        except TargetError as exc:
            raise ValueError(f"{where}: target: {exc}") from None
        events = item.get("events", sorted(OPERATOR_EVENTS))
        if not isinstance(events, list) or not events or any(e != "*" and e not in EVENT_KINDS for e in events):
            raise ValueError(f"{where}: events must be a non-empty list of: *, {', '.join(EVENT_KINDS)}")
        wids = item.get("workflow_ids")
        if wids is not None and (not isinstance(wids, list) or not all(isinstance(w, int) and w > 0 for w in wids)):
            raise ValueError(f"{where}: workflow_ids must be a list of positive integers")
        runs, days = item.get("runway_runs", runway_runs), item.get("runway_days", runway_days)
        if isinstance(runs, bool) or not isinstance(runs, int) or runs < 0:
            raise ValueError(f"{where}: runway_runs must be a non-negative integer")
        if isinstance(days, bool) or not isinstance(days, int | float) or days < 0:
            raise ValueError(f"{where}: runway_days must be a non-negative number")
        out.append(
            {
                "name": name,
                "channel": channel,
                "target": target,
                "secret": secret,
                "events": events,
                "workflow_ids": wids,
                "target_hint": hint(channel, target),
                "runway_runs": runs,
                "runway_days": float(days),
            }
        )
    return out
