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

import aiohttp

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
    host name for the Host header and for TLS (SNI and the certificate check). aiohttp rather
    than httpx here: on this 2-core machine httpx's async pool managed ~160 webhooks/s against
    aiohttp's ~1,200/s, and the delivery p99 target needs the headroom (bench/notify.py)."""

    def __init__(self, guard: AddressGuard, *, timeout_s: float, max_response_bytes: int) -> None:
        self.guard, self.timeout_s, self.max_response_bytes = guard, timeout_s, max_response_bytes
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, limit_per_host=64, use_dns_cache=False),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                trust_env=False,
                auto_decompress=False,
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, url: str, secret: str, event_id: str, kind: str, body: bytes) -> Result:
        hidden = [url, secret]
        try:
            return await asyncio.wait_for(self._send(url, secret, event_id, kind, body), self.timeout_s)
        except TimeoutError:
            return Result(False, None, f"timed out after {self.timeout_s:g} s (slow receiver)")
        except TargetError as exc:
            return Result(False, None, scrub(str(exc), hidden))
        except aiohttp.ClientError as exc:
            reason = str(exc) or type(exc).__name__
            return Result(False, None, scrub(f"unreachable: {type(exc).__name__}: {reason}", hidden))
        except OSError as exc:
            return Result(False, None, scrub(f"unreachable: {exc}", hidden))

    async def _send(self, url: str, secret: str, event_id: str, kind: str, body: bytes) -> Result:
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            parts = urlsplit(current)
            host = parts.hostname or ""
            if parts.scheme not in ("http", "https") or not host:
                raise TargetError("a redirect pointed to a non-HTTP location: refused")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            try:
                ip = await self.guard.resolve(host, port)
            except TargetError as exc:
                if hop:
                    raise TargetError(f"redirect refused: {exc}") from None
                raise
            headers = signed_headers(secret, event_id, kind, body)
            headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
            literal = f"[{ip}]" if ip.version == 6 else str(ip)
            target = parts._replace(netloc=f"{literal}:{port}").geturl()
            extra: dict[str, Any] = {"server_hostname": host} if parts.scheme == "https" else {}
            async with self._client().post(
                target, data=body, headers=headers, allow_redirects=False, **extra
            ) as response:
                declared = response.content_length
                too_big = declared is not None and declared > self.max_response_bytes
                if not too_big:
                    answer = await response.content.read(self.max_response_bytes + 1)
                    too_big = len(answer) > self.max_response_bytes
                status, reason = response.status, response.reason or ""
                location = response.headers.get("Location")
            if too_big:
                return Result(False, status, f"response larger than {self.max_response_bytes} bytes: refused")
            if status in (301, 302, 303, 307, 308):
                if not location:
                    return Result(False, status, f"HTTP {status} without a Location")
                current = urljoin(current, location)
                continue
            if 200 <= status < 300:
                return Result(True, status)
            return Result(False, status, f"HTTP {status} {reason}".strip())
        return Result(False, None, f"more than {MAX_REDIRECTS} redirects")


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
