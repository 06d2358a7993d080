"""Synthetic Spaces with known topics: a topic holds the floor for a stretch of minutes, with
its own vocabulary; talk runs at about 150 words a minute (a real Space's pace), so token
counts are realistic. Deterministic for a seed."""

from __future__ import annotations

import random
from typing import Any

SPEAKERS = ["Alice", "Bob", "Carol", "Dmitri"]
TOPICS: dict[str, list[str]] = {
    "bridge security": (
        [
            "bridge",
            "audit",
            "exploit",
            "validators",
            "multisig",
            "security",
            "incident",
            "patch",
            "firewall",
            "attackers",
            "bounty",
            "disclosure",
        ]
    ),
    "token launch": (
        [
            "token",
            "launch",
            "airdrop",
            "supply",
            "vesting",
            "listing",
            "exchange",
            "allocation",
            "emissions",
            "unlock",
            "schedule",
            "liquidity",
        ]
    ),
    "developer tooling": (
        [
            "compiler",
            "debugger",
            "tooling",
            "testnet",
            "framework",
            "documentation",
            "sdk",
            "libraries",
            "deployment",
            "scripts",
            "indexer",
        ]
    ),
    "governance": (
        [
            "governance",
            "proposal",
            "voting",
            "quorum",
            "delegates",
            "treasury",
            "council",
            "referendum",
            "constitution",
            "ballots",
            "turnout",
        ]
    ),
    "hiring and community": (
        [
            "hiring",
            "engineers",
            "designers",
            "community",
            "moderators",
            "ambassadors",
            "meetups",
            "conference",
            "workshops",
            "mentorship",
            "volunteers",
        ]
    ),
    "stablecoin payments": (
        [
            "stablecoin",
            "payments",
            "merchants",
            "invoices",
            "settlement",
            "remittances",
            "wallets",
            "checkout",
            "fees",
            "chargebacks",
            "compliance",
        ]
    ),
}
FRAMES = [
    "I think the {a} question really comes down to {b} and how we handle {c}",
    "so on {a} we shipped a change last week and {b} looks much better now",
    "people keep asking me about {a} and honestly {b} is the part that worries me",
    "my view is that {a} without {b} is going nowhere, and {c} proves it",
    "let me add one thing about {a}: the {b} numbers surprised everyone",
    "we should publish a post about {a} and explain the {b} plan in detail",
    "the hard part of {a} is {b}, not {c}, whatever the critics say",
    "if you look at {a} over the last month, {b} doubled and {c} stayed flat",
]


def make_space(
    hours: float, seed: int = 7, topic_minutes: tuple[float, float] = (12, 25)
) -> tuple[list[dict[str, Any]], list[tuple[float, str]]]:
    """Segments, and the true topic changes as (start seconds, topic)."""
    rng = random.Random(seed)
    duration = hours * 3600
    names = list(TOPICS)
    changes: list[tuple[float, str]] = []
    t = 0.0
    while t < duration:
        topic = rng.choice([n for n in names if not changes or n != changes[-1][1]])
        changes.append((t, topic))
        t += rng.uniform(*topic_minutes) * 60
    segments: list[dict[str, Any]] = []
    t, ci, speaker = 0.0, 0, rng.choice(SPEAKERS)
    while t < duration:
        while ci + 1 < len(changes) and changes[ci + 1][0] <= t:
            ci += 1
        vocab = TOPICS[changes[ci][1]]
        n = rng.randint(1, 3)
        text = " ".join(
            rng.choice(FRAMES)
            .format(**dict(zip("abc", rng.sample(vocab, 3), strict=True)))
            .capitalize()
            + "."
            for _ in range(n)
        )
        length = len(text.split()) / 2.5  # 150 words a minute
        segments.append(
            {"start": round(t, 3), "end": round(t + length, 3), "speaker": speaker, "text": text}
        )
        t += length + rng.uniform(0.2, 1.0)
        if rng.random() < 0.4:
            speaker = rng.choice(SPEAKERS)
    return segments, changes
