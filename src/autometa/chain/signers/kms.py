"""AWS KMS keys (`ECC_SECG_P256K1`, usage `SIGN_VERIFY`): the private key never leaves KMS.

KMS signs a 32-byte digest with ECDSA and answers a DER `SEQUENCE { r, s }` without a recovery
id. Ethereum needs `s` in the lower half of the curve order (EIP-2) and `v`: `s` is normalised to
`n - s` when high, and `v` is the one of {0, 1} whose recovered public key is the key's own.

Failures: at start-up (`AwsKmsSigner.connect`) an unreachable endpoint, a missing or disabled key,
or a key of another type is a `SignerConfigError` naming the key. At run time, unreachable and
throttled calls are retried with exponential backoff and jitter for `retry_for` seconds, then a
`SignerUnavailable`; a key disabled meanwhile is a `SignerConfigError` at once. Either way no
signature exists, so the sender gives the nonce back and nothing was broadcast.

boto3 is an optional dependency (`pip install autometa[kms]`); credentials and region come from
boto3's usual chain (environment, profile, instance role), the endpoint from `KMS_ENDPOINT_URL`.
"""

from __future__ import annotations

import random
import time
from typing import Any

import structlog
from eth_keys.main import KeyAPI
from eth_utils import keccak, to_checksum_address

from autometa.chain.signers.base import DigestSigner, SignerConfigError, SignerError, SignerUnavailable

__all__ = ["SECP256K1_N", "AwsKmsSigner", "der_signature_to_rs", "spki_to_address"]

log = structlog.get_logger("autometa.chain.signers.kms")

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
KEY_SPEC = "ECC_SECG_P256K1"
# Codes worth waiting out; everything else KMS answers is a fact about the key or the request.
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "KMSInternalException",
        "DependencyTimeoutException",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "SlowDown",
    }
)


# ------------------------------------------------------------------ DER (just what KMS answers)


def _der_read(data: bytes, at: int) -> tuple[int, bytes, int]:
    """(tag, content, next offset) of the DER element at `at`."""
    if at + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or at + n > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[at : at + n], "big")
        at += n
    if at + length > len(data):
        raise ValueError("truncated DER")
    return tag, data[at : at + length], at + length


def der_signature_to_rs(der: bytes) -> tuple[int, int]:
    """(r, s) from an ECDSA `SEQUENCE { INTEGER r, INTEGER s }`."""
    tag, body, _ = _der_read(der, 0)
    if tag != 0x30:
        raise ValueError("not a DER sequence")
    tag_r, r, at = _der_read(body, 0)
    tag_s, s, _ = _der_read(body, at)
    if tag_r != 0x02 or tag_s != 0x02:
        raise ValueError("not two DER integers")
    return int.from_bytes(r, "big"), int.from_bytes(s, "big")


def spki_to_address(spki: bytes) -> str:
    """The Ethereum address of a DER SubjectPublicKeyInfo holding an uncompressed secp256k1 point."""
    tag, body, _ = _der_read(spki, 0)
    if tag != 0x30:
        raise ValueError("not a SubjectPublicKeyInfo")
    _, _, at = _der_read(body, 0)  # AlgorithmIdentifier (checked through KeySpec instead)
    tag, bits, _ = _der_read(body, at)
    if tag != 0x03 or len(bits) != 66 or bits[0] != 0 or bits[1] != 0x04:
        raise ValueError("not an uncompressed EC public key")
    return to_checksum_address(keccak(bits[2:])[-20:])


# ------------------------------------------------------------------ the signer


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def _transient(exc: BaseException) -> bool:
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ConnectionError | HTTPClientError):  # unreachable, reset, timed out
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return _error_code(exc) in TRANSIENT_CODES or int(status or 0) >= 500
    return False


def _describe(exc: BaseException) -> str:
    """An error in one line: the KMS code and message, or the transport failure's class."""
    code = _error_code(exc)
    if code:
        message = getattr(exc, "response", {}).get("Error", {}).get("Message") or ""
        return f"{code}: {message}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


