"""Run anvil (the local dev chain) from the project's `node_modules`, on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# anvil's default mnemonic: its accounts are well known and only ever hold dev-chain money.
DEV_MNEMONIC = "test test test test test test test test test test test junk"


class AnvilNotFound(RuntimeError):
    pass


def find_anvil() -> str:
    """The anvil binary: $ANVIL_BIN, node_modules (walking up from here and the cwd), or PATH."""
    explicit = os.environ.get("ANVIL_BIN")
    if explicit:
        return explicit
    starts = [Path.cwd(), Path(__file__).resolve()]
    for start in starts:
        for folder in [start, *start.parents]:
            for rel in (
                "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil",
                "node_modules/@foundry-rs/anvil-linux-arm64/bin/anvil",
                "node_modules/@foundry-rs/anvil-darwin-arm64/bin/anvil",
                "node_modules/.bin/anvil",
            ):
                candidate = folder / rel
                if candidate.exists():
                    return str(candidate)
    found = shutil.which("anvil")
    if found:
        return found
    raise AnvilNotFound("anvil not found: run `npm ci` in the Autometa checkout, or set ANVIL_BIN")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Anvil:
    """A running anvil process. Use as a context manager or call `stop()`."""

    port: int = 0
    chain_id: int = 31337
    block_time: float | None = None
    accounts: int = 10
    balance_ether: int = 10_000
    state_path: Path | None = None  # load/dump chain state here (resume across restarts)
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> Anvil:
        if not self.port:
            self.port = free_port()
        args = [
            find_anvil(),
            "--port",
            str(self.port),
            "--host",
            "127.0.0.1",
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            str(self.accounts),
            "--balance",
            str(self.balance_ether),
            "--mnemonic",
            DEV_MNEMONIC,
            "--silent",
        ]
        if self.block_time:
            args += ["--block-time", str(self.block_time)]
        if self.state_path is not None:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            args += ["--state", str(self.state_path), "--state-interval", "5"]
        args += self.extra_args
        # Its own session: a terminal's Ctrl-C reaches the host, which stops services first and
        # then the chain (stop()), not the chain under running services.
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"anvil exited at start-up (port {self.port}): {err.strip()}")
            try:
                reply = httpx.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=1)
                if reply.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"anvil did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM lets anvil dump --state
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
