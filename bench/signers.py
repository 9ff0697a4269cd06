"""Benchmark: what each signer costs the transaction sender.

For a local key, an encrypted keystore and an AWS KMS key (moto's KMS served on loopback, as in
the tests — a real KMS round trip is a network hop to AWS, typically tens of ms, so read the KMS
figures as "our overhead + one HTTP round trip", not as AWS's latency):

- sign_ms_p50 / p95: one EIP-1559 transaction signed, N times;
- send_100_s: 100 transfers through `TransactionSender` from 10 concurrent tasks on anvil
  (automine), until every one is mined; nonces_contiguous must be true;
- keystore_unlock_s: decrypting the keystore once at start-up (eth_account's default scrypt N).

Progress goes to stderr; the last stdout line is one JSON object.
Run: .venv/bin/python bench/signers.py [--signs 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3  # noqa: E402
from tests.support.kms import AWS_ENV, KmsServer  # noqa: E402

from autometa.chain.anvil import Anvil  # noqa: E402
from autometa.chain.sender import SenderConfig, TransactionSender  # noqa: E402
from autometa.chain.signers import AwsKmsSigner, LocalKeySigner, Signer, load_keystore, write_keystore  # noqa: E402
from autometa.chain.web3 import connect_async  # noqa: E402

SINK = "0x000000000000000000000000000000000000dEaD"


def sign_times(signer: Signer, n: int) -> list[float]:
    out = []
    for i in range(n):
        tx = {
            "to": SINK,
            "value": 1,
            "gas": 21_000,
            "nonce": i,
            "chainId": 31337,
            "maxFeePerGas": 30 * 10**9,
            "maxPriorityFeePerGas": 10**9,
            "type": 2,
        }
        t0 = time.perf_counter()
        signer.sign_transaction(tx)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def send_100(url: str, signer: Signer) -> dict[str, Any]:
    w3 = connect_async(url)
    await w3.provider.make_request("anvil_setBalance", [signer.address, hex(10**21)])  # type: ignore[arg-type]
    sender = TransactionSender(w3, signer, config=SenderConfig(poll_interval=0.05))
    t0 = time.perf_counter()

    async def task(t: int) -> list[Any]:
        return [await sender.send({"to": SINK, "value": 1, "gas": 21_000}, f"b{t}-{i}") for i in range(10)]

    sent = [s for batch in await asyncio.gather(*(task(t) for t in range(10))) for s in batch]
    await asyncio.gather(*(sender.wait(s) for s in sent))
    elapsed = time.perf_counter() - t0
    await w3.provider.disconnect()  # type: ignore[attr-defined]
    return {"send_100_s": round(elapsed, 2), "nonces_contiguous": sorted(s.nonce for s in sent) == list(range(100))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signs", type=int, default=50)
    args = parser.parse_args()
    os.environ.update(AWS_ENV)
    server = KmsServer().start()
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            path = write_keystore(Path(tmp) / "k.json", LocalKeySigner.from_key(os.urandom(32)), "bench-password")
            keystore_write_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            keystore = load_keystore(path, "bench-password")
            unlock_s = time.perf_counter() - t0
            admin = boto3.client("kms", endpoint_url=server.url, region_name=AWS_ENV["AWS_REGION"])
            arn = admin.create_key(KeySpec="ECC_SECG_P256K1", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
            signers: dict[str, Signer] = {
                "key": LocalKeySigner.from_key(os.urandom(32)),
                "keystore": keystore,
                "kms_moto_loopback": AwsKmsSigner.connect(arn, endpoint_url=server.url),
            }
            for kind, signer in signers.items():
                print(f"[signers] {kind}…", file=sys.stderr, flush=True)
                times = sorted(sign_times(signer, args.signs))
                with Anvil(accounts=1) as node:
                    sent = asyncio.run(send_100(node.url, signer))
                results[kind] = {
                    "sign_ms_p50": round(statistics.median(times), 3),
                    "sign_ms_p95": round(times[int(0.95 * (len(times) - 1))], 3),
                    **sent,
                }
            results["keystore_unlock_s"] = round(unlock_s, 3)
            results["keystore_write_s"] = round(keystore_write_s, 3)
    finally:
        server.stop()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
