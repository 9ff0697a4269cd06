"""Where notifications may go, and how a target is shown without its secrets.

A webhook URL is resolved before every connection (and every redirect hop) and refused when any
of its addresses is private, loopback, link-local or otherwise not globally routable, unless
the operator allowed that range (``NOTIFY_ALLOW_PRIVATE_TARGETS``): owners must not be able to
make the server probe its own network. The connection then goes to the checked address, so a
DNS answer that changes between check and connect cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_TARGET_CHARS = 2048
# Apprise schemas an owner may use (their own Slack/Discord/Telegram/… credentials). Generic
# HTTP schemas (json://, form://, xml://) would bypass the webhook's address checks: owners use
# the webhook channel for those; the operator's own subscriptions may use any schema.
OWNER_APPRISE_SCHEMAS = frozenset(
    {
        "slack",
        "discord",
        "tgram",
        "msteams",
        "matrix",
        "matrixs",
        "mmost",
        "mmosts",
        "rocket",
        "rockets",
        "ntfy",
        "ntfys",
        "pover",
        "pushover",
        "gotify",
        "gotifys",
        "signal",
        "signals",
        "zulip",
        "mailgun",
        "sendgrid",
        "ses",
        "sns",
        "twilio",
        "pbul",
        "lametric",
        "opsgenie",
        "pagerduty",
        "spush",
        "wxteams",
    }
)


class TargetError(ValueError):
    """A target refused, with a reason that never repeats the target's secrets."""


def parse_networks(ranges: Iterable[str]) -> list[IPNetwork]:
    return [ipaddress.ip_network(r.strip(), strict=False) for r in ranges if r.strip()]


def check_webhook_url(url: str) -> None:
    if len(url) > MAX_TARGET_CHARS:
        raise TargetError(f"the URL is longer than {MAX_TARGET_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetError("not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise TargetError("a webhook URL must start with http:// or https://")
    if not parts.hostname:
        raise TargetError("the URL has no host")
    if port == 0:
        raise TargetError("the URL's port must be 1-65535")


_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def check_email(address: str) -> str:
    if len(address) > 254 or not _EMAIL.match(address):
        raise TargetError("not an email address (expected local@domain.tld)")
    return address


def check_apprise_url(url: str, *, operator: bool) -> None:
    import apprise

    if len(url) > MAX_TARGET_CHARS:
        raise TargetError(f"the URL is longer than {MAX_TARGET_CHARS} characters")
    schema = url.split("://", 1)[0].lower() if "://" in url else ""
    if not operator and schema not in OWNER_APPRISE_SCHEMAS:
        raise TargetError(
            f"apprise schema {schema or '(none)'!r} is not offered to owners; use the webhook channel for HTTP "
            f"targets (offered: {', '.join(sorted(OWNER_APPRISE_SCHEMAS))})"
        )
    if apprise.Apprise.instantiate(url, suppress_exceptions=True) is None:
        raise TargetError(f"apprise does not understand this {schema or ''} URL (see its wiki for the format)")


def hint(channel: str, target: str) -> str:
    """What a listing may show: the scheme and host of a URL, a masked email address."""
    if channel == "email":
        local, _, domain = target.partition("@")
        return f"{local[:1]}***@{domain}"
    try:
        parts = urlsplit(target)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable)"
    if channel == "webhook":
        return f"{parts.scheme}://{host}{port}/…"
    return f"{parts.scheme}://…"


def scrub(message: str, secrets: Iterable[str | None], limit: int = 500) -> str:
    """A message with every secret (and any URL's userinfo or query) removed."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
            tail = urlsplit(secret).query if "://" in secret else ""
            if tail:
                message = message.replace(tail, "***")
    message = re.sub(r"(\w+://)[^/\s@]+@", r"\1***@", message)
    message = re.sub(r"([?&][^=\s&]+=)[^&\s]+", r"\1***", message)
    return message[:limit]


class AddressGuard:
    """Resolves a host and refuses addresses that are not public (unless allowed)."""

    def __init__(self, allowed: Iterable[IPNetwork] = ()) -> None:
        self.allowed = list(allowed)

    def permitted(self, ip: IPAddress) -> bool:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in self.allowed):
            return True
        return ip.is_global and not ip.is_multicast

    async def resolve(self, host: str, port: int) -> IPAddress:
        """The first address of ``host``, if every address it has is permitted."""
        try:
            literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            addrs = [literal]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise TargetError(f"cannot resolve {host}: {exc.strerror or exc}") from None
            addrs = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addrs:
            raise TargetError(f"{host} has no address")
        for ip in addrs:
            if not self.permitted(ip):
                raise TargetError(
                    f"{host} resolves to {ip}, a private/loopback/reserved address: refused "
                    "(the operator may allow ranges with NOTIFY_ALLOW_PRIVATE_TARGETS)"
                )
        return addrs[0]


class SecretScrubber(logging.Filter):
    """Rewrites third-party log records (apprise, urllib3, httpx) that would carry a target's
    secrets: apprise and urllib3 log full request URLs — a Telegram bot token is in the path —
    at DEBUG. Secrets the worker handles are registered; URL credentials are masked anyway."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def remember(self, *values: str | None) -> None:
        if len(self.secrets) > 10_000:
            self.secrets.clear()
        for value in values:
            if value and value not in self.secrets:
                self.secrets.add(value)
                if "://" in value:  # the parts a library may log separately
                    rest = value.split("://", 1)[1]
                    self.secrets.update(p for p in re.split(r"[/?&=@]", rest) if len(p) >= 12)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        longest_first: list[str] = sorted(self.secrets, key=len, reverse=True)
        clean = scrub(message, longest_first, limit=len(message) + 100)
        clean = re.sub(r"/bot[^/\s]+", "/bot***", clean)
        if clean != message:
            record.msg, record.args = clean, None
        return True


SCRUBBER = SecretScrubber()
for _name in (
    "apprise",
    "urllib3",
    "urllib3.connectionpool",
    "httpx",
    "httpcore",
    "httpcore.http11",
    "httpcore.connection",
    "requests_oauthlib",
    "oauthlib",
):
    logging.getLogger(_name).addFilter(SCRUBBER)
