from decimal import Decimal
from pathlib import Path

import pytest

from core.config import Secrets, load_settings
from core.errors import ConfigError


def test_defaults_match_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPACESCRIBE_DATABASE_URL", raising=False)
    s = load_settings()
    assert s.database.url == "sqlite:///data/database/spaces.db"
    assert s.data_dir == Path("data")
    assert s.payments.network == "eip155:8453" and s.payments.chain_id == 8453
    assert (s.payments.token_name, s.payments.token_version) == ("USD Coin", "2")
    assert s.prices.transcription == Decimal("0.2") and s.prices.chat_per_space == Decimal("0.1")
    assert s.chat.model == "gpt-4o"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPACESCRIBE_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("SPACESCRIBE_PAYMENTS__RPC_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SPACESCRIBE_PAYMENTS__CONFIRMATIONS", "3")
    monkeypatch.setenv("SPACESCRIBE_DATA_DIR", "/srv/data")
    monkeypatch.setenv("SPACESCRIBE_TELEGRAM__ADMIN_IDS", "[1, 2]")
    s = load_settings()
    assert s.database.url == "postgresql://u@h/db"
    assert s.payments.rpc_url == "http://127.0.0.1:9" and s.payments.confirmations == 3
    assert s.data_dir == Path("/srv/data") and s.telegram.admin_ids == [1, 2]


def test_nested_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPACESCRIBE_DATABASE_URL", raising=False)
    monkeypatch.setenv("SPACESCRIBE_DATABASE__URL", "postgresql://x@y/z")
    assert load_settings().database.url == "postgresql://x@y/z"


@pytest.mark.parametrize(
    ("env", "value", "key"),
    [
        ("SPACESCRIBE_PRICES__TRANSCRIPTION", "0.1234567", "prices.transcription"),
        ("SPACESCRIBE_PAYMENTS__NETWORK", "bitcoin", "payments.network"),
        ("SPACESCRIBE_PAYMENTS__PAY_TO", "0x123", "payments.pay_to"),
        ("SPACESCRIBE_TRANSCRIPTION__BACKEND", "whisper-local", "transcription.backend"),
        ("SPACESCRIBE_WEB__PORT", "99999", "web.port"),
    ],
)
def test_wrong_value_names_the_key(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, key: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert f"'{key}'" in str(err.value) and env in str(err.value)


def test_config_file_path_and_unknown_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[prices]\ntranscription = "0.3"\n')
    monkeypatch.setenv("SPACESCRIBE_CONFIG", str(cfg))
    assert load_settings().prices.transcription == Decimal("0.3")
    cfg.write_text("[prices]\ntranscription = 0.3\n")  # a float in TOML is refused
    with pytest.raises(ConfigError, match="prices.transcription"):
        load_settings()
    cfg.write_text("[payments]\nprivate_key = 'x'\n")  # secrets never from the file
    with pytest.raises(ConfigError, match="payments.private_key"):
        load_settings()


def test_secrets_only_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_TOKEN", "123456:abcdefghijklmnopqrstuvwxyzABCDEFGHI")
    monkeypatch.setenv("SPACESCRIBE_RELAYER_KEY", "0x" + "ab" * 32)
    sec = Secrets()
    assert sec.telegram_token is not None
    assert "abcdefghij" not in repr(sec) and "abab" not in str(sec)
    assert len(sec.values()) == 2


def test_credentials_inside_urls_are_redacted_like_secrets() -> None:
    s = load_settings(
        database={"url": "postgresql://app:pg-pass-123@db:5432/spacescribe"},
        payments={
            "rpc_url": "https://base-mainnet.g.alchemy.com/v2/AbCdEfGhIjKlMnOpQrSt",
            "facilitator_url": "https://facilitator.example/x402?apikey=0123456789abcdefXYZ",
        },
    )
    assert s.url_credentials() == ["pg-pass-123", "AbCdEfGhIjKlMnOpQrSt", "0123456789abcdefXYZ"]
    assert load_settings(database={"url": "sqlite:///data/x.db"}).url_credentials() == []


def test_every_secret_in_the_environment_is_redacted_from_logs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each secret field of :class:`Secrets` (read from the model, so a new one is covered
    too) is on the redaction list: set them all, log them all, find none."""
    import logging
    import typing

    from pydantic import SecretStr

    from core import logging as slog

    aliases = [
        str(f.alias)
        for f in Secrets.model_fields.values()
        if SecretStr in typing.get_args(f.annotation)
    ]
    assert "OPENAI_API_KEY" in aliases and len(aliases) >= 5, aliases
    values = {a: f"{a.lower()}-value-{i:03d}-s3cr3t" for i, a in enumerate(aliases)}
    for alias, value in values.items():
        monkeypatch.setenv(alias, value)
    sec = Secrets()
    assert sorted(sec.values()) == sorted(values.values())
    slog.configure("INFO", json_logs=True, secrets=sec.values())
    for alias, value in values.items():
        logging.getLogger("t").error("%s rejected: %s", alias, value)
    err = capsys.readouterr().err
    assert [a for a, v in values.items() if v in err] == []
    assert err.count("***") == len(values)
