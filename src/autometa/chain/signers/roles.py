"""Which signer each role (worker = executor, relayer, admin) uses, from the settings.

`<ROLE>_SIGNER` names a key by spec; the seed's `WORKER_PRIVATE_KEY` / `RELAYER_PRIVATE_KEY` keep
working as plain keys. A plain key on anything but the dev chain works but logs a warning that
names the safer options. Every failure is a `ConfigError` naming the setting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from autometa.chain.signers.base import Signer, SignerError
from autometa.chain.signers.spec import SignerSpec, build_signer, parse_spec

if TYPE_CHECKING:
    from autometa.config import Settings

__all__ = ["ROLE_SETTINGS", "configured_spec", "is_dev_chain", "role_signer"]

log = structlog.get_logger("autometa.chain.signers")

DEV_CHAIN_ID = 31337
# role -> (spec setting, the seed's plain-key setting or None)
ROLE_SETTINGS: dict[str, tuple[str, str | None]] = {
    "worker": ("WORKER_SIGNER", "WORKER_PRIVATE_KEY"),
    "relayer": ("RELAYER_SIGNER", "RELAYER_PRIVATE_KEY"),
    "admin": ("ADMIN_SIGNER", None),
}
SAFER = (
    "use an encrypted keystore (`autometa keys new` / `keys import`, then {name}=keystore:PATH) "
    "or an AWS KMS key ({name}=kms:ARN)"
)


def is_dev_chain(settings: Settings) -> bool:
    from autometa.config import Network

    return settings.NETWORK is Network.DEV and settings.CHAIN_ID in (None, DEV_CHAIN_ID)


def configured_spec(settings: Settings, role: str) -> tuple[str, SignerSpec] | None:
    """(the setting that names it, the spec) for `role`, or None if nothing is configured."""
    spec_name, key_name = ROLE_SETTINGS[role]
    value = getattr(settings, spec_name)
    if value is not None:
        return spec_name, parse_spec(value.get_secret_value())  # validated at load: cannot fail here
    if key_name is not None and (key := getattr(settings, key_name)) is not None:
        return key_name, SignerSpec("key", key.get_secret_value())
    return None


def role_signer(settings: Settings, role: str, *, prompt: bool | None = None) -> Signer | None:
    """The checked signer for `role`, or None if the settings name none."""
    from autometa.config import ConfigError

    found = configured_spec(settings, role)
    if found is None:
        return None
    name, spec = found
    if spec.kind == "key" and not is_dev_chain(settings):
        log.warning(
            "signer.plain_key",
            setting=name,
            network=str(settings.NETWORK),
            hint="a plain private key in the environment is readable by anything that can read it: "
            + SAFER.format(name=ROLE_SETTINGS[role][0]),
        )
    try:
        signer = build_signer(
            spec,
            password_file=settings.KEYSTORE_PASSWORD_FILE,
            prompt=prompt,
            kms_region=settings.KMS_REGION,
            kms_endpoint_url=settings.KMS_ENDPOINT_URL,
            kms_retry_for=settings.KMS_RETRY_SECONDS,
            label=name,
        )
    except SignerError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    log.info("signer.ready", role=role, setting=name, kind=signer.kind, address=signer.address)
    return signer
