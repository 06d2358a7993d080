"""The status enums hold exactly the strings the schema stores."""

from __future__ import annotations

from sqlalchemy import Table

from core import queue
from core.db import Outbox, ProcessingJob, Space
from core.statuses import JobStatus, OutboxStatus, SpaceStatus


def _default(model: type) -> str:
    table = model.__table__
    assert isinstance(table, Table)
    return str(table.c.status.server_default.arg.text).strip("'")  # type: ignore[union-attr]


def test_values_are_the_stored_strings() -> None:
    assert list(JobStatus) == ["queued", "processing", "completed", "failed"]
    assert list(SpaceStatus) == ["pending", "processing", "completed", "failed"]
    assert list(OutboxStatus) == ["pending", "sending", "sent", "fallback", "failed"]
    assert _default(ProcessingJob) == JobStatus.QUEUED
    assert _default(Space) == SpaceStatus.PENDING
    assert _default(Outbox) == OutboxStatus.PENDING
    # the live-job index predicate is literal SQL: it names the live statuses
    assert queue.LIVE_STATUSES == ("queued", "processing")
    assert str(queue.LIVE_INDEX_PREDICATE) == "status IN ('queued', 'processing')"
    assert f"{JobStatus.FAILED}" == "failed" and str(SpaceStatus.FAILED) == "failed"
