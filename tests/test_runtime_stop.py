"""Stopping the runtime: a component that fails to stop is logged, and the others still stop."""

from __future__ import annotations

from structlog.testing import capture_logs

from bot.runtime import stop_each


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
