"""The seed's end-to-end flow over HTTP in distributed mode: `autometa api`, `autometa scheduler`
and `autometa executor` as separate processes sharing Redis and PostgreSQL, from a clean start —
and the same with `autometa worker` hosting all three roles in one process (plus a standby
`autometa scheduler`): the two supported layouts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from autometa.chain.accounts import dev_role
from autometa.chain.anvil import Anvil, free_port
from autometa.chain.contracts import autometa
from autometa.chain.deploy import set_dev_price, transact
from autometa.chain.devnet import setup_dev_stack
from autometa.chain.web3 import connect
from autometa.client import AutometaClient
from tests.conftest import fresh_pg_database
from tests.support.coingecko_stub import CoinGeckoStub
from tests.support.stack import redis_database  # its own Redis db: every fresh anvil reuses one address

AUTOMETA = str(Path(sys.executable).parent / "autometa")


# name -> command line of each process, per layout; the schedulers are the processes whose names
# LAYOUT_SCHEDULERS lists (the first two hold a scheduler each: one active, one standby).
LAYOUTS = {
    "processes": {"api": ["api"], "scheduler": ["scheduler"], "scheduler2": ["scheduler"], "executor": ["executor"]},
    "one-process": {
        "worker": ["worker", "--role", "scheduler", "--role", "executor", "--role", "api"],
        "scheduler2": ["scheduler"],
    },
}
LAYOUT_SCHEDULERS = {"processes": ("scheduler", "scheduler2"), "one-process": ("worker", "scheduler2")}


@pytest.fixture(params=sorted(LAYOUTS))
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    layout = request.param
    anvil = Anvil(block_time=1).start()
    procs: list[subprocess.Popen[str]] = []
    stub = CoinGeckoStub({"ethereum": 3250, "bitcoin": 95000}).__enter__()  # the API's price source
    try:
        w3 = connect(anvil.url)
        dep = setup_dev_stack(w3)
        dep.save(tmp_path)
        with fresh_pg_database("autometa_dist") as db_url, redis_database() as redis_url:
            port = free_port()
            env = {
                **os.environ,
                "MOONBASE_RPC": anvil.url,
                "REGISTRY_ADDRESS": dep.address,
                "DATABASE_URL": db_url,
                "REDIS_URL": redis_url,
                "DATA_DIR": str(tmp_path),
                "API_PORT": str(port),
                "WORKER_PRIVATE_KEY": dev_role("executor").key.hex(),
                "RELAYER_PRIVATE_KEY": dev_role("relayer").key.hex(),
                "PRICE_FEED_URL": stub.url,
                "BACKEND_API_URL": f"http://127.0.0.1:{port}",
                "POLL_INTERVAL": "1",
            }
            for name, args in LAYOUTS[layout].items():
                log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
                procs.append(
                    subprocess.Popen([AUTOMETA, *args], env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
                )
            client = AutometaClient(f"http://127.0.0.1:{port}", timeout=30)
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.healthz()
                    break
                except Exception:
                    for p in procs:
                        assert p.poll() is None, "\n".join(f.read_text() for f in tmp_path.glob("*.log"))
                    assert time.monotonic() < deadline, "the API did not come up"
                    time.sleep(0.3)
            yield {"w3": w3, "dep": dep, "client": client, "logs": tmp_path, "schedulers": LAYOUT_SCHEDULERS[layout]}
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


@pytest.mark.slow
def test_seed_flow_across_processes(cluster: dict[str, object]) -> None:
    w3, dep, client = cluster["w3"], cluster["dep"], cluster["client"]
    assert isinstance(client, AutometaClient)
    core = autometa(w3, dep.address)  # type: ignore[arg-type, attr-defined]
    user, recipient = dev_role("user"), dev_role("recipient")
    transact(w3, user, core.functions.deposit(), value=2 * 10**18)  # type: ignore[arg-type]
    assert client.contracts().WorkflowRegistry == dep.address  # type: ignore[attr-defined]
    created = client.create_signed(  # no user_address: the signer's (issue 13 item 18)
        user,
        {
            "trigger_type": 2,
            "trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": 3200.0},
            "action_type": 0,
            "action_data": {"to": recipient.address, "amount_wei": "1000000000000000000"},
        },
    )
    before = w3.eth.get_balance(recipient.address)  # type: ignore[attr-defined]
    set_dev_price(w3, dev_role("admin"), dep.feeds["ethereum"], Decimal("3198.15"))  # type: ignore[arg-type, attr-defined]
    deadline = time.monotonic() + 60
    done = []
    while not done and time.monotonic() < deadline:
        done = [e for e in client.executions(workflow_id=created.workflow_id).items if e.status == "success"]
        time.sleep(0.5)
    logs = cluster["logs"]
    assert done, "\n".join(f.read_text()[-3000:] for f in logs.glob("*.log"))  # type: ignore[attr-defined]
    assert w3.eth.get_balance(recipient.address) - before == 10**18  # type: ignore[attr-defined]
    assert done[0].price_source == "oracle" and done[0].fee_wei
    price = client.price("bitcoin")  # the API's shared cache over the CoinGecko stand-in
    assert price.usd == 95000 and price.source in ("backend-api", "backend-redis")
    workers = client.workers()
    roles = {w.role for w in workers.workers} if hasattr(workers, "workers") else set()
    assert "executor" in roles, workers
    # issue 13 item 15: both schedulers are visible, one holds the lease, the other says it stands by
    schedulers = [w for w in workers.workers if w.role == "scheduler"]
    assert workers.schedulers == 2 and len(schedulers) == 2, workers
    assert workers.scheduler_active and workers.lease_holder in {w.worker_id for w in schedulers}
    assert sorted(bool(w.active) for w in schedulers) == [False, True]
    assert all(w.pid and w.host and w.chain_id == 31337 for w in schedulers)
    standby_logs = [(logs / f"{n}.log").read_text() for n in cluster["schedulers"]]  # type: ignore[operator, attr-defined]
    assert sum("scheduler.standby" in text for text in standby_logs) == 1, standby_logs
