"""Terminal rendering (rich) of result values for the CLI."""

from __future__ import annotations

from rich.table import Table

from core.money import display
from core.results import RevenueReport
from core.service.notices import signed


def revenue_table(rep: RevenueReport) -> Table:
    since = rep.since.strftime("%Y-%m-%d %H:%M UTC") if rep.since else "the beginning"
    t = Table(title=f"Revenue in USDC, period {rep.period} (since {since})")
    for col in ("product", "count", "revenue", "cost", "margin"):
        t.add_column(col, justify="left" if col == "product" else "right")
    for line in rep.lines:
        t.add_row(
            line.product.replace("_", " "),
            str(line.count),
            display(line.total),
            display(line.cost),
            display(line.total - line.cost)
            if line.total >= line.cost
            else "-" + display(line.cost - line.total),
        )
    t.add_row(
        "total",
        str(sum(x.count for x in rep.lines)),
        display(rep.total),
        display(rep.cost),
        signed(rep.margin),
    )
    t.caption = (
        f"paying users: {rep.paying_users} · refunds credited: {display(rep.refunds)} · "
        f"summary tokens: {rep.enrichment_tokens:,} ({display(rep.enrichment_cost)}, "
        "in transcriptions cost)"
    ) + (
        " · top Spaces: " + ", ".join(f"{s.title} ({s.space_id})" for s in rep.top_spaces)
        if rep.top_spaces
        else ""
    )
    return t


def stars_table(rep: RevenueReport) -> Table:
    """Telegram Stars apart from USDC (another currency: never summed with it)."""
    t = Table(title=f"Revenue in Telegram Stars (XTR), period {rep.period}")
    for col in ("product", "count", "stars"):
        t.add_column(col, justify="left" if col == "product" else "right")
    for line in rep.stars_lines:
        t.add_row(line.product.replace("_", " "), str(line.count), str(line.stars))
    t.add_row("total", str(rep.stars_count), str(rep.stars_total))
    t.caption = f"refunded in Stars: {rep.stars_refunded} ({rep.stars_refund_count} payments)"
    return t
