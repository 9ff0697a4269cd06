"""Each signer signs what recovers to its own address; every misconfiguration is a clear error
at start-up naming the key (and, through the settings, the setting); run-time KMS trouble is
retried with backoff, then reported without a signature."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from autometa.chain.signers import (
    AwsKmsSigner,
    LocalKeySigner,
    Signer,
    SignerConfigError,
    SignerUnavailable,
    load_keystore,
    parse_spec,
    role_signer,
)
from autometa.chain.signers.kms import SECP256K1_N
from autometa.config import ConfigError, load_settings
from tests.signers.conftest import KINDS, PASSWORD
from tests.support.kms import KmsProxy, free_port

SINK = "0x000000000000000000000000000000000000dEaD"


def _txs(nonce: int) -> list[dict[str, Any]]:
    base = {"to": SINK, "value": 7, "gas": 21_000, "nonce": nonce, "chainId": 31337, "data": "0x1234"}
    return [
        {**base, "maxFeePerGas": 30 * 10**9, "maxPriorityFeePerGas": 10**9, "type": 2},
        {**base, "gasPrice": 2 * 10**9},
        {**base, "gasPrice": 2 * 10**9, "accessList": [], "type": 1},
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_transactions_and_messages_recover_to_the_signers_address(
    kind: str, make_signer: Callable[..., Signer]
) -> None:
    signer = make_signer(kind)
    for nonce in range(8):  # several signatures: KMS's high-s half comes up and must be normalised
        for tx in _txs(nonce):
            signed = signer.sign_transaction(tx)
            assert Account.recover_transaction(signed.raw_transaction) == signer.address
            assert signed.s <= SECP256K1_N // 2
    message = encode_defunct(text="autometa")
    assert Account.recover_message(message, signature=signer.sign_message(message).signature) == signer.address
    typed = {
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}], "Ping": [{"name": "n", "type": "uint256"}]},
        "primaryType": "Ping",
        "domain": {"name": "Autometa"},
        "message": {"n": 1},
    }
    signable = encode_typed_data(full_message=typed)
    assert Account.recover_message(signable, signature=signer.sign_message(signable).signature) == signer.address


def test_kms_transaction_is_byte_identical_in_form_to_a_local_one(make_signer: Callable[..., Signer]) -> None:
    """Same fields, different key: the encodings differ only in the signature."""
    kms = make_signer("kms")
    tx = _txs(3)[0]
    signed = kms.sign_transaction(tx)
    decoded = Account.recover_transaction(signed.raw_transaction)
    assert decoded == kms.address
    local = LocalKeySigner.from_key("0x" + "11" * 32).sign_transaction(tx)
    assert len(signed.raw_transaction) == len(local.raw_transaction)


# ------------------------------------------------------------------ start-up failures


@pytest.mark.parametrize("spec", ["RSA_2048", "ECC_NIST_P256"])
def test_kms_key_of_the_wrong_type_is_refused_at_start(
    spec: str, kms_key: Callable[..., str], kms_proxy: KmsProxy
) -> None:
    key = kms_key(spec)
    with pytest.raises(SignerConfigError, match=f"{spec}/SIGN_VERIFY: Ethereum needs an ECC_SECG_P256K1 key"):
        AwsKmsSigner.connect(key, endpoint_url=kms_proxy.url)


def test_kms_encryption_key_is_refused_at_start(kms_key: Callable[..., str], kms_proxy: KmsProxy) -> None:
    key = kms_key("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    with pytest.raises(SignerConfigError, match="Ethereum needs an ECC_SECG_P256K1 key"):
        AwsKmsSigner.connect(key, endpoint_url=kms_proxy.url)


def test_disabled_kms_key_is_refused_at_start(kms_key: Callable[..., str], kms_admin: Any, kms_proxy: KmsProxy) -> None:
    key = kms_key()
    kms_admin.disable_key(KeyId=key.rsplit("/", 1)[-1])  # moto wants the bare id
    with pytest.raises(SignerConfigError, match=r"is Disabled, not Enabled"):
        AwsKmsSigner.connect(key, endpoint_url=kms_proxy.url)


def test_unknown_kms_key_is_refused_at_start(kms_proxy: KmsProxy, aws_env: dict[str, str]) -> None:
    with pytest.raises(SignerConfigError, match="KMS key alias/nope: NotFoundException"):
        AwsKmsSigner.connect("alias/nope", endpoint_url=kms_proxy.url)


def test_unreachable_kms_is_a_clear_error_at_start_after_retrying(aws_env: dict[str, str]) -> None:
    t0 = time.monotonic()
    with pytest.raises(SignerConfigError, match=r"^KMS key k1 unavailable for 2 s .*EndpointConnection.*at start-up"):
        AwsKmsSigner.connect(
            "k1", endpoint_url=f"http://127.0.0.1:{free_port()}", startup_retry_for=2, backoff=(0.2, 0.5)
        )
    assert 0.5 < time.monotonic() - t0 < 10


def test_throttled_at_start_waits_it_out(kms_key: Callable[..., str], kms_proxy: KmsProxy) -> None:
    key = kms_key()
    kms_proxy.throttle(4)
    signer = AwsKmsSigner.connect(key, endpoint_url=kms_proxy.url, backoff=(0.05, 0.2))
    assert sum(n for (_, kind), n in kms_proxy.injected.items() if kind == "throttle") == 4
    assert Account.recover_transaction(signer.sign_transaction(_txs(0)[0]).raw_transaction) == signer.address


def test_keystore_with_a_wrong_password_is_a_clear_error(keystore_file: Callable[..., Any]) -> None:
    path, _, _ = keystore_file()
    with pytest.raises(SignerConfigError, match=f"wrong password for keystore {path}"):
        load_keystore(path, "not the password")


def test_missing_and_garbled_keystores_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SignerConfigError, match="does not exist"):
        load_keystore(tmp_path / "nope.json", PASSWORD)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SignerConfigError, match="not readable keystore JSON"):
        load_keystore(bad, PASSWORD)


# ------------------------------------------------------------------ run-time failures


def test_throttled_signature_is_retried_with_backoff(make_signer: Callable[..., Signer], kms_proxy: KmsProxy) -> None:
    signer = make_signer("kms")
    kms_proxy.throttle(5)
    t0 = time.monotonic()
    signed = signer.sign_transaction(_txs(1)[0])
    assert Account.recover_transaction(signed.raw_transaction) == signer.address
    assert kms_proxy.injected[("Sign", "throttle")] == 5
    assert time.monotonic() - t0 > 0.15  # it waited between tries (backoff 0.1 s, doubling, jittered)


def test_kms_down_longer_than_the_retry_window_is_signer_unavailable(
    make_signer: Callable[..., Signer], kms_proxy: KmsProxy
) -> None:
    signer = make_signer("kms", retry_for=1.5)
    kms_proxy.down()
    t0 = time.monotonic()
    with pytest.raises(SignerUnavailable, match=r"unavailable for 1.5 s"):
        signer.sign_transaction(_txs(1)[0])
    assert 0.5 < time.monotonic() - t0 < 6  # backed off within the window, then gave up
    kms_proxy.up()
    assert Account.recover_transaction(signer.sign_transaction(_txs(1)[0]).raw_transaction) == signer.address


def test_kms_key_disabled_at_run_time_fails_at_once(
    make_signer: Callable[..., Signer], kms_admin: Any, kms_proxy: KmsProxy
) -> None:
    signer = make_signer("kms", retry_for=30)
    assert isinstance(signer, AwsKmsSigner)
    kms_admin.disable_key(KeyId=signer.key_id.rsplit("/", 1)[-1])
    t0 = time.monotonic()
    with pytest.raises(SignerConfigError, match="DisabledException"):
        signer.sign_transaction(_txs(1)[0])
    assert time.monotonic() - t0 < 5  # not retried: a disabled key stays disabled


# ------------------------------------------------------------------ specs and settings


def test_spec_parsing() -> None:
    assert parse_spec("0x" + "ab" * 32).kind == "key"
    assert parse_spec("key:" + "ab" * 32).kind == "key"
    spec = parse_spec("keystore:/etc/autometa/w.json?password_file=/run/secrets/pw")
    assert (spec.kind, spec.target, str(spec.password_file)) == ("keystore", "/etc/autometa/w.json", "/run/secrets/pw")
    assert parse_spec("kms:arn:aws:kms:eu-west-1:111122223333:key/abc").target.endswith("key/abc")
    assert "ab" * 32 not in repr(parse_spec("key:0x" + "ab" * 32))
    for bad, why in [
        ("vault:x", "expected key:0x…"),
        ("key:0x12", "32-byte hex"),
        ("kms:", "KMS key id"),
        ("keystore:", "path"),
        ("keystore:/k.json?pasword_file=x", "unknown keystore option"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_spec(bad)


def test_bad_signer_setting_fails_at_load_naming_it_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    secret = "key:0x" + "cd" * 31  # one byte short
    with pytest.raises(ConfigError) as err:
        load_settings(WORKER_SIGNER=secret)
    assert "WORKER_SIGNER" in str(err.value) and "cd" * 31 not in str(err.value)
    with pytest.raises(ConfigError, match="RELAYER_SIGNER and RELAYER_PRIVATE_KEY are both set"):
        load_settings(RELAYER_SIGNER="kms:k", RELAYER_PRIVATE_KEY="0x" + "11" * 32)


def test_signer_that_cannot_start_names_the_setting(
    kms_key: Callable[..., str], kms_proxy: KmsProxy, keystore_file: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir("/")
    settings = load_settings(RELAYER_SIGNER=f"kms:{kms_key('ECC_NIST_P256')}", KMS_ENDPOINT_URL=kms_proxy.url)
    with pytest.raises(ConfigError, match=r"^RELAYER_SIGNER: KMS key .* is ECC_NIST_P256/SIGN_VERIFY"):
        role_signer(settings, "relayer")
    path, _, _ = keystore_file()
    wrong = path.parent / "wrong"
    wrong.write_text("nope")
    settings = load_settings(WORKER_SIGNER=f"keystore:{path}", KEYSTORE_PASSWORD_FILE=str(wrong))
    with pytest.raises(ConfigError, match=f"^WORKER_SIGNER: wrong password for keystore {path}"):
        role_signer(settings, "worker")
    settings = load_settings(WORKER_SIGNER=f"keystore:{path}")
    with pytest.raises(ConfigError, match="WORKER_SIGNER: no password for keystore"):
        role_signer(settings, "worker", prompt=False)


def test_each_way_of_naming_a_key_builds_the_same_signer(
    keystore_file: Callable[..., Any], kms_key: Callable[..., str], kms_proxy: KmsProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir("/")
    path, password_file, held = keystore_file()
    key = "0x" + "01" * 32  # keystore_file's first key
    for settings in [
        load_settings(WORKER_PRIVATE_KEY=key),
        load_settings(WORKER_SIGNER=key),
        load_settings(WORKER_SIGNER=f"key:{key}"),
        load_settings(WORKER_SIGNER=f"keystore:{path}?password_file={password_file}"),
        load_settings(WORKER_SIGNER=f"keystore:{path}", KEYSTORE_PASSWORD_FILE=str(password_file)),
    ]:
        signer = role_signer(settings, "worker")
        assert signer is not None and signer.address == held.address
    arn = kms_key()
    kms = role_signer(load_settings(ADMIN_SIGNER=f"kms:{arn}", KMS_ENDPOINT_URL=kms_proxy.url), "admin")
    assert isinstance(kms, AwsKmsSigner) and kms.key_id == arn
    assert role_signer(load_settings(), "admin") is None


def test_plain_key_on_a_live_chain_starts_with_a_warning_naming_the_safer_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from structlog.testing import capture_logs

    monkeypatch.chdir("/")
    key = "0x" + "42" * 32
    with capture_logs() as logs:
        assert role_signer(load_settings(NETWORK="sepolia", WORKER_PRIVATE_KEY=key), "worker") is not None
        assert role_signer(load_settings(RELAYER_SIGNER=key, CHAIN_ID=1284), "relayer") is not None
        assert role_signer(load_settings(WORKER_PRIVATE_KEY=key), "worker") is not None  # the dev chain: quiet
    warnings = [e for e in logs if e["event"] == "signer.plain_key"]
    assert [w["setting"] for w in warnings] == ["WORKER_PRIVATE_KEY", "RELAYER_SIGNER"]
    for w in warnings:
        assert "keystore" in w["hint"] and "kms:" in w["hint"] and "42" * 32 not in str(w)


def test_executor_with_a_bad_signer_stops_at_start_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kms_key: Callable[..., str], kms_proxy: KmsProxy, dev_chain: Any
) -> None:
    from typer.testing import CliRunner

    from autometa.cli.main import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MOONBASE_RPC", dev_chain.url)
    monkeypatch.setenv("REGISTRY_ADDRESS", dev_chain.deployment.address)
    monkeypatch.delenv("WORKER_PRIVATE_KEY", raising=False)
    runner = CliRunner()
    cases = [
        ({"WORKER_SIGNER": "vault:x"}, 2, "WORKER_SIGNER is not a signer spec"),
        (
            {"WORKER_SIGNER": f"kms:{kms_key('RSA_2048')}", "KMS_ENDPOINT_URL": kms_proxy.url},
            2,
            "WORKER_SIGNER: KMS key",
        ),
        ({"WORKER_SIGNER": f"keystore:{tmp_path / 'none.json'}"}, 2, "none.json does not exist"),
        ({"WORKER_SIGNER": "key:0x" + "42" * 32}, 1, "is not an allow-listed executor"),
    ]
    for env, code, message in cases:
        result = runner.invoke(app, ["executor"], env=env)
        assert result.exit_code == code, (env, result.stdout, result.stderr)
        said = "".join(result.stderr.split())  # rich wraps long lines, even inside words
        assert message.replace(" ", "") in said and "42" * 32 not in said
