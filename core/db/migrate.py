"""Run Alembic migrations programmatically (``spacescribe migrate``, tests, app start)."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from core.config import ROOT

# Full-text tables live beside the models, created by migrations (FTS5 virtual tables and
# their shadow tables on SQLite), so schema comparison ignores them.
FTS_PREFIXES = ("spaces_fts", "passages_fts")


# Expression indexes (DESC ordering, GIN over to_tsvector) cannot be reflected faithfully by
# autogenerate on every engine; the migration tests check that they exist by name instead.
EXPRESSION_INDEXES = {"idx_priority_queued", "idx_processing_queue_claim"}


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    if not name:
        return True
    if type_ == "table":
        return not name.startswith(FTS_PREFIXES)
    if type_ == "index":
        return name not in EXPRESSION_INDEXES and not name.endswith("_gin")
    return True


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Blocking: call from a thread when an event loop is running."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision_sync(connection: Any) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
