"""/revenue: the seed's query 5 by product, computed exactly, with costs, margin and a chart.

USDC and Telegram Stars are two currencies, reported apart with their counts, never summed:
a purchase paid in Stars (its invoice has a credited ``star_payments`` row) is left out of
the USDC lines and counted in the Stars lines.

Sums are exact: rows are grouped by their canonical ``amount_usdc`` string in SQL (a handful
of distinct prices), and each group's Decimal × count is added in Python — never
``CAST(amount_usdc AS REAL)``.
"""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from core.context import Context
from core.db import (
    ChatSession,
    ChatUnlock,
    Credit,
    Invoice,
    Space,
    SpaceEnrichment,
    StarPayment,
    TranscriptionPayment,
    utcnow,
)
from core.money import from_units, parse_usdc
from core.results import Caller, Refused, RevenueLine, RevenueReport, StarsLine
from core.service.views import space_view
from core.statuses import SpaceStatus

PERIODS: dict[str, timedelta | None] = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
    "all": None,
}
PRODUCTS = ("transcriptions", "chat_unlocks", "chat_queries")
TOP_SPACES = 5
CHART_DAYS_ALL = 90  # the chart of "all" shows the last 90 days


def _sources(since: datetime | None) -> dict[str, tuple[Any, Any, Any]]:
    """product → (table, time column, verified filter)."""
    tp, cu, cs = TranscriptionPayment, ChatUnlock, ChatSession
    return {
        "transcriptions": (tp, tp.paid_at, tp.payment_verified.is_(True)),
        "chat_unlocks": (cu, cu.unlocked_at, cu.payment_verified.is_(True)),
        "chat_queries": (cs, cs.queried_at, None),
    }


KIND_PRODUCT = {
    "transcription": "transcriptions",
    "chat_unlock": "chat_unlocks",
    "chat_query": "chat_queries",
}
_IN_STARS = select(StarPayment.invoice_id).where(
    StarPayment.invoice_id.is_not(None), StarPayment.credited_at.is_not(None)
)


def _where(col: Any, verified: Any, since: datetime | None) -> list[Any]:
    """Rows paid in USDC (or USDC credit) in the period: a Stars purchase is not USDC."""
    conds = [] if verified is None else [verified]
    if since is not None:
        conds.append(col >= since)
    table = col.class_
    conds.append(table.invoice_id.is_(None) | table.invoice_id.not_in(_IN_STARS))
    return conds


async def _stars(s: AsyncSession, since: datetime | None) -> tuple[list[StarsLine], int, int]:
    """Stars received by product (granted payments), and Stars refunded: exact integers."""
    rows = await s.execute(
        select(Invoice.kind, func.coalesce(func.sum(StarPayment.amount), 0), func.count())
        .join(Invoice, Invoice.id == StarPayment.invoice_id)
        .where(
            StarPayment.credited_at.is_not(None),
            *([StarPayment.credited_at >= since] if since else []),
        )
        .group_by(Invoice.kind)
    )
    got = {kind: (int(total), int(n)) for kind, total, n in rows.all()}
    lines = [StarsLine(product, *got.get(kind, (0, 0))) for kind, product in KIND_PRODUCT.items()]
    refunded = (
        await s.execute(
            select(func.coalesce(func.sum(StarPayment.amount), 0), func.count()).where(
                StarPayment.refunded_at.is_not(None),
                *([StarPayment.refunded_at >= since] if since else []),
            )
        )
    ).one()
    return lines, int(refunded[0]), int(refunded[1])


async def _stars_daily(s: AsyncSession, since: datetime) -> dict[str, int]:
    day = func.date(StarPayment.credited_at)
    rows = await s.execute(
        select(day, func.coalesce(func.sum(StarPayment.amount), 0))
        .where(StarPayment.credited_at >= since)
        .group_by(day)
    )
    return {str(d)[:10]: int(n) for d, n in rows.all()}


async def _product_totals(
    s: AsyncSession, table: Any, col: Any, verified: Any, since: datetime | None
) -> tuple[Decimal, int]:
    rows = await s.execute(
        select(table.amount_usdc, func.count())
        .where(*_where(col, verified, since))
        .group_by(table.amount_usdc)
    )
    total, count = Decimal(0), 0
    for amount, n in rows.all():
        total += parse_usdc(amount) * n
        count += n
    return total, count


async def _daily(
    s: AsyncSession, table: Any, col: Any, verified: Any, since: datetime
) -> dict[str, Decimal]:
    day = func.date(col)
    rows = await s.execute(
        select(day, table.amount_usdc, func.count())
        .where(*_where(col, verified, since))
        .group_by(day, table.amount_usdc)
    )
    out: dict[str, Decimal] = defaultdict(Decimal)
    for d, amount, n in rows.all():
        out[str(d)[:10]] += parse_usdc(amount) * n
    return out


async def report(
    ctx: Context, caller: Caller, period: str = "week", chart: bool = True
) -> RevenueReport | Refused:
    if not caller.is_admin:
        return Refused("not_admin", "Only the bot's admins can see revenue.")
    return await build_report(ctx, period, chart)


