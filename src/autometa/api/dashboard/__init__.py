"""The web dashboard: static ES modules and CSS served by the API at `/` (no build step, no CDN:
the page must work on a machine with no internet). The browser only signs typed data the API
prepared, so the API stays the single source of the EIP-712 encoding."""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
INDEX_HTML = STATIC_DIR / "index.html"
