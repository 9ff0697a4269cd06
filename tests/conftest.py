"""Shared fixtures: one anvil per test session (per xdist worker) with the dev stack deployed,
and a clean chain for every test by snapshot/revert."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import structlog
from hypothesis import settings as hypothesis_settings
from psycopg import sql
from sqlalchemy.engine import make_url
from web3 import Web3

from autometa.chain.anvil import Anvil
from autometa.chain.deploy import Deployment
from autometa.chain.devnet import setup_dev_stack
from autometa.chain.web3 import connect
from tests.support.hardhat import HardhatNode

# Deadlines per test (pytest-timeout; the default is in pyproject.toml). Multi-process and fault
# scenarios marked `slow` take minutes on a loaded 2-core machine; they get this one instead.
SLOW_TEST_TIMEOUT_S = 600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TEST_TIMEOUT_S))


@dataclass
class DevChain:
    anvil: Anvil | HardhatNode  # the node: anvil everywhere, Hardhat where a test asks for it
    w3: Web3
    deployment: Deployment

    @property
    def url(self) -> str:
        return self.anvil.url


@pytest.fixture(scope="session")
def dev_chain_session() -> Iterator[DevChain]:
    with Anvil() as anvil:
        w3 = connect(anvil.url)
        yield DevChain(anvil, w3, setup_dev_stack(w3))


@contextmanager
def _reverted(chain: DevChain) -> Iterator[DevChain]:
    w3 = chain.w3
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    base_fee = int(w3.eth.get_block("latest").get("baseFeePerGas") or 0)
    try:
        yield chain
    finally:
        w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        if base_fee and isinstance(chain.anvil, Anvil):
            # anvil keeps a base fee a test spiked (anvil_setNextBlockBaseFeePerGas) across evm_revert:
            # the next test's transactions priced from the reverted head would be refused
            w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(base_fee)])  # type: ignore[arg-type]


@pytest.fixture
def dev_chain(dev_chain_session: DevChain) -> Iterator[DevChain]:
    """The session's dev chain, reverted to its freshly deployed state after the test."""
    with _reverted(dev_chain_session) as chain:
        yield chain


@pytest.fixture(scope="session")
def hardhat_chain_session() -> Iterator[DevChain]:
    with HardhatNode() as node:
        w3 = connect(node.url)
        yield DevChain(node, w3, setup_dev_stack(w3))


@pytest.fixture(params=["anvil", "hardhat"])
def any_chain(request: pytest.FixtureRequest) -> Iterator[DevChain]:
    """The dev stack on each node implementation in turn (anvil, then Hardhat Network), reverted
    after the test: for the flows that must not depend on one node's leniency."""
    session = request.getfixturevalue("dev_chain_session" if request.param == "anvil" else "hardhat_chain_session")
    with _reverted(session) as chain:
        yield chain


# ---------------------------------------------------------------- databases

PG_URL = os.environ.get("AUTOMETA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    url = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


@contextmanager
def fresh_pg_database(prefix: str = "autometa_test") -> Iterator[str]:
    """A new, uniquely named PostgreSQL database (dropped afterwards), so parallel test runs
    never see each other's rows."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with _pg_admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with _pg_admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, then a fresh PostgreSQL database (each test runs on both)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'autometa.db'}"
    else:
        with fresh_pg_database() as url:
            yield url


# No per-example time limit: on a loaded 2-core machine one example of an ABI round trip took
# over hypothesis's 200 ms default (DeadlineExceeded in CI's full run). pytest-timeout still ends
# a test that hangs, by name.
hypothesis_settings.register_profile("autometa", deadline=None)
hypothesis_settings.load_profile("autometa")


@pytest.fixture(autouse=True)
def _structlog_config_per_test() -> Iterator[None]:
    """Each test starts from the logging configuration the session started with: a test that
    runs a worker calls configure_logging (a level filter in the wrapper class), and
    structlog's capture_logs swaps only the processors, so a later test in the same process
    would capture nothing below that level."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
