import logging

import pytest

from core import logging as slog


def test_secrets_are_redacted_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawX"
    key = "sk-testkey-abcdefghijklmnopqrstuvwxyz"
    slog.configure("INFO", json_logs=True, secrets=[key])
    slog.get_logger("t").info("calling", url=f"https://api.telegram.org/bot{token}/getMe", k=key)
    logging.getLogger("httpx").warning("HTTP Request: POST https://x/bot%s/getUpdates", token)
    logging.getLogger("other").error("openai key %s rejected", key)
    err = capsys.readouterr().err
    assert token not in err and key not in err
    assert err.count("***") >= 3
