"""Rows that many tests (and benches) need, built one way."""

from __future__ import annotations

from typing import Any

from core.db import Space, utcnow
from core.spaces import canonical_url


def completed_space(space_id: str, title: str = "A completed Space", **fields: Any) -> Space:
    """A Space the library holds (status completed), as the pipeline leaves its row; any
    column can be overridden."""
    now = utcnow()
    row: dict[str, Any] = {
        "space_id": space_id,
        "space_url": canonical_url(space_id),
        "title": title,
        "status": "completed",
        "first_requested_at": now,
        "completed_at": now,
    }
    return Space(**(row | fields))
