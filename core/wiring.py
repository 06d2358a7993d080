"""The application object: what the parts of one process are joined with.

One :class:`Wiring` per :class:`~core.context.Context` (a fresh one for every Context, so
nothing is shared between processes' parts or between tests). ``bot/wiring.py`` fills it at
start-up in a visible order; adapters add what they serve while they run (their message
sender, their connection state, a webhook receiver). Core code reads it from ``ctx.wiring``:
no module keeps a registry, and nothing registers itself when imported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.outbox_contract import MessageSender
    from core.payments.fulfil import Fulfiller
    from core.pipeline.hooks import OnCompleted
    from core.pipeline.media import MediaResolver

Receiver = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Webhook:
    """A bot in webhook mode: the secret its platform sends, and where its updates go."""

    secret: str
    receive: Receiver


@dataclass
class Wiring:
    senders: dict[str, MessageSender] = field(default_factory=dict)  # platform → sender
    fulfillers: dict[str, Fulfiller] = field(default_factory=dict)  # invoice kind → fulfiller
    on_completed: list[OnCompleted] = field(default_factory=list)  # run in this order
    connected: dict[str, bool] = field(default_factory=dict)  # bot → connected to its platform
    webhooks: dict[str, Webhook] = field(default_factory=dict)  # platform → receiver
    resolver: MediaResolver | None = None  # None: the production one (X, via yt-dlp)

    # ------------------------------------------------------------ outbox senders

    def add_sender(self, sender: MessageSender) -> None:
        """An adapter delivers its platform's outbox messages from now on (it started)."""
        self.senders[sender.platform] = sender

    def remove_sender(self, platform: str) -> None:
        self.senders.pop(platform, None)

    # ------------------------------------------------------------ payments

    def add_fulfiller(self, kind: str, fulfiller: Fulfiller) -> None:
        self.fulfillers[kind] = fulfiller

    def fulfiller_for(self, kind: str) -> Fulfiller | None:
        return self.fulfillers.get(kind)

    # ------------------------------------------------------------ pipeline

    def add_on_completed(self, callback: OnCompleted) -> None:
        """Run ``callback`` when a Space's transcript is complete (once, however often added)."""
        if callback not in self.on_completed:
            self.on_completed.append(callback)

    # ------------------------------------------------------------ readiness

    def set_connected(self, name: str, connected: bool) -> None:
        """Adapters call this when they connect to (or lose) their platform."""
        self.connected[name] = connected

    def forget(self, name: str) -> None:
        """An adapter that stopped (process shutting down) no longer counts for readiness."""
        self.connected.pop(name, None)

    def bots(self) -> dict[str, bool]:
        return dict(self.connected)

    # ------------------------------------------------------------ webhooks

    def add_webhook(self, platform: str, secret: str, receive: Receiver) -> None:
        self.webhooks[platform] = Webhook(secret, receive)

    def remove_webhook(self, platform: str) -> None:
        self.webhooks.pop(platform, None)
