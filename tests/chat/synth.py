"""Synthetic 3-hour Spaces with known facts at random times (evaluation set for retrieval).

Filler talk reuses the facts' common words (budget, launch, partner, audit, ...) so a fact is
found by what is specific to it, as in a real Space, not by any word at all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

SPEAKERS = ["Alice", "Bob", "Carol", "Dmitri", "Erin"]
FILLER = (
    "so the budget conversation keeps coming back every week",
    "we talked about the launch plans and the partner program",
    "honestly the audit process takes longer than anyone expects",
    "the community wants more updates about the roadmap and the token",
    "I think the market is choppy but builders keep building",
    "let me add one thing about liquidity and the bridge",
    "there was a question in the chat about the release schedule",
    "the team is hiring engineers and designers this quarter",
    "we should do another space next week with the developers",
    "governance votes have been slow and turnout is low",
    "the conference in the summer was great for the ecosystem",
    "security matters more than speed when you move real money",
    "people keep asking about fees and the wallet experience",
    "the numbers look better than last month for sure",
)
SYLLABLES = ["zor", "qua", "mil", "vex", "tan", "ro", "ki", "lum", "dra", "pex", "nor", "shi"]
MONTHS = ["January", "March", "May", "July", "September", "November"]
COMPANIES = ["Halvorsen Labs", "Quintrix", "Brightforge", "Oakmere Capital", "Nimbusline"]

TEMPLATES = [
    (
        "the budget for project {x} is exactly {n} thousand dollars",
        "What is the budget for project {x}?",
        "{n} thousand",
    ),
    ("the launch of {x} moves to {m}", "When is the launch of {x}?", "{m}"),
    (
        "our partner for the {x} bridge audit is {c}",
        "Who is the partner for the {x} bridge audit?",
        "{c}",
    ),
    (
        "the {x} token supply will be capped at {n} million",
        "What is the cap of the {x} token supply?",
        "{n} million",
    ),
]


@dataclass(frozen=True)
class Fact:
    space_index: int
    at: float
    sentence: str
    question: str
    answer: str


def entity(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(3))


def make_space(
    rng: random.Random, space_index: int, hours: float = 3.0, n_facts: int = 4
) -> tuple[list[dict[str, Any]], list[Fact]]:
    duration = hours * 3600
    segments: list[dict[str, Any]] = []
    t = 0.0
    while t < duration:
        length = rng.uniform(8, 16)
        text = ". ".join(rng.sample(FILLER, 2)).capitalize() + "."
        segments.append(
            {"start": t, "end": t + length, "speaker": rng.choice(SPEAKERS), "text": text}
        )
        t += length
    facts = []
    for _ in range(n_facts):
        tpl, q, a = rng.choice(TEMPLATES)
        vals = {
            "x": entity(rng),
            "n": rng.randint(11, 999),
            "m": rng.choice(MONTHS),
            "c": rng.choice(COMPANIES),
        }
        at = rng.uniform(0, duration - 30)
        sentence = "And a key point: " + tpl.format(**vals) + "."
        i = min(range(len(segments)), key=lambda k: abs(segments[k]["start"] - at))
        segments[i] = {**segments[i], "text": sentence}
        facts.append(
            Fact(space_index, segments[i]["start"], sentence, q.format(**vals), a.format(**vals))
        )
    return segments, facts