async def build_report(
    ctx: Context, period: str = "week", chart: bool = True
) -> RevenueReport | Refused:
    period = (period or "week").strip().lower()
    if period not in PERIODS:
        return Refused("invalid_period", "Period must be one of: day, week, month, all.")
    delta = PERIODS[period]
    now = utcnow()
    since = now - delta if delta else None
    t, c = ctx.settings.transcription, ctx.settings.chat
    async with ctx.db.read() as s:
        lines: list[tuple[str, Decimal, int]] = []
        for product, (table, col, verified) in _sources(since).items():
            total, count = await _product_totals(s, table, col, verified, since)
            lines.append((product, total, count))
        stt_seconds = await s.scalar(
            select(func.coalesce(func.sum(Space.audio_duration_seconds), 0)).where(
                Space.status == SpaceStatus.COMPLETED,
                *([Space.completed_at >= since] if since else []),
            )
        )
        tokens = await s.scalar(
            select(func.coalesce(func.sum(ChatSession.tokens_used), 0)).where(
                *([ChatSession.queried_at >= since] if since else [])
            )
        )
        # the summary's model tokens are part of what a transcription costs (every attempt)
        enrich_tokens = int(
            await s.scalar(
                select(func.coalesce(func.sum(SpaceEnrichment.tokens_used), 0)).where(
                    *([SpaceEnrichment.updated_at >= since] if since else [])
                )
            )
            or 0
        )
        enrich_cost = Decimal(enrich_tokens) / 1000 * ctx.settings.enrichment.cost_per_1k_tokens
        costs = {
            "transcriptions": (Decimal(int(stt_seconds or 0)) / 60 * t.stt_cost_per_minute)
            + enrich_cost,
            "chat_unlocks": Decimal(0),
            "chat_queries": Decimal(int(tokens or 0)) / 1000 * c.cost_per_1k_tokens,
        }
        # paying users: distinct buyers (users rows) with a purchase in the period paid in
        # USDC (or USDC credit) or in Telegram Stars; whoever paid both ways counts once
        stars_payers = (
            select(Invoice.user_id)
            .join(StarPayment, StarPayment.invoice_id == Invoice.id)
            .where(
                Invoice.user_id.is_not(None),
                StarPayment.credited_at.is_not(None),
                *([StarPayment.credited_at >= since] if since else []),
            )
        )
        payers = union(
            *(
                select(table.user_id).where(*_where(col, verified, since))
                for table, col, verified in _sources(since).values()
            ),
            stars_payers,
        ).subquery()
        paying_users = await s.scalar(select(func.count()).select_from(payers))
        refunds_units = await s.scalar(
            select(func.coalesce(func.sum(Credit.amount_units), 0)).where(
                Credit.reason == "refund", *([Credit.created_at >= since] if since else [])
            )
        )
        tp = TranscriptionPayment
        top_rows = await s.execute(
            select(Space, func.count(tp.id).label("n"))
            .join(tp, tp.space_id == Space.id)
            .where(*_where(tp.paid_at, tp.payment_verified.is_(True), since))
            .group_by(Space.id)
            .order_by(func.count(tp.id).desc(), Space.id)
            .limit(TOP_SPACES)
        )
        top = [space_view(sp) for sp, _n in top_rows.all()]
        stars_lines, stars_refunded, stars_refund_count = await _stars(s, since)
        chart_png = None
        if chart:
            chart_since = since or now - timedelta(days=CHART_DAYS_ALL)
            series = {
                product: await _daily(s, table, col, verified, chart_since)
                for product, (table, col, verified) in _sources(chart_since).items()
            }
            stars_series = await _stars_daily(s, chart_since)
            chart_png = render_chart(series, chart_since.date(), now.date(), period, stars_series)
    return RevenueReport(
        period=period,
        since=since,
        lines=[
            RevenueLine(p, total, n, costs[p].quantize(Decimal("0.000001")))
            for p, total, n in lines
        ],
        paying_users=int(paying_users or 0),
        refunds=from_units(int(refunds_units or 0)),
        top_spaces=top,
        chart_png=chart_png,
        stars_lines=stars_lines,
        stars_refunded=stars_refunded,
        stars_refund_count=stars_refund_count,
        enrichment_tokens=enrich_tokens,
        enrichment_cost=enrich_cost.quantize(Decimal("0.000001")),
    )


def render_chart(
    series: dict[str, dict[str, Decimal]],
    start: date,
    end: date,
    period: str,
    stars: dict[str, int] | None = None,
) -> bytes:
    """Revenue per day as PNG bytes (matplotlib, Agg backend): USDC by product, stacked, on
    top; Telegram Stars below on their own axis (two currencies, never one scale)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    keys = [d.isoformat() for d in days]
    fig = Figure(figsize=(8, 6.5), dpi=100)
    ax, ax_stars = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    bottom = [0.0] * len(days)
    colors = {"transcriptions": "#3b82f6", "chat_unlocks": "#10b981", "chat_queries": "#f59e0b"}
    for product in PRODUCTS:
        # float only for drawing bar heights; every figure shown as text is a Decimal
        vals = [float(series.get(product, {}).get(k, Decimal(0))) for k in keys]
        ax.bar(
            days,  # type: ignore[arg-type]
            vals,
            bottom=bottom,
            label=product.replace("_", " "),
            color=colors[product],
        )
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_title(f"spacescribe revenue per day, period: {period}")
    ax.set_ylabel("USDC")
    ax.legend(loc="upper left")
    ax_stars.bar(
        days,  # type: ignore[arg-type]
        [(stars or {}).get(k, 0) for k in keys],
        label="Telegram Stars",
        color="#eab308",
    )
    ax_stars.set_ylabel("Stars (XTR)")
    ax_stars.legend(loc="upper left")
    fig.autofmt_xdate()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()
