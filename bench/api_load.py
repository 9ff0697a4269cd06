"""Benchmark: GET /api/price/ethereum from a warm cache, one uvicorn server process.

Three processes on loopback: the CoinGecko stand-in plus the API server (uvicorn, httptools,
uvloop, SQLite store, in-process price cache or Redis with --redis-url) in one, and a separate
load generator in another: 64 keep-alive connections, each sending its next request as soon as
the previous answer arrives, for 15 s after a short warm-up that fills the cache.

The load generator speaks HTTP/1.1 over raw asyncio streams rather than httpx: on a 2-core
machine the client shares the CPU with the server, and httpx's per-request cost would make the
benchmark measure the client. `--client httpx` runs the same load through httpx for comparison.

Progress goes to stderr; the last stdout line is one JSON object (rps, p50_ms, p99_ms, ...).
Run: .venv/bin/python bench/api_load.py [--connections 64 --seconds 15 --redis-url URL --client raw|httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PATH = "/api/price/ethereum"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------ server process


def serve(port: int, data_dir: str, redis_url: str | None) -> None:
    """The API under uvicorn, with the CoinGecko stand-in in a thread of the same process."""
    import logging

    import structlog
    import uvicorn

    sys.path.insert(0, str(ROOT))
    from tests.support.coingecko_stub import CoinGeckoStub

    from autometa.api import create_app
    from autometa.config import Settings

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    stub = CoinGeckoStub({"ethereum": 3198.15, "bitcoin": 64000.5}).__enter__()
    settings = Settings(
        _env_file=None,
        PRICE_FEED_URL=stub.url,
        DATA_DIR=data_dir,
        REDIS_URL=redis_url,  # type: ignore[call-arg]
        DATABASE_URL=f"sqlite:///{data_dir}/bench.db",
        MOONBASE_RPC="http://127.0.0.1:9",
        LOG_LEVEL="WARNING",
    )
    uvicorn.run(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
        server_header=False,
        date_header=False,
    )


# ------------------------------------------------------------------------------ load process


async def _raw_worker(port: int, stop_at: float, latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\r\n".encode()
    try:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def _httpx_worker(client: Any, port: int, stop_at: float, latencies: list[float], errors: list[int]) -> None:
    url = f"http://127.0.0.1:{port}{PATH}"
    while time.perf_counter() < stop_at:
        start = time.perf_counter()
        reply = await client.get(url)
        latencies.append(time.perf_counter() - start)
        if reply.status_code != 200:
            errors.append(reply.status_code)


async def load(port: int, connections: int, seconds: float, client: str) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    stop_at = started + seconds
    if client == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(limits=limits) as http:
            await asyncio.gather(*(_httpx_worker(http, port, stop_at, latencies, errors) for _ in range(connections)))
    else:
        await asyncio.gather(*(_raw_worker(port, stop_at, latencies, errors) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 3)

    return {
        "requests": len(latencies),
        "errors": len(errors),
        "seconds": round(elapsed, 2),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 3),
    }


def run_load(port: int, connections: int, seconds: float, client: str) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(load(port, connections, seconds, client))), flush=True)


# ------------------------------------------------------------------------------ driver


def wait_ready(port: int, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{PATH}", timeout=2).status_code == 200:  # fills the cache
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the API server did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--redis-url", default=None, help="shared cache in this Redis (default: in-process)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--load", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.data_dir, args.redis_url)
        return
    if args.load:
        run_load(args.load, args.connections, args.seconds, args.client)
        return

    port = free_port()
    me = [sys.executable, str(Path(__file__).resolve())]
    with tempfile.TemporaryDirectory() as data_dir:
        server_cmd = [*me, "--serve", str(port), "--data-dir", data_dir]
        if args.redis_url:
            server_cmd += ["--redis-url", args.redis_url]
        server = subprocess.Popen(server_cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        try:
            wait_ready(port)
            progress(f"server up on :{port}; warm-up {args.warmup:.0f} s")
            warm = [
                *me,
                "--load",
                str(port),
                "--connections",
                str(args.connections),
                "--seconds",
                str(args.warmup),
                "--client",
                args.client,
            ]
            subprocess.run(warm, check=True, capture_output=True)
            progress(f"{args.connections} connections for {args.seconds:.0f} s ({args.client} client)")
            measured = [
                *me,
                "--load",
                str(port),
                "--connections",
                str(args.connections),
                "--seconds",
                str(args.seconds),
                "--client",
                args.client,
            ]
            out = subprocess.run(measured, check=True, capture_output=True, text=True).stdout.strip().splitlines()
            result = json.loads(out[-1])
        finally:
            server.terminate()
            server.wait(timeout=10)
    result.update(
        connections=args.connections,
        client=args.client,
        cache="redis" if args.redis_url else "in-process",
        cpus=os.cpu_count(),
    )
    progress(f"{result['rps']} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, {result['errors']} errors")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
