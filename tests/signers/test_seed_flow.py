"""The seed's end-to-end flow with each kind of signer, as separate processes (`autometa api`,
`autometa scheduler`, `autometa executor`) on Redis and PostgreSQL: the relayer (API) and the
executor sign with an encrypted keystore, or with AWS KMS keys reached over HTTP (moto's server,
as the real endpoint would be). A workflow is created through the relayer and executed once."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from autometa.chain.accounts import dev_role
from autometa.chain.anvil import Anvil, free_port
from autometa.chain.contracts import autometa
from autometa.chain.deploy import set_dev_price, transact
from autometa.chain.devnet import setup_dev_stack
from autometa.chain.signers import LocalKeySigner, write_keystore
from autometa.chain.web3 import connect
from autometa.client import AutometaClient
from tests.conftest import fresh_pg_database
from tests.signers.conftest import PASSWORD, SCRYPT_N
from tests.support.coingecko_stub import CoinGeckoStub
from tests.support.kms import AWS_ENV, KmsProxy
from tests.support.stack import AUTOMETA, redis_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def _signers(kind: str, tmp_path: Path, kms_key: Callable[..., str], kms_proxy: KmsProxy) -> dict[str, str]:
    """The environment naming the worker's and the relayer's signers of `kind`."""
    if kind == "keystore":
        env = {}
        for role in ("WORKER", "RELAYER"):
            path = write_keystore(
                tmp_path / f"{role.lower()}.json",
                LocalKeySigner.from_key(os.urandom(32)),
                PASSWORD,
                iterations=SCRYPT_N,
            )
            env[f"{role}_SIGNER"] = f"keystore:{path}"
        (tmp_path / "pw").write_text(PASSWORD)
        return {**env, "KEYSTORE_PASSWORD_FILE": str(tmp_path / "pw")}
    return {
        "WORKER_SIGNER": f"kms:{kms_key()}",
        "RELAYER_SIGNER": f"kms:{kms_key()}",
        "KMS_ENDPOINT_URL": kms_proxy.url,
        **AWS_ENV,
    }


def _address(spec: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [str(AUTOMETA), "keys", "export-address", spec], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture(params=["keystore", "kms"])
def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, kms_key: Callable[..., str], kms_proxy: KmsProxy
) -> Iterator[dict[str, Any]]:
    anvil = Anvil(block_time=1).start()
    procs: list[subprocess.Popen[str]] = []
    stub = CoinGeckoStub({"ethereum": 3250, "bitcoin": 95000}).__enter__()
    try:
        w3 = connect(anvil.url)
        dep = setup_dev_stack(w3)
        dep.save(tmp_path)
        signers = _signers(request.param, tmp_path, kms_key, kms_proxy)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOMETA_", "PYTEST_"))}
        base = {**base, **signers}
        worker, relayer = _address(signers["WORKER_SIGNER"], base), _address(signers["RELAYER_SIGNER"], base)
        for address in (worker, relayer):
            w3.provider.make_request("anvil_setBalance", [address, hex(10**21)])  # type: ignore[arg-type]
        core = autometa(w3, dep.address)
        transact(w3, dev_role("admin"), core.functions.setExecutor(worker, True))
        with fresh_pg_database("autometa_signer_flow") as db_url, redis_database() as redis_url:
            port = free_port()
            env = {
                **base,
                "MOONBASE_RPC": anvil.url,
                "REGISTRY_ADDRESS": dep.address,
                "DATABASE_URL": db_url,
                "REDIS_URL": redis_url,
                "DATA_DIR": str(tmp_path),
                "API_PORT": str(port),
                "PRICE_FEED_URL": stub.url,
                "BACKEND_API_URL": f"http://127.0.0.1:{port}",
                "POLL_INTERVAL": "1",
            }
            for role in ("api", "scheduler", "executor"):
                log = open(tmp_path / f"{role}.log", "w")  # noqa: SIM115 - closed with the process
                procs.append(
                    subprocess.Popen(
                        [str(AUTOMETA), role], env=env, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=tmp_path
                    )
                )
            client = AutometaClient(f"http://127.0.0.1:{port}", timeout=30)
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.healthz()
                    break
                except Exception:
                    for p in procs:
                        assert p.poll() is None, "\n".join(
                            (tmp_path / f"{r}.log").read_text()[-2000:] for r in ("api", "executor")
                        )
                    assert time.monotonic() < deadline, "the API did not come up"
                    time.sleep(0.3)
            yield {
                "w3": w3,
                "dep": dep,
                "client": client,
                "logs": tmp_path,
                "kind": request.param,
                "worker": worker,
                "relayer": relayer,
            }
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        anvil.stop()
        stub.__exit__(None, None, None)


def test_seed_flow_with_each_signer(cluster: dict[str, Any]) -> None:
    w3, dep, client, logs = cluster["w3"], cluster["dep"], cluster["client"], cluster["logs"]
    core = autometa(w3, dep.address)
    user, recipient = dev_role("user"), dev_role("recipient")
    transact(w3, user, core.functions.deposit(), value=2 * 10**18)
    created = client.create_signed(
        user,
        {
            "user_address": user.address,
            "trigger_type": 2,
            "trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": 3200.0},
            "action_type": 0,
            "action_data": {"to": recipient.address, "amount_wei": "1000000000000000000"},
        },
    )
    create_tx = w3.eth.get_transaction(created.tx_hash)  # type: ignore[attr-defined]
    assert create_tx["from"] == cluster["relayer"]  # relayed with the configured signer
    before = w3.eth.get_balance(recipient.address)
    set_dev_price(w3, dev_role("admin"), dep.feeds["ethereum"], Decimal("3198.15"))
    deadline = time.monotonic() + 60
    done: list[Any] = []
    while not done and time.monotonic() < deadline:
        done = [e for e in client.executions(workflow_id=created.workflow_id).items if e.status == "success"]
        time.sleep(0.5)
    assert done, "\n".join((logs / f"{r}.log").read_text()[-3000:] for r in ("scheduler", "executor"))
    assert len(done) == 1
    assert w3.eth.get_balance(recipient.address) - before == 10**18
    run_tx = w3.eth.get_transaction(done[0].tx_hash)
    assert run_tx["from"] == cluster["worker"]  # executed with the configured signer
    executor_log = (logs / "executor.log").read_text()
    assert f"kind={cluster['kind']}" in executor_log or f'"kind": "{cluster["kind"]}"' in executor_log
