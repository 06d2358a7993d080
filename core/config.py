"""Typed settings: ``config.toml`` + environment (``SPACESCRIBE_`` prefix, ``__`` nesting).

Secrets never live in ``config.toml``: they are read from the environment only, by
:class:`Secrets`, and are ``SecretStr`` so they never print by accident.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url

from core.errors import ConfigError
from core.testkeys import LOCAL_CHAIN_ID, is_dev_address, is_dev_key

ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "SPACESCRIBE_"
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"


class _Section(BaseModel):
    """A config.toml section: unknown keys are typos, refused with their name."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DatabaseSettings(_Section):
    url: str = "sqlite:///data/database/spaces.db"
    pool_size: int = Field(5, ge=1, le=100)
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, v: str) -> str:
        if not v.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return v


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = Field(65536, ge=1024)
    link_ttl_seconds: int = Field(900, ge=60)
    session_ttl_seconds: int = Field(7 * 86400, ge=300)  # storefront sign-in (SIWE) lifetime

    @field_validator("public_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/")


# Friendly chain names for ``payments.network``: CAIP-2 id and a default public RPC node.
NETWORKS = {
    "base": ("eip155:8453", "https://mainnet.base.org"),
    "base-sepolia": ("eip155:84532", "https://sepolia.base.org"),
}
DEFAULT_RPC = {caip: rpc for caip, rpc in NETWORKS.values()}


def default_usdc(network: str) -> dict[str, str] | None:
    """The x402 package's default USDC of a CAIP-2 network: address, EIP-712 name and version."""
    from x402.mechanisms.evm.default_assets import DEFAULT_ASSETS

    for a in DEFAULT_ASSETS.get(network, []):
        if a["symbol"] == "USDC" and a["decimals"] == 6:
            return {
                "token_address": a["asset"],
                "token_name": a["name"],
                "token_version": a["version"],
            }
    return None


