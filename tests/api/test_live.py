"""Against a real uvicorn on loopback: the CLI's relayer path, the sync client, and a schemathesis
run over the OpenAPI schema that must find no server error."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error

from autometa.api import create_app
from autometa.cli.common import CliError
from autometa.cli.workflow_commands import _change_via_relayer, _create_via_relayer
from autometa.client import ApiClientError, AutometaClient
from autometa.domain.kinds import StatusOp
from autometa.domain.workflow import WorkflowSpec
from tests.api.conftest import USER, deposit, seed_body, settings_for
from tests.conftest import DevChain
from tests.support.coingecko_stub import CoinGeckoStub, ServerThread


@pytest.fixture
def live(dev_chain: DevChain, coingecko: CoinGeckoStub, tmp_path: Path) -> Iterator[str]:
    settings = settings_for(dev_chain, coingecko, tmp_path, RATE_LIMIT_PER_MINUTE=100_000)
    server = ServerThread(create_app(settings))  # services built by the lifespan, in the server's loop
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()


def test_cli_relayer_path_and_sync_client(live: str, dev_chain: DevChain) -> None:
    deposit(dev_chain, USER, 2 * 10**18)
    body = seed_body()
    spec = WorkflowSpec.model_validate({k: v for k, v in body.items() if k != "user_address"})
    created = _create_via_relayer(live, USER, spec)  # exactly what `autometa workflow create --relayer` does
    wid = created["workflow_id"]
    assert created["tx_hash"].startswith("0x")
    assert _change_via_relayer(live, USER, StatusOp.PAUSE, wid)["status"] == "paused"
    # a refusal is the relayer's sentence, not raw JSON (issue 13 item 5)
    refusal = rf"the relayer refused \(409\): workflow {wid}: cannot pause a paused workflow$"
    with pytest.raises(CliError, match=refusal):
        _change_via_relayer(live, USER, StatusOp.PAUSE, wid)
    with AutometaClient(live) as client:
        assert client.healthz().status == "ok"
        assert client.contracts().chain_id == 31337
        assert "ethereum" in client.assets() and client.price("ethereum").usd > 0
        assert client.workflow(wid).status == "paused"
        assert client.change_status_signed(USER, wid, "resume").status == "active"
        assert client.create_signed(USER, body).workflow_id == wid + 1
        assert client.user_workflows(USER.address).workflows == []  # nothing indexed in this test
        assert client.executions().total == 0 and client.stats().total == 0 and client.workers().executors == 0
        assert "autometa_api_request_seconds" in client.metrics()
        with pytest.raises(ApiClientError) as refused:
            client.create({**body, "signature": None})
        assert refused.value.status == 401 and refused.value.field == "signature"


def test_no_input_makes_a_server_error(live: str) -> None:
    """Every operation, with generated (mostly invalid) inputs: any 5xx fails. pytest 9 and
    schemathesis' pytest plugin disagree, so the operations are driven here with hypothesis."""
    schema = schemathesis.openapi.from_url(f"{live}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    # 17 + admin/pending + workflow/tx/{tx_hash} + 11 notification routes + dashboard/trigger-kinds + chains
    assert len(operations) == 32
    # An endless event stream cannot be fuzzed by reading whole responses (tests/dashboard covers its 422s).
    operations = [op for op in operations if op.path != "/api/executions/stream"]
    statuses: Counter[int] = Counter()
    for operation, mode in itertools.product(operations, schemathesis.GenerationMode):

        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=PHASES,
        )
        def run(case: schemathesis.Case[Any]) -> None:
            statuses[case.call_and_validate(checks=[not_a_server_error]).status_code] += 1

        try:
            run()
        except hypothesis.errors.Unsatisfiable:
            assert mode is schemathesis.GenerationMode.NEGATIVE  # no parameter to get wrong
    assert sum(statuses.values()) > 400 and statuses[200] > 0 and statuses[422] > 0, statuses


EXAMPLES = 25
PHASES = [hypothesis.Phase.explicit, hypothesis.Phase.generate]