class AwsKmsSigner(DigestSigner):
    """Sign with an AWS KMS key. Build it with `connect`, which checks the key once."""

    kind = "kms"
    remote = True

    def __init__(
        self,
        client: Any,
        key_id: str,
        address: str,
        *,
        retry_for: float = 60.0,
        backoff: tuple[float, float] = (0.25, 5.0),
    ) -> None:
        self._client, self.key_id, self._address = client, key_id, to_checksum_address(address)
        self.retry_for, self.backoff = retry_for, backoff

    @classmethod
    def client(cls, *, region: str | None = None, endpoint_url: str | None = None, timeout: float = 5.0) -> Any:
        """A boto3 KMS client without boto3's own retries: the signer retries (backoff with
        jitter, bounded by `retry_for`), so one policy decides how long a transaction waits."""
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise SignerConfigError("KMS signers need boto3: pip install 'autometa[kms]'") from None
        config = Config(
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=timeout,
            read_timeout=timeout,
            region_name=region,
        )
        try:
            return boto3.session.Session().client("kms", endpoint_url=endpoint_url, config=config)
        except Exception as exc:  # NoRegionError and friends
            raise SignerConfigError(
                f"cannot build a KMS client: {_describe(exc)} (set KMS_REGION or AWS_REGION)"
            ) from None

    @classmethod
    def connect(
        cls,
        key_id: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
        startup_retry_for: float = 10.0,
        retry_for: float = 60.0,
        backoff: tuple[float, float] = (0.25, 5.0),
    ) -> AwsKmsSigner:
        """Check the key (reachable, enabled, `ECC_SECG_P256K1` for signing) and learn its address.
        Every problem is a `SignerConfigError` naming the key."""
        if region is None and key_id.startswith("arn:"):
            parts = key_id.split(":")
            region = parts[3] if len(parts) > 3 and parts[3] else None
        if client is None:
            client = cls.client(region=region, endpoint_url=endpoint_url)
        probe = cls(client, key_id, "0x" + "00" * 20, retry_for=startup_retry_for, backoff=backoff)
        try:
            meta = probe._call("describe_key", KeyId=key_id)["KeyMetadata"]
            public = probe._call("get_public_key", KeyId=key_id)
        except SignerUnavailable as exc:
            raise SignerConfigError(f"{exc} — at start-up: is KMS_ENDPOINT_URL / the region right?") from None
        state, spec = meta.get("KeyState"), public.get("KeySpec") or meta.get("KeySpec")
        usage = public.get("KeyUsage") or meta.get("KeyUsage")
        if state != "Enabled":
            raise SignerConfigError(f"KMS key {key_id} is {state}, not Enabled")
        if spec != KEY_SPEC or usage != "SIGN_VERIFY":
            raise SignerConfigError(
                f"KMS key {key_id} is {spec}/{usage}: Ethereum needs an {KEY_SPEC} key with usage SIGN_VERIFY"
            )
        try:
            address = spki_to_address(bytes(public["PublicKey"]))
        except (KeyError, ValueError) as exc:
            raise SignerConfigError(f"KMS key {key_id}: unreadable public key ({exc})") from None
        signer = cls(client, key_id, address, retry_for=retry_for, backoff=backoff)
        log.info("signer.kms_ready", key_id=key_id, address=address)
        return signer

    @property
    def address(self) -> str:
        return self._address

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One KMS call, transient failures retried with backoff for `retry_for` seconds."""
        deadline = time.monotonic() + self.retry_for
        delay, longest = self.backoff
        attempt = 0
        while True:
            attempt += 1
            try:
                result: dict[str, Any] = getattr(self._client, operation)(**params)
                if attempt > 1:
                    log.info("signer.kms_recovered", key_id=self.key_id, operation=operation, attempts=attempt)
                return result
            except Exception as exc:
                if not _transient(exc):
                    if type(exc).__module__.startswith("botocore") or _error_code(exc):
                        raise SignerConfigError(f"KMS key {self.key_id}: {_describe(exc)}") from None
                    raise
                wait = min(delay, longest) * (0.5 + random.random() / 2)
                if time.monotonic() + wait > deadline:
                    raise SignerUnavailable(
                        f"KMS key {self.key_id} unavailable for {self.retry_for:g} s "
                        f"({attempt} attempts): {_describe(exc)}"
                    ) from None
                log.warning(
                    "signer.kms_retry",
                    key_id=self.key_id,
                    operation=operation,
                    attempt=attempt,
                    error=_describe(exc),
                    retry_in_s=round(wait, 2),
                )
                time.sleep(wait)
                delay *= 2

    def sign_digest(self, digest: bytes) -> tuple[int, int, int]:
        if len(digest) != 32:
            raise ValueError("a digest is 32 bytes")
        answer = self._call(
            "sign", KeyId=self.key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256"
        )
        try:
            r, s = der_signature_to_rs(bytes(answer["Signature"]))
        except (KeyError, ValueError) as exc:
            raise SignerError(f"KMS key {self.key_id} answered an unreadable signature ({exc})") from None
        if s > SECP256K1_N // 2:
            s = SECP256K1_N - s  # EIP-2: only low-s signatures are valid
        for v in (0, 1):
            try:
                recovered = KeyAPI.Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest)
            except Exception:
                continue
            if recovered.to_checksum_address() == self._address:
                return v, r, s
        raise SignerError(f"KMS key {self.key_id} produced a signature that does not recover to {self._address}")