class PaymentSettings(_Section):
    # "test": a local chain with test USDC (no real money); "live": the configured chain.
    # Unset = "test" until pay_to is set, then "live".
    mode: Literal["test", "live"] | None = None
    network: str = Field("eip155:8453", pattern=r"^eip155:[0-9]+$")
    rpc_url: str = "https://mainnet.base.org"
    token_address: str = Field(
        "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", pattern=ADDRESS_PATTERN
    )
    token_name: str = "USD Coin"
    token_version: str = "2"
    pay_to: str = Field("", pattern=r"^(0x[0-9a-fA-F]{40})?$")
    confirmations: int = Field(1, ge=1, le=1000)
    facilitator_url: str = ""
    invoice_ttl_seconds: int = Field(1800, ge=60)
    watch_interval_seconds: float = Field(15.0, gt=0)
    refund_policy: Literal["credit", "none"] = "credit"

    @model_validator(mode="before")
    @classmethod
    def _network_defaults(cls, data: Any) -> Any:
        """``network = "base"`` / ``"base-sepolia"`` (or their CAIP-2 ids) fill the RPC node and
        the USDC address, name and version that are not set explicitly."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        net = data.get("network")
        if isinstance(net, str) and net in NETWORKS:
            data["network"] = NETWORKS[net][0]
        caip = data.get("network", "eip155:8453")
        if isinstance(caip, str):
            if caip in DEFAULT_RPC:
                data.setdefault("rpc_url", DEFAULT_RPC[caip])
            for k, v in (default_usdc(caip) or {}).items():
                data.setdefault(k, v)
        return data

    @model_validator(mode="after")
    def _mode(self) -> PaymentSettings:
        if self.mode is None:
            self.mode = "live" if self.pay_to else "test"
        if self.mode == "test" and self.pay_to:
            raise ValueError(
                "payments.mode is test, which never takes a real pay_to (test mode pays a "
                "local test address): remove payments.pay_to, or set payments.mode = live"
            )
        if self.mode == "live" and self.chain_id != LOCAL_CHAIN_ID and is_dev_address(self.pay_to):
            raise ValueError(
                "payments.pay_to is one of anvil's public test addresses; anyone can spend "
                "from it, so live mode refuses it: use your own address"
            )
        return self

    @property
    def chain_id(self) -> int:
        return int(self.network.split(":", 1)[1])

    @property
    def test_mode(self) -> bool:
        return self.mode == "test"


_USDC_PRICES = ("transcription", "chat_unlock", "chat_base", "chat_per_space")
MAX_STARS = 100_000  # Telegram's upper bound for one Stars invoice is far below this


class StarsPriceSettings(_Section):
    """Prices in Telegram Stars (currency XTR): whole Stars, never fractions."""

    transcription: int = Field(15, ge=1, le=MAX_STARS)
    chat_unlock: int = Field(40, ge=1, le=MAX_STARS)
    chat_base: int = Field(70, ge=1, le=MAX_STARS)
    chat_per_space: int = Field(8, ge=0, le=MAX_STARS)

    @field_validator("*", mode="before")
    @classmethod
    def _whole(cls, v: Any) -> Any:
        if isinstance(v, (bool, float)) or (isinstance(v, str) and not v.strip().isdigit()):
            raise ValueError("must be a whole number of Stars, such as 15")
        return v


class PriceSettings(_Section):
    transcription: Decimal = Decimal("0.2")
    chat_unlock: Decimal = Decimal("0.5")
    chat_base: Decimal = Decimal("0.9")
    chat_per_space: Decimal = Decimal("0.1")
    stars: StarsPriceSettings = StarsPriceSettings()

    @field_validator(*_USDC_PRICES, mode="before")
    @classmethod
    def _no_float(cls, v: Any) -> Any:
        if isinstance(v, float):
            raise ValueError('must be a decimal string such as "0.2", not a float')
        return v

    @field_validator(*_USDC_PRICES)
    @classmethod
    def _usdc(cls, v: Decimal) -> Decimal:
        from core.money import parse_usdc

        return parse_usdc(v)


class TranscriptionSettings(_Section):
    backend: Literal["openai", "offline"] | None = None  # None = openai if a key is set
    model: str = "whisper-1"
    chunk_seconds: int = Field(600, ge=2, le=1500)
    overlap_seconds: float = Field(2.0, ge=0, le=30)
    concurrency: int = Field(4, ge=1, le=64)
    cookies_file: str = ""
    stt_cost_per_minute: Decimal = Decimal("0.006")
    # live and scheduled Spaces: X is polled with backoff from live_poll_seconds up to
    # live_poll_max_seconds, for at most live_wait_hours after the (scheduled) start
    live_poll_seconds: float = Field(60.0, gt=0)
    live_poll_max_seconds: float = Field(900.0, gt=0)
    live_wait_hours: float = Field(24.0, gt=0)
    # offline Whisper weights: "tiny.en" (English, default) or "base" (multilingual, optional)
    offline_model: Literal["tiny.en", "base"] = "tiny.en"
    # ISO 639-1 code ("en", "de", ...); empty = English for tiny.en, detected otherwise
    language: str = Field("", pattern=r"^([a-z]{2,3})?$")
    # Silero VAD: the offline backend skips silence; the OpenAI backend sends only speech
    vad: bool = True
    # ``spacescribe import`` and the bots' admin imports: the largest recording accepted
    import_max_mb: float = Field(500.0, gt=0)
    import_max_hours: float = Field(6.0, gt=0)


class ChatSettings(_Section):
    model: str = "gpt-4o"
    max_spaces: int = Field(10, ge=1, le=50)
    max_question_chars: int = Field(1000, ge=10, le=20000)
    max_prompt_tokens: int = Field(4000, ge=500)
    backend: Literal["openai", "extractive"] | None = None  # None = openai if a key is set
    timeout_seconds: float = Field(60.0, gt=0, le=600)
    cost_per_1k_tokens: Decimal = Decimal("0.005")


class EnrichmentSettings(_Section):
    backend: Literal["openai", "extractive"] | None = None  # None = openai if a key is set
    model: str = "gpt-4o-mini"
    max_prompt_tokens: int = Field(8000, ge=1500, le=8000)
    max_attempts: int = Field(5, ge=1, le=100)
    retry_seconds: float = Field(300.0, gt=0)
    cost_per_1k_tokens: Decimal = Decimal("0.0003")


class QueueSettings(_Section):
    max_retries: int = Field(3, ge=1, le=100)
    poll_seconds: float = Field(2.0, gt=0)
    lease_seconds: int = Field(120, ge=5)
    backoff_base_seconds: float = Field(30.0, ge=0)
    backoff_max_seconds: float = Field(3600.0, ge=0)
    concurrency: int = Field(1, ge=1, le=256)


class OutboxSettings(_Section):
    retry_base_seconds: float = Field(5.0, gt=0)
    retry_max_seconds: float = Field(900.0, gt=0)
    max_attempts: int = Field(12, ge=1, le=100)


class TelegramSettings(_Section):
    admin_ids: list[int] = []
    mode: Literal["polling", "webhook"] = "polling"
    base_url: str = ""  # Bot API server; empty = Telegram's
    # the two ways a Telegram member can pay a quote; at least one stays on
    stars_enabled: bool = True
    usdc_enabled: bool = True
    support_contact: str = Field("", max_length=200)  # shown by /paysupport

    @model_validator(mode="after")
    def _one_method(self) -> TelegramSettings:
        if not (self.stars_enabled or self.usdc_enabled):
            raise ValueError("stars_enabled and usdc_enabled cannot both be false")
        return self


class DiscordSettings(_Section):
    admin_ids: list[int] = []
    admin_role_ids: list[int] = []
    guild_ids: list[int] = []
    api_url: str = ""  # REST API base (e.g. a rate-limit proxy); empty = Discord's

    @field_validator("api_url")
    @classmethod
    def _http_or_empty(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must be empty or an http:// or https:// URL")
        return v


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_logs: bool = Field(False, alias="json")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        populate_by_name=True,
    )

    data_dir: Path = Path("data")
    database: DatabaseSettings = DatabaseSettings()
    web: WebSettings = WebSettings()
    payments: PaymentSettings = PaymentSettings()
    prices: PriceSettings = PriceSettings()
    transcription: TranscriptionSettings = TranscriptionSettings()
    chat: ChatSettings = ChatSettings()
    enrichment: EnrichmentSettings = EnrichmentSettings()
    queue: QueueSettings = QueueSettings()
    outbox: OutboxSettings = OutboxSettings()
    telegram: TelegramSettings = TelegramSettings()
    discord: DiscordSettings = DiscordSettings()
    logging: LoggingSettings = LoggingSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_path())
        return (init_settings, _ShortFormsSource(settings_cls), env_settings, toml)

    def url_credentials(self) -> list[str]:
        """Credentials operators put inside URLs, redacted from logs like the secrets: the
        database password, and provider keys in the RPC or facilitator URL (a path segment
        or query value of 16+ characters, as in ``…/v2/<key>`` or ``?apikey=<key>``)."""
        found = [make_url(self.database.url).password or ""]
        for url in (self.payments.rpc_url, self.payments.facilitator_url):
            parts = urlsplit(url)
            found += [seg for seg in parts.path.split("/") if len(seg) >= 16]
            found += [v for _k, v in parse_qsl(parts.query) if len(v) >= 16]
        return [f for f in found if f]

    @property
    def spaces_dir(self) -> Path:
        return self.resolve_path(self.data_dir) / "spaces"

    @staticmethod
    def resolve_path(p: Path) -> Path:
        return p if p.is_absolute() else ROOT / p


class _ShortFormsSource(PydanticBaseSettingsSource):
    """``SPACESCRIBE_DATABASE_URL`` is the documented short form of ``database.url``."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        url = os.environ.get(f"{ENV_PREFIX}DATABASE_URL")
        return {"database": {"url": url}} if url else {}


