"""Sending one notification: signed webhooks over httpx, everything else through Apprise.

Each sender returns a ``Result`` and never raises for a bad target: an unreachable host, an
error status, a slow receiver, a redirect to a refused address and an oversize answer all come
back as a reason, written to the delivery log with secrets scrubbed.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from autometa.notify.signing import signed_headers
from autometa.notify.targets import SCRUBBER, AddressGuard, TargetError, scrub

MAX_REDIRECTS = 3


@dataclass(frozen=True)
class Result:
    ok: bool
    status_code: int | None = None
    error: str | None = None


def body_of(payload: dict[str, Any]) -> bytes:
    """The webhook body: the event as compact JSON with sorted keys (stable across retries)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def summary(payload: dict[str, Any]) -> tuple[str, str]:
    """Title and text for chat and email channels."""
    kind, data = payload.get("type", "event"), payload.get("data") or {}
    wid = payload.get("workflow_id")
    title = f"Autometa: {kind}" + (f" (workflow {wid})" if wid is not None else "")
    lines = [f"{k}: {v}" for k, v in sorted(data.items()) if v is not None]
    lines.append(f"chain {payload.get('chain_id')} · {payload.get('occurred_at')} · id {payload.get('id')}")
    return title, "\n".join(lines)


class WebhookSender:
    """POSTs signed events. Connections go to the address the guard checked, with the original
    host name for the Host header and TLS (SNI and certificate check)."""

    def __init__(self, guard: AddressGuard, *, timeout_s: float, max_response_bytes: int) -> None:
        self.guard, self.timeout_s, self.max_response_bytes = guard, timeout_s, max_response_bytes
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s), follow_redirects=False, trust_env=False,
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )  # fmt: skip

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(self, url: str, secret: str, event_id: str, kind: str, body: bytes) -> Result:
        try:
            return await asyncio.wait_for(self._send(url, secret, event_id, kind, body), self.timeout_s)
        except TimeoutError:
            return Result(False, None, f"timed out after {self.timeout_s:g} s (slow receiver)")
        except TargetError as exc:
            return Result(False, None, scrub(str(exc), [url, secret]))
        except httpx.TimeoutException:
            return Result(False, None, f"timed out after {self.timeout_s:g} s (slow receiver)")
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            return Result(False, None, scrub(f"unreachable: {type(exc).__name__}: {reason}", [url, secret]))
        except OSError as exc:
            return Result(False, None, scrub(f"unreachable: {exc}", [url, secret]))

    async def _send(self, url: str, secret: str, event_id: str, kind: str, body: bytes) -> Result:
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            parts = httpx.URL(current)
            if parts.scheme not in ("http", "https") or not parts.host:
                raise TargetError("a redirect pointed to a non-HTTP location: refused")
            try:
                ip = await self.guard.resolve(parts.host, parts.port or (443 if parts.scheme == "https" else 80))
            except TargetError as exc:
                if hop:
                    raise TargetError(f"redirect refused: {exc}") from None
                raise
            headers = signed_headers(secret, event_id, kind, body)
            headers["Host"] = parts.netloc.decode()
            extensions = {"sni_hostname": parts.host} if parts.scheme == "https" else {}
            request = self.client.build_request(
                "POST", parts.copy_with(host=str(ip)), content=body, headers=headers, extensions=extensions
            )
            response = await self.client.send(request, stream=True)
            try:
                too_big = await self._drain(response)
            finally:
                await response.aclose()
            if too_big:
                return Result(False, response.status_code,
                              f"response larger than {self.max_response_bytes} bytes: refused")  # fmt: skip
            if response.is_redirect:
                location = response.headers.get("location")
                if not location:
                    return Result(False, response.status_code, f"HTTP {response.status_code} without a Location")
                current = urljoin(current, location)
                continue
            if response.is_success:
                return Result(True, response.status_code)
            return Result(False, response.status_code, f"HTTP {response.status_code} {response.reason_phrase}")
        return Result(False, None, f"more than {MAX_REDIRECTS} redirects")

    async def _drain(self, response: httpx.Response) -> bool:
        """Read at most the allowed bytes of the answer; True if it is larger."""
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_response_bytes:
            return True
        seen = 0
        async for chunk in response.aiter_raw():
            seen += len(chunk)
            if seen > self.max_response_bytes:
                return True
        return False


class AppriseSender:
    """Email (through the operator's SMTP URL), Slack, Discord, Telegram and the rest Apprise
    supports. Apprise is synchronous: each send runs in a worker thread, bounded by a timeout."""

    def __init__(self, *, timeout_s: float, smtp_url: str | None = None) -> None:
        self.timeout_s, self.smtp_url = timeout_s, smtp_url
        SCRUBBER.remember(smtp_url)

    def email_url(self, address: str) -> str:
        if not self.smtp_url:
            raise TargetError("email is not offered by this deployment (the operator has not set NOTIFY_SMTP_URL)")
        sep = "&" if urlsplit(self.smtp_url).query else "?"
        return self.smtp_url + sep + urlencode({"to": address})

    async def send(self, url: str, payload: dict[str, Any], secrets: list[str | None]) -> Result:
        title, text = summary(payload)
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._notify, url, title, text, secrets), self.timeout_s)
        except TimeoutError:
            return Result(False, None, f"timed out after {self.timeout_s:g} s")

    def _notify(self, url: str, title: str, text: str, secrets: list[str | None]) -> Result:
        import apprise

        hidden = [url, self.smtp_url, *secrets]
        try:
            notifier = apprise.Apprise()
            if not notifier.add(url):
                return Result(False, None, "apprise does not understand the target URL")
            with apprise.LogCapture(level=apprise.logging.WARNING) as logs:  # type: ignore[no-untyped-call]
                ok = notifier.notify(title=title, body=text)
                captured = logs.getvalue() if hasattr(logs, "getvalue") else ""
        except Exception as exc:  # apprise plugins raise what their libraries raise
            return Result(False, None, scrub(f"{type(exc).__name__}: {exc}", hidden))
        if ok:
            return Result(True)
        last = [line for line in str(captured).splitlines() if line.strip()][-2:]
        return Result(False, None, scrub("; ".join(last) or "apprise reported a failure", hidden))
