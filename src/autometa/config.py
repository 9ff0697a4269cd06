"""All configuration, in one pydantic-settings class read from the environment and `.env`.

The seed worker's `.env` names (`MOONBASE_RPC`, `REGISTRY_ADDRESS`, `WORKER_PRIVATE_KEY`, …)
keep working unchanged. A bad value fails at start-up with the setting's name; private keys are
`SecretStr`, so they never show up in a repr, a log line or an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from eth_utils import is_checksum_address, is_hex_address, to_checksum_address
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from autometa.config_chains import ChainConfig, check_unique, parse_chains, private_key
from autometa.networks import RETIRED, Network, Preset, by_chain_id, preset

__all__ = ["ChainConfig", "ConfigError", "Network", "Settings", "load_settings"]

# Single-chain settings that CHAINS replaces: both at once would leave it unclear which applies.
_PER_CHAIN = ("MOONBASE_RPC", "CHAIN_ID", "REGISTRY_ADDRESS", "ACTIONEXECUTOR_ADDRESS", "FEEESCROW_ADDRESS")


DEFAULT_ASSETS = ("ethereum", "bitcoin", "moonbeam", "polkadot", "usd-coin", "tether")


class ConfigError(Exception):
    """A setting is missing or wrong; the message names it and says how to fix it."""


def _address(value: Any, name: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not is_hex_address(value):
        raise ValueError(f"{name} must be a 0x-prefixed 20-byte hex address")
    if value != value.lower() and value != value.upper() and not is_checksum_address(value):
        raise ValueError(f"{name} has an invalid EIP-55 checksum")
    return to_checksum_address(value)


class Settings(BaseSettings):
    """Every setting Autometa reads. Field names are the environment variable names."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=True)

    NETWORK: Network = Network.DEV
    # Several chains served by one store, API and dashboard (autometa.config_chains): JSON, e.g.
    # [{"network": "base", "rpc": "https://…", "contract": "0x…"}, {"chain_id": 31338, "rpc": "…"}],
    # or preset names ("base,arbitrum"). Unset: the single-chain settings below are a one-chain list.
    CHAINS: Annotated[list[ChainConfig] | None, NoDecode] = None
    MOONBASE_RPC: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MOONBASE_RPC", "RPC_URL"),
        description="JSON-RPC endpoint(s), comma-separated: the first healthy one is used, the others on failure",
    )
    CHAIN_ID: int | None = Field(default=None, ge=1, description="expected chain id (checked against the node)")
    # Retries of one JSON-RPC request (429 honouring Retry-After, 5xx, lost connections): at most
    # this many requests, never sleeping past this many seconds after the first (then a 503).
    RPC_RETRY_ATTEMPTS: int = Field(default=6, ge=1, le=20)
    RPC_RETRY_BUDGET_S: float = Field(default=12.0, ge=0, le=300)
    # Several endpoints: one that fails (or rate-limits) this many times in a row is skipped for
    # RPC_COOLDOWN_S seconds, then tried again.
    RPC_FAILOVER_AFTER: int = Field(default=2, ge=1, le=100)
    RPC_COOLDOWN_S: float = Field(default=30.0, ge=0, le=3600)
    REGISTRY_ADDRESS: str | None = None
    ACTIONEXECUTOR_ADDRESS: str | None = None
    FEEESCROW_ADDRESS: str | None = None
    WORKER_PRIVATE_KEY: SecretStr | None = None
    RELAYER_PRIVATE_KEY: SecretStr | None = None
    # Signers by spec (autometa.chain.signers): key:0x… | keystore:PATH[?password_file=F] | kms:ARN-or-id.
    # Each replaces the role's *_PRIVATE_KEY (set one or the other); ADMIN_SIGNER is for admin commands.
    WORKER_SIGNER: SecretStr | None = None
    RELAYER_SIGNER: SecretStr | None = None
    ADMIN_SIGNER: SecretStr | None = None
    KEYSTORE_PASSWORD_FILE: Path | None = Field(default=None, description="file holding keystore passwords")
    KMS_ENDPOINT_URL: str | None = Field(default=None, description="KMS endpoint (default: AWS's for the region)")
    KMS_REGION: str | None = Field(default=None, description="AWS region (default: the key ARN's, or boto3's)")
    KMS_RETRY_SECONDS: float = Field(default=60.0, gt=0, le=3600, description="how long a signature waits out KMS")

    POLL_INTERVAL: float = Field(default=10.0, gt=0, le=3600)
    # Seconds between blocks (default: the network preset's). The sender looks for a receipt one
    # block time after broadcasting, not sooner: each earlier look is a request for nothing.
    BLOCK_TIME_S: float | None = Field(default=None, gt=0, le=600)
    # Batches in flight per executor. A batch's slot is held from simulation until its block is
    # seen (~1 block), so in-flight capacity is what bounds a burst: with batches of 0.15 of a
    # block (BATCH_GAS_SHARE), 24 of them are more than a block's worth of runs, so one executor
    # keeps the next block full and the block gas limit, not the executor, sets the pace
    # (bench/throughput.py; at 8 x 50 one executor took 10 blocks for 1,000 runs due together).
    MAX_CONCURRENT_EXECUTIONS: int = Field(default=24, ge=1, le=1024)
    # The most runs per `executeBatch`; BATCH_GAS_SHARE usually ends a batch sooner.
    BATCH_SIZE: int = Field(default=50, ge=1, le=256)
    # The most of the block gas limit one batch's transaction may ask for (its gas limit: every
    # run's action limit + what the runs use, × 5/4). A block takes a transaction only while its
    # gas limit fits the gas left, so a few big batches leave much of each block empty (50
    # native transfers, 6.6 M gas: 450 of the ~560 runs a 30 M block holds); 0.15 fills ~90 %
    # of it with ~25-run batches and few enough transactions (one signature and one journal
    # write each, in turn per key) for one executor to send a block's worth in a block time.
    BATCH_GAS_SHARE: float = Field(default=0.15, gt=0, le=1)
    PRICE_FEED_URL: str = "https://api.coingecko.com/api/v3/simple/price"
    REDIS_URL: str | None = None
    BACKEND_API_URL: str = "http://localhost:8000"
    USE_BACKEND_INTEGRATION: bool = True
    SUPPORTED_ASSETS: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_ASSETS))

    DATA_DIR: Path = Path(".autometa")
    DATABASE_URL: str | None = None

    # Blocks the indexer stays behind the head, or a block tag ("finalized", "safe") where the node
    # has one: then only what the chain calls final is indexed (later, never rolled back).
    CONFIRMATIONS: int | Literal["finalized", "safe"] = 0
    INDEXER_BATCH_BLOCKS: int = Field(default=2000, ge=1, le=100_000)
    MAX_FEE_PER_GAS_GWEI: float = Field(default=500.0, gt=0)
    PRIORITY_FEE_GWEI: float = Field(default=1.0, ge=0)
    TX_REPLACE_AFTER_BLOCKS: int = Field(default=3, ge=1, le=1000)
    TX_FEE_BUMP_PERCENT: int = Field(default=15, ge=10, le=500)

    API_HOST: str = "127.0.0.1"
    API_PORT: int = Field(default=8000, ge=1, le=65535)
    API_KEY: SecretStr | None = None
    CORS_ORIGINS: Annotated[list[str], NoDecode] = Field(default_factory=list)
    RATE_LIMIT_PER_MINUTE: int = Field(default=60, ge=1)
    MAX_RELAYER_FEE_WEI: int = Field(default=10**17, ge=0)

    LOG_LEVEL: str = "INFO"
    LOG_JSON: bool = False

    @field_validator("CONFIRMATIONS", mode="before")
    @classmethod
    def _check_confirmations(cls, value: Any) -> Any:
        if isinstance(value, str) and not (value.strip().isascii() and value.strip().isdigit()):
            tag = value.strip().lower()
            if tag not in ("finalized", "safe"):
                raise ValueError("CONFIRMATIONS must be a number of blocks (0-1000), 'finalized' or 'safe'")
            return tag
        depth = int(value)
        if not 0 <= depth <= 1000:
            raise ValueError("CONFIRMATIONS must be a number of blocks (0-1000), 'finalized' or 'safe'")
        return depth

    @field_validator("CHAINS", mode="before")
    @classmethod
    def _parse_chains(cls, value: Any) -> Any:
        return parse_chains(value)

    @field_validator("CHAINS")
    @classmethod
    def _check_chains(cls, value: list[ChainConfig] | None) -> list[ChainConfig] | None:
        return check_unique(value) if value is not None else None

    @model_validator(mode="after")
    def _chains_or_single(self) -> Settings:
        if self.CHAINS is not None:
            both = [name for name in _PER_CHAIN if getattr(self, name) not in (None, "")]
            if both:
                raise ValueError(
                    f"CHAINS and {', '.join(both)} are both set: give each chain's rpc / chain_id / contract "
                    "in its CHAINS entry and unset the single-chain setting(s)"
                )
        return self

    @field_validator("NETWORK")
    @classmethod
    def _check_network(cls, value: Network) -> Network:
        if value in RETIRED:
            raise ValueError(RETIRED[value])
        return value

    # Notifications (autometa.notify). Secrets (webhook keys, SMTP passwords, bot tokens) are
    # SecretStr here and never logged, returned by the API or echoed in an error.
    NOTIFY_ENABLED: bool = Field(default=True, description="host a delivery worker in api/up/notify processes")
    NOTIFY_OPERATOR_SUBSCRIPTIONS: SecretStr | None = Field(
        default=None, description="JSON list of {name, channel, target, secret?, events?, workflow_ids?}"
    )
    NOTIFY_SMTP_URL: SecretStr | None = Field(default=None, description="apprise mailto(s):// URL owners' email uses")
    NOTIFY_ALLOW_PRIVATE_TARGETS: Annotated[list[str], NoDecode] = Field(default_factory=list)
    NOTIFY_CONCURRENCY: int = Field(default=32, ge=1, le=1024)
    NOTIFY_POLL_S: float = Field(default=0.25, gt=0, le=60)
    NOTIFY_LEASE_S: float = Field(default=60.0, ge=1, le=3600)
    NOTIFY_MAX_ATTEMPTS: int = Field(default=12, ge=1, le=100)
    NOTIFY_BACKOFF_BASE_S: float = Field(default=2.0, gt=0, le=3600)
    NOTIFY_BACKOFF_MAX_S: float = Field(default=900.0, gt=0, le=86400)
    NOTIFY_TIMEOUT_S: float = Field(default=10.0, gt=0, le=300)
    NOTIFY_MAX_RESPONSE_BYTES: int = Field(default=65536, ge=0, le=10**8)
    NOTIFY_RUNWAY_RUNS: int = Field(default=3, ge=0, le=10**6)
    NOTIFY_RUNWAY_DAYS: float = Field(default=1.0, ge=0, le=3650)
    # Watch thresholds (what the scheduler and executors report as events).
    NOTIFY_MISSED_BLOCKS: int = Field(
        default=20, ge=1, le=10**6, description="run.missed: a due run not executed within this many blocks"
    )
    NOTIFY_BACKLOG_BLOCKS: int = Field(
        default=10, ge=1, le=10**6, description="queue.backlog: due runs waiting longer than this many blocks"
    )
    NOTIFY_BACKLOG_DEPTH: int = Field(
        default=1000, ge=1, le=10**9, description="queue.backlog: jobs queued or in flight above this"
    )
    NOTIFY_LOW_GAS_WEI: int = Field(
        default=10**16, ge=0, description="executor.low_gas: an executor's balance below this (0: off)"
    )
    NOTIFY_GAS_CHECK_BLOCKS: int = Field(
        default=10, ge=1, le=10**6, description="an executor reads its balance at most once per this many blocks"
    )
    NOTIFY_RPC_DOWN_S: float = Field(
        default=30.0, gt=0, le=86400, description="rpc.down: every RPC call of a process failing for this long"
    )

    @field_validator("REGISTRY_ADDRESS", "ACTIONEXECUTOR_ADDRESS", "FEEESCROW_ADDRESS", mode="before")
    @classmethod
    def _check_address(cls, value: Any, info: Any) -> str | None:
        return _address(value, info.field_name)

    @field_validator("WORKER_PRIVATE_KEY", "RELAYER_PRIVATE_KEY", mode="before")
    @classmethod
    def _check_key(cls, value: Any, info: Any) -> Any:
        return private_key(value, info.field_name)

    @field_validator("WORKER_SIGNER", "RELAYER_SIGNER", "ADMIN_SIGNER", mode="before")
    @classmethod
    def _check_signer(cls, value: Any, info: Any) -> Any:
        from autometa.chain.signers.spec import parse_spec

        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw in (None, ""):
            return None
        if not isinstance(raw, str):
            raise ValueError(f"{info.field_name} must be a signer spec string")
        try:
            parse_spec(raw)
        except ValueError as exc:
            raise ValueError(f"{info.field_name} is not a signer spec: {exc}") from None  # never echo it
        return SecretStr(raw.strip())

    @model_validator(mode="after")
    def _one_key_per_role(self) -> Settings:
        for spec, key in (("WORKER_SIGNER", "WORKER_PRIVATE_KEY"), ("RELAYER_SIGNER", "RELAYER_PRIVATE_KEY")):
            if getattr(self, spec) is not None and getattr(self, key) is not None:
                raise ValueError(f"{spec} and {key} are both set: keep one (the signer spec is the newer way)")
        return self

    @field_validator("MOONBASE_RPC")
    @classmethod
    def _check_rpc(cls, value: str | None) -> str | None:
        if value is None:
            return None
        urls = [item.strip().rstrip("/") for item in value.split(",") if item.strip()]
        if not urls:
            raise ValueError("no endpoint given (one URL, or several separated by commas)")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        if len(set(urls)) != len(urls):
            raise ValueError("an endpoint is listed twice")
        return ",".join(urls)

    @field_validator("SUPPORTED_ASSETS", "CORS_ORIGINS", "NOTIFY_ALLOW_PRIVATE_TARGETS", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("NOTIFY_ALLOW_PRIVATE_TARGETS")
    @classmethod
    def _check_ranges(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP range (e.g. 127.0.0.0/8, 10.0.0.0/8, ::1/128)") from None
        return value

    @field_validator("NOTIFY_OPERATOR_SUBSCRIPTIONS", mode="after")
    @classmethod
    def _check_operator_subscriptions(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from autometa.notify.operator import parse_operator_subscriptions

            parse_operator_subscriptions(value.get_secret_value())  # raises ValueError naming the entry
        return value

    @field_validator("LOG_LEVEL")
    @classmethod
    def _check_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        return level

    @field_validator("PRICE_FEED_URL", "BACKEND_API_URL")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    # ---------------------------------------------------------------- derived

    @property
    def preset(self) -> Preset:
        """The network's defaults (chain id, public endpoint, block time, finality, chain module)."""
        return preset(self.NETWORK)

    @property
    def rpc_url(self) -> str:
        """The endpoint setting as given (comma-separated when several; `connect_async` takes it)."""
        return self.MOONBASE_RPC or self.preset.rpc_url

    @property
    def block_time_s(self) -> float:
        return self.BLOCK_TIME_S if self.BLOCK_TIME_S is not None else self.preset.block_time_s

    @property
    def rpc_urls(self) -> list[str]:
        """Every configured endpoint, in the operator's order of preference."""
        return self.rpc_url.split(",")

    @property
    def expected_chain_id(self) -> int | None:
        if self.CHAIN_ID is not None:
            return self.CHAIN_ID
        return None if self.NETWORK is Network.DEV else self.preset.chain_id

    @property
    def contract_address(self) -> str | None:
        """The Autometa contract. It is registry, executor and escrow in one, so the seed's three
        address settings must agree wherever more than one is set."""
        addrs = {self.REGISTRY_ADDRESS, self.ACTIONEXECUTOR_ADDRESS, self.FEEESCROW_ADDRESS} - {None}
        if len(addrs) > 1:
            raise ConfigError(
                "REGISTRY_ADDRESS, ACTIONEXECUTOR_ADDRESS and FEEESCROW_ADDRESS differ, but one Autometa "
                "contract is registry, executor and escrow: set all three to its address "
                "(`autometa deploy` prints the lines)"
            )
        return next(iter(addrs), None)

    @property
    def chains(self) -> list[ChainConfig]:
        """Every chain served, in the operator's order (the first is the default chain: the one
        the seed's paths and the API's default mean). Without CHAINS, the single-chain settings."""
        if self.CHAINS is not None:
            return list(self.CHAINS)
        net = self.preset
        if self.CHAIN_ID is not None and self.CHAIN_ID != net.chain_id:
            # a chain of no preset served with NETWORK=dev rules (or a preset's other id)
            found = by_chain_id(self.CHAIN_ID)
            network = found.network if found is not None else None
            single = ChainConfig(
                network=network,
                chain_id=self.CHAIN_ID,
                name=None if network is not None else str(self.CHAIN_ID),
                rpc=self.rpc_url,
            )
        else:
            single = ChainConfig(network=self.NETWORK, rpc=self.MOONBASE_RPC)
        try:
            contract = self.contract_address
        except ConfigError:
            contract = None  # the gateway reports the disagreeing address settings when it is used
        return [single.model_copy(update={"contract": contract})]

    @property
    def default_chain(self) -> ChainConfig:
        return self.chains[0]

    def for_chain(self, chain: ChainConfig | str | int) -> Settings:
        """These settings as if ``chain`` were the only one: the single-chain view every
        per-chain part (gateway, relayer, sender, workers) reads. ``chain``: an entry, its name
        or its chain id. Without CHAINS, the settings themselves."""
        entry = chain if isinstance(chain, ChainConfig) else self.chain(chain)
        if self.CHAINS is None:
            return self
        found = entry.preset
        update: dict[str, Any] = {
            "CHAINS": None,
            "NETWORK": found.network if found is not None else Network.DEV,
            "CHAIN_ID": entry.id,
            "MOONBASE_RPC": entry.rpc,
            "REGISTRY_ADDRESS": entry.contract,
            "ACTIONEXECUTOR_ADDRESS": None,
            "FEEESCROW_ADDRESS": None,
        }
        for role in ("WORKER", "RELAYER"):
            signer, key = getattr(entry, f"{role.lower()}_signer"), getattr(entry, f"{role.lower()}_private_key")
            if signer is not None or key is not None:
                update |= {f"{role}_SIGNER": signer, f"{role}_PRIVATE_KEY": key}
        return self.model_copy(update=update)

    def chain(self, key: str | int) -> ChainConfig:
        """The served chain called ``key`` (its name, or its chain id as a number or a string);
        KeyError with the served names when none is, or when a chain id is served twice."""
        chains = self.chains
        text = str(key).strip().lower()
        named = [c for c in chains if c.label == text]
        if named:
            return named[0]
        if text.isascii() and text.isdigit():
            by_id = [c for c in chains if c.id == int(text)]
            if len(by_id) == 1:
                return by_id[0]
            if len(by_id) > 1:
                raise KeyError(
                    f"chain {text} is served by {len(by_id)} deployments: name one of "
                    + ", ".join(c.label for c in by_id)
                )
        served = ", ".join(f"{c.label} ({c.id})" for c in chains)
        raise KeyError(f"chain {key!r} is not served here; served: {served}")

    @property
    def confirmation_blocks(self) -> int:
        """Blocks a sender waits past inclusion: a block tag is the indexer's rule, not a depth."""
        return self.CONFIRMATIONS if isinstance(self.CONFIRMATIONS, int) else 0

    @property
    def database_url(self) -> str:
        if self.DATABASE_URL:
            return self.DATABASE_URL
        return f"sqlite:///{(self.DATA_DIR / 'autometa.db').resolve()}"

    def require(self, *names: str) -> None:
        """Fail with a message naming each required setting that is unset."""
        missing = [name for name in names if getattr(self, name) in (None, "")]
        if missing:
            raise ConfigError("missing setting(s): " + ", ".join(missing) + " — set them in the environment or .env")


def load_settings(**overrides: Any) -> Settings:
    """Read settings; turn validation errors into one ConfigError naming every bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            problems.append(f"{name}: {err['msg'].removeprefix('Value error, ')}")
        raise ConfigError("invalid configuration — " + "; ".join(problems)) from None