class Secrets(BaseSettings):
    """Secrets, from the environment only (never from config.toml, never logged)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    telegram_token: SecretStr | None = Field(None, alias="TELEGRAM_TOKEN")
    telegram_webhook_secret: SecretStr | None = Field(None, alias="TELEGRAM_WEBHOOK_SECRET")
    discord_token: SecretStr | None = Field(None, alias="DISCORD_TOKEN")
    openai_api_key: SecretStr | None = Field(None, alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, alias="OPENAI_BASE_URL")
    relayer_key: SecretStr | None = Field(None, alias="SPACESCRIBE_RELAYER_KEY")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)

    def values(self) -> list[str]:
        """Every secret value that is set, for log redaction."""
        out = []
        for v in (
            self.telegram_token,
            self.telegram_webhook_secret,
            self.discord_token,
            self.openai_api_key,
            self.relayer_key,
        ):
            if v is not None and v.get_secret_value():
                out.append(v.get_secret_value())
        return out


def config_path() -> Path:
    return Path(os.environ.get("SPACESCRIBE_CONFIG", ROOT / "config.toml"))


def _explain(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        env = ENV_PREFIX + "__".join(str(p) for p in e["loc"]).upper()
        lines.append(f"config key '{key}' (env {env}): {e['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings; a wrong value raises ConfigError naming the key."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise ConfigError(_explain(err)) from None


def load_secrets() -> Secrets:
    return Secrets()


def check_secrets(settings: Settings, secrets: Secrets) -> None:
    """Secrets that cannot go with these settings: an anvil test key (public, test-only) as
    the relayer of live payments on a public chain."""
    p, key = settings.payments, secrets.relayer_key
    if (
        p.mode == "live"
        and p.chain_id != LOCAL_CHAIN_ID
        and key is not None
        and is_dev_key(key.get_secret_value())
    ):
        raise ConfigError(
            "SPACESCRIBE_RELAYER_KEY is one of anvil's public test keys; live mode on "
            f"{p.network} refuses it: use a key of your own"
        )
