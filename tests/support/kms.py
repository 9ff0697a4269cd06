"""A local KMS for the signer tests: moto's KMS served over HTTP on a loopback port (boto3
reaches it by endpoint URL, as it would reach AWS), and a fault-injecting proxy in front of it
for what moto cannot do (throttle, be unreachable mid-run).

`KmsProxy` forwards each request to moto unless told otherwise:

* ``throttle(n)``: the next `n` calls (or every call, `n=None`) answer HTTP 400
  `ThrottlingException`, exactly as KMS answers a caller over its request quota;
* ``down()``: every call's connection is closed without an answer until ``up()``;
* ``clear()``: forward everything again.

It counts the calls it forwarded and the faults it injected, per KMS operation.

moto 5.2.5 parses `Sign`'s `MessageType` and ignores it: a `DIGEST` is hashed again, so the
signature verifies against sha256(digest), unlike AWS (open upstream: getmoto/moto#10202).
It also signs with a disabled key, where KMS answers `DisabledException` (and
`KMSInvalidStateException` for a key pending deletion). `_sign_digests_as_aws_does` makes the
stand-in follow the KMS API reference on both points for ECDSA keys — `DIGEST` is signed as given
(cryptography's `Prehashed`) and must be as long as the algorithm's hash; a key that is not
Enabled refuses to sign — without which no KMS-signed Ethereum transaction could be checked
against it, nor a key disabled at run time be seen.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from moto.core.exceptions import JsonRESTError
from moto.kms import responses as kms_responses
from moto.kms import utils as kms_utils
from moto.kms.exceptions import ValidationException
from moto.server import ThreadedMotoServer

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


_request = threading.local()  # moto serves each request on its own thread
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "ECDSA_SHA_256": hashes.SHA256(),
    "ECDSA_SHA_384": hashes.SHA384(),
    "ECDSA_SHA_512": hashes.SHA512(),
}


def _sign_digests_as_aws_does() -> None:
    """Patch moto's KMS `Sign` so that `MessageType=DIGEST` signs the digest itself (ECDSA keys)."""
    if getattr(kms_responses.KmsResponse.sign, "_digest_aware", False):
        return
    plain_sign = kms_responses.KmsResponse.sign
    plain_key_sign = kms_utils.ECDSAPrivateKey.sign

    def sign(self: Any) -> str:
        key_id = self.kms_backend.get_key_id(self._get_param("KeyId") or "")
        key = self.kms_backend.keys.get(key_id)
        if key is not None and key.key_state != "Enabled":
            code = "DisabledException" if key.key_state == "Disabled" else "KMSInvalidStateException"
            raise JsonRESTError(code, f"{key.arn} is {key.key_state.lower()}.")
        _request.message_type = self._get_param("MessageType") or "RAW"
        try:
            return plain_sign(self)  # type: ignore[no-any-return]
        finally:
            _request.message_type = "RAW"

    def key_sign(self: Any, message: bytes, signing_algorithm: str) -> bytes:
        if getattr(_request, "message_type", "RAW") != "DIGEST":
            return plain_key_sign(self, message, signing_algorithm)  # type: ignore[no-any-return]
        kms_utils.validate_signing_algorithm(signing_algorithm, self.valid_signing_algorithms)
        algorithm = _HASHES[signing_algorithm]
        if len(message) != algorithm.digest_size:
            raise ValidationException(f"Digest is invalid length for algorithm {signing_algorithm}.")
        return bytes(self.private_key.sign(message, ec.ECDSA(Prehashed(algorithm))))

    sign._digest_aware = True  # type: ignore[attr-defined]
    kms_responses.KmsResponse.sign = sign  # type: ignore[method-assign]
    kms_utils.ECDSAPrivateKey.sign = key_sign  # type: ignore[method-assign]


class KmsServer:
    """moto's server in a thread on a free loopback port."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def start(self) -> KmsServer:
        _sign_digests_as_aws_does()
        self._server.start()
        return self

    @property
    def url(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.stop()


class KmsProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._lock = threading.Lock()
        self._throttle: int | None = 0  # calls left to throttle; None: all
        self._down = False
        self.forwarded: Counter[str] = Counter()
        self.injected: Counter[tuple[str, str]] = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = (self.headers.get("X-Amz-Target") or "?").rpartition(".")[2]
                fault = proxy._fault(operation)
                if fault == "down":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault == "throttle":
                    payload = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("x-amzn-ErrorType", "ThrottlingException")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                reply = httpx.post(proxy.upstream + self.path, content=body, headers=headers, timeout=30)
                with proxy._lock:
                    proxy.forwarded[operation] += 1
                self.send_response(reply.status_code)
                for key, value in reply.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.content)))
                self.end_headers()
                self.wfile.write(reply.content)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _fault(self, operation: str) -> str | None:
        with self._lock:
            if self._down:
                self.injected[(operation, "down")] += 1
                return "down"
            if self._throttle is None or self._throttle > 0:
                if self._throttle is not None:
                    self._throttle -= 1
                self.injected[(operation, "throttle")] += 1
                return "throttle"
        return None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> KmsProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def throttle(self, times: int | None = None) -> None:
        with self._lock:
            self._throttle = times

    def down(self) -> None:
        with self._lock:
            self._down = True

    def up(self) -> None:
        with self._lock:
            self._down = False

    def clear(self) -> None:
        with self._lock:
            self._down, self._throttle = False, 0


def free_port() -> int:
    """A loopback port nothing listens on (for "KMS unreachable")."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
