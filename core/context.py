"""What every use case needs: settings, secrets, the database, and the application object
(:class:`~core.wiring.Wiring`) joining the process's parts. Built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.config import Secrets, Settings, check_secrets, load_secrets, load_settings
from core.db import Database
from core.wiring import Wiring


@dataclass
class Context:
    settings: Settings
    secrets: Secrets
    db: Database
    instance: str = field(default="")  # process identity, e.g. for queue leases
    wiring: Wiring = field(default_factory=Wiring)  # this process's parts, filled by bot/wiring

    @property
    def spaces_dir(self) -> Path:
        return self.settings.spaces_dir

    @property
    def openai_enabled(self) -> bool:
        key = self.secrets.openai_api_key
        return key is not None and bool(key.get_secret_value())

    @classmethod
    def create(cls, settings: Settings | None = None, secrets: Secrets | None = None) -> Context:
        import os
        import socket

        settings = settings or load_settings()
        secrets = secrets or load_secrets()
        check_secrets(settings, secrets)  # raises ConfigError: e.g. a test key in live mode
        db = Database(settings.database.url, settings.database.pool_size, settings.database.echo)
        return cls(settings, secrets, db, instance=f"{socket.gethostname()}:{os.getpid()}")

    async def close(self) -> None:
        await self.db.dispose()
