"""Hardhat Network (EDR, npm `hardhat`) as a second node implementation for the tests.

It answers where anvil is lenient: no `eth_simulateV1` (-32004), its own fee and mempool rules.
Run from the project's node_modules with the config beside this file (Hardhat refuses a
config outside a project that has it installed)."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from autometa.chain.anvil import free_port

HERE = Path(__file__).resolve().parent / "hardhat"
ROOT = Path(__file__).resolve().parents[2]


def find_hardhat() -> Path:
    binary = ROOT / "node_modules" / ".bin" / "hardhat"
    if not binary.exists():
        raise RuntimeError(f"hardhat not found at {binary}: run `npm ci` (scripts/setup) first")
    return binary


@dataclass
class HardhatNode:
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> HardhatNode:
        self.port = self.port or free_port()
        env = {**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true", "CI": "true"}
        args = [str(find_hardhat()), "node", "--hostname", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(args, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"hardhat node exited at start-up: {err.strip()[-2000:]}")
            try:
                reply = httpx.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=1)
                if reply.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"hardhat node did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> HardhatNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
