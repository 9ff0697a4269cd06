"""No secret of any signer — a private key, a keystore password, the AWS secret key — ever shows
up in a repr, a log line, an error or an API response, including when the signer fails."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autometa.chain.sender import TransactionSender
from autometa.chain.signers import LocalKeySigner, role_signer
from autometa.config import ConfigError, load_settings
from autometa.logs import configure_logging
from tests.api.conftest import USER, close_api, deposit, open_api, seed_body
from tests.conftest import DevChain
from tests.signers.conftest import KINDS, PASSWORD, SCRYPT_N
from tests.support.coingecko_stub import CoinGeckoStub
from tests.support.kms import KmsProxy

RELAYER_KEY = "0x" + "7e" * 31 + "01"
AWS_SECRET = "aws-secret-Zq9Xv8Wt7Ys6"


@pytest.fixture(scope="module")
def coingecko_server() -> Any:
    with CoinGeckoStub() as stub:
        yield stub


def spellings(*secrets: str) -> list[str]:
    out = []
    for secret in secrets:
        bare = secret.removeprefix("0x")
        out += [bare, bare.lower(), bare.upper()]
    return out


def assert_clean(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret leaked: …{text[max(0, text.find(secret) - 80) : text.find(secret)]}…"


def relayer_settings(kind: str, tmp_path: Path, kms_key: Callable[..., str], kms_proxy: KmsProxy) -> dict[str, Any]:
    if kind == "key":
        return {"RELAYER_PRIVATE_KEY": RELAYER_KEY}
    if kind == "keystore":
        from autometa.chain.signers import write_keystore

        path = write_keystore(
            tmp_path / "relayer.json", LocalKeySigner.from_key(RELAYER_KEY), PASSWORD, iterations=SCRYPT_N
        )
        (tmp_path / "pw").write_text(PASSWORD)
        return {
            "RELAYER_SIGNER": f"keystore:{path}",
            "KEYSTORE_PASSWORD_FILE": str(tmp_path / "pw"),
            "RELAYER_PRIVATE_KEY": None,
        }
    return {
        "RELAYER_SIGNER": f"kms:{kms_key()}",
        "KMS_ENDPOINT_URL": kms_proxy.url,
        "KMS_RETRY_SECONDS": 1.0,
        "RELAYER_PRIVATE_KEY": None,
    }


@pytest.mark.parametrize("kind", KINDS)
async def test_no_secret_in_reprs_logs_errors_or_api_responses(
    kind: str,
    dev_chain: DevChain,
    coingecko_server: CoinGeckoStub,
    tmp_path: Path,
    kms_key: Callable[..., str],
    kms_proxy: KmsProxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    caplog.set_level(logging.DEBUG)
    configure_logging("DEBUG", False)
    secrets = spellings(RELAYER_KEY, AWS_SECRET) + [PASSWORD]
    coingecko_server.reset({"ethereum": 3198.15, "bitcoin": 64000.5})
    overrides = relayer_settings(kind, tmp_path, kms_key, kms_proxy)
    api, prefix = await open_api("embedded", dev_chain, coingecko_server, tmp_path, None, **overrides)
    responses: list[str] = []
    try:
        relayer = api.services.relayer
        assert relayer is not None
        signer = relayer.sender._accounts[relayer.address]
        assert signer.kind == kind
        dev_chain.w3.provider.make_request("anvil_setBalance", [relayer.address, hex(10**21)])  # type: ignore[arg-type]
        deposit(dev_chain, USER, 2 * 10**18)
        created = await api.typed.create_signed(USER, seed_body())  # relayed: the signer signed it
        assert created.workflow_id >= 0
        for path in [
            "/healthz",
            "/api/contracts",
            "/api/workers",
            "/metrics",
            f"/api/workflow/{created.workflow_id}",
            "/api/stats",
            "/",
        ]:
            reply = await api.client.get(path)
            assert reply.status_code < 500, (path, reply.text)
            responses.append(reply.text)
        if kind == "kms":  # the signer fails: the answer is a 503 naming the key, never a secret
            from autometa.client._base import signed_create

            prepared = await api.typed.prepare_create(seed_body())
            kms_proxy.down()
            failed = await api.client.post("/api/workflow/create", json=signed_create(seed_body(), prepared, USER))
            responses.append(failed.text)
            assert failed.status_code == 503 and failed.json()["error"] == "signer_unavailable", failed.text
            assert "nothing was sent" in failed.json()["message"]
            kms_proxy.up()
            retried = await api.client.post("/api/workflow/create", json=signed_create(seed_body(), prepared, USER))
            assert retried.status_code == 200, retried.text  # the same signed intent goes through afterwards
            responses.append(retried.text)
        reprs = [
            repr(signer),
            str(signer),
            repr(relayer.sender),
            repr(api.settings),
            str(api.settings),
            api.settings.model_dump_json(),
            repr(api.services),
        ]
        with pytest.raises(TypeError):
            pickle.dumps(signer)
    finally:
        await close_api(api, prefix)
    captured = capsys.readouterr()
    everything = "\n".join([*responses, *reprs, captured.out, captured.err, caplog.text])
    assert signer.address in everything  # the address is said (logs, responses); the secrets are not
    assert_clean(everything, secrets)


def test_no_secret_in_start_up_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    from autometa.chain.signers import write_keystore

    path = write_keystore(tmp_path / "w.json", LocalKeySigner.from_key(RELAYER_KEY), PASSWORD, iterations=SCRYPT_N)
    wrong = "hunter2-wrong-password"
    (tmp_path / "pw").write_text(wrong)
    errors = []
    for overrides in [
        {"WORKER_SIGNER": f"keystore:{path}", "KEYSTORE_PASSWORD_FILE": str(tmp_path / "pw")},
        {"WORKER_SIGNER": "key:" + RELAYER_KEY[:-2]},  # one byte short
        {"WORKER_PRIVATE_KEY": RELAYER_KEY[:-2] + "zz"},
        {"WORKER_SIGNER": RELAYER_KEY + "ab"},
        {"WORKER_SIGNER": "kms:" + RELAYER_KEY, "WORKER_PRIVATE_KEY": RELAYER_KEY},
    ]:
        with pytest.raises(ConfigError) as err:
            role_signer(load_settings(**overrides), "worker", prompt=False)
        errors.append(str(err.value))
    assert "wrong password" in errors[0] and all("WORKER_" in e for e in errors)
    assert_clean("\n".join(errors), spellings(RELAYER_KEY, RELAYER_KEY[:-2]) + [PASSWORD, wrong])


def test_sender_and_signer_reprs_name_only_the_address() -> None:
    signer = LocalKeySigner.from_key(RELAYER_KEY)
    from autometa.chain.web3 import connect_async

    sender = TransactionSender(connect_async("http://127.0.0.1:1"), signer)
    for text in (repr(signer), str(signer), repr(sender), f"{signer!r}", str(vars(signer))):
        assert_clean(text, spellings(RELAYER_KEY))
    assert signer.address in repr(sender)
