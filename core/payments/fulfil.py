"""Fulfilment hooks: a paid thing that is produced BEFORE settlement (a chat answer).

``answer`` runs after the payment is verified and before it is settled; if it fails or
refuses, nothing is settled (an unanswered question is not charged). ``record`` runs inside
the crediting transaction, once, with the buyer's user id and the transaction hash.
The wiring (``bot/wiring.py``) adds the chat module's for "chat_query" to ``ctx.wiring``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from core.context import Context
from core.results import Refused


@dataclass(frozen=True)
class FulfilRequest:
    invoice_pk: int
    invoice_id: str
    kind: str
    space_ids: list[str]
    payload: dict[str, Any]
    payer: str | None
    amount_units: int


class Fulfiller(Protocol):
    async def answer(self, ctx: Context, req: FulfilRequest) -> dict[str, Any] | Refused: ...

    async def record(
        self,
        session: AsyncSession,
        ctx: Context,
        req: FulfilRequest,
        result: dict[str, Any],
        user_id: int,
        transaction_hash: str | None,
    ) -> None: ...

    async def owed(
        self, session: AsyncSession, ctx: Context, req: FulfilRequest, user_id: int
    ) -> None:
        """Paid but credited without a result (a recovered settlement, a direct transfer):
        arrange, inside the crediting transaction, for the result to be produced later."""
        ...


@dataclass
class FunctionFulfiller:
    """A fulfiller from two functions (``record`` optional)."""

    answer_fn: Callable[[Context, FulfilRequest], Awaitable[dict[str, Any] | Refused]]
    record_fn: (
        Callable[
            [AsyncSession, Context, FulfilRequest, dict[str, Any], int, str | None],
            Awaitable[None],
        ]
        | None
    ) = None
    owed_fn: Callable[[AsyncSession, Context, FulfilRequest, int], Awaitable[None]] | None = None

    async def answer(self, ctx: Context, req: FulfilRequest) -> dict[str, Any] | Refused:
        return await self.answer_fn(ctx, req)

    async def record(
        self,
        session: AsyncSession,
        ctx: Context,
        req: FulfilRequest,
        result: dict[str, Any],
        user_id: int,
        transaction_hash: str | None,
    ) -> None:
        if self.record_fn is not None:
            await self.record_fn(session, ctx, req, result, user_id, transaction_hash)

    async def owed(
        self, session: AsyncSession, ctx: Context, req: FulfilRequest, user_id: int
    ) -> None:
        if self.owed_fn is not None:
            await self.owed_fn(session, ctx, req, user_id)
