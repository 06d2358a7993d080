"""Callbacks run when a Space's transcript is complete (e.g. the chat passage index)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.context import Context

OnCompleted = Callable[["Context", int, list[dict[str, Any]]], Awaitable[None]]


async def on_completed(ctx: Context, space_pk: int, segments: list[dict[str, Any]]) -> None:
    """The callbacks the wiring added (``ctx.wiring.on_completed``), in order."""
    for cb in list(ctx.wiring.on_completed):
        await cb(ctx, space_pk, segments)
