"""The receiver process of bench/notify.py: an aiohttp server that verifies every webhook's
signature and appends "key arrival_unix_time" to a file (flushed on SIGTERM and every 0.5 s).
Usage: python bench/notify_receiver.py PORT SECRET OUTFILE"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

from autometa.notify.signing import SignatureError, verify  # noqa: E402


async def main(port: int, secret: str, out: Path) -> None:
    lines: list[str] = []
    bad = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal bad
        body = await request.read()
        try:
            key = verify(secret, dict(request.headers), body)
        except SignatureError:
            bad += 1
            return web.Response(status=401)
        lines.append(f"{key} {time.time():.6f}\n")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    with out.open("a") as fh:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass
            fh.writelines(lines)
            fh.flush()
            lines.clear()
        if bad:
            fh.write(f"BAD_SIGNATURES {bad}\n")
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
