"""Starting and stopping the runtime: the heap is settled once started; a component that fails
to stop is logged, and the others still stop."""

from __future__ import annotations

import gc

from structlog.testing import capture_logs

from bot.runtime import Runtime, stop_each
from core.context import Context


class Part:
    def __init__(self, name: str, fails: bool = False) -> None:
        self.name = name
        self.fails = fails
        self.stopped = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True
        if self.fails:
            raise RuntimeError("the socket is already gone")


async def test_a_component_failing_to_stop_is_logged_and_the_rest_still_stop() -> None:
    parts = [Part("discord"), Part("telegram", fails=True), Part("web")]
    with capture_logs() as logs:
        await stop_each(parts)
    assert all(p.stopped for p in parts)
    (line,) = [e for e in logs if e["event"] == "component failed to stop"]
    assert line["log_level"] == "error" and line["component"] == "telegram"
    assert "the socket is already gone" in line["error"] and line["exc_info"] is True


async def test_what_start_up_built_is_hidden_from_the_collector(ctx: Context) -> None:
    """Once started, a process's long-lived objects are frozen: a full collection no longer
    walks them with the event loop stopped (``bot.runtime.settle_heap``)."""
    gc.unfreeze()
    runtime = Runtime(ctx, [])
    try:
        assert gc.get_freeze_count() == 0
        await runtime.start()
        assert gc.get_freeze_count() > 10_000  # the modules, mappers and app of this process
    finally:
        gc.unfreeze()  # the other tests' objects are theirs to collect
        await runtime.stop()
