"""Answer backends: ``openai`` (cited, token-bounded prompt) and ``extractive`` (no key).

Both return an :class:`AnswerDraft` whose sources are the passages it cites, so the
service records and shows exactly what the answer rests on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openai import AsyncOpenAI

from core.chat import prompt as prompts
from core.chat.prompt import SpaceRef, timestamp
from core.chat.retrieve import Hit
from core.chat.terms import terms
from core.context import Context
from core.metrics import CHAT_TOKENS

EXTRACTIVE_MODEL = "extractive"
EXTRACTIVE_QUOTES = 3
EXCERPT_CHARS = 400
MAX_ANSWER_TOKENS = 600


class AnswerUnavailable(Exception):
    """The model could not answer (down, timeout, empty): nothing is charged."""


@dataclass(frozen=True)
class SourceDraft:
    space_id: str
    start: float
    end: float
    speaker: str | None
    excerpt: str
    url: str

    def as_json(self) -> dict[str, Any]:
        """The seed's ``sources`` entry ({spaceId, excerpt}) plus start/end/speaker/url."""
        return {
            "spaceId": self.space_id,
            "excerpt": self.excerpt,
            "start": self.start,
            "end": self.end,
            "speaker": self.speaker,
            "url": self.url,
        }


@dataclass(frozen=True)
class AnswerDraft:
    answer: str
    sources: list[SourceDraft]
    model: str
    tokens_used: int
    prompt_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1].rstrip() + "…"


def excerpt(text: str, words: list[str] | None = None) -> str:
    """The passage's line that best matches ``words`` (with its neighbours as room allows),
    so the excerpt shows the fact, not the start of a one-minute window."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not words or len(lines) < 2:
        return _clip(text)
    stems = [w[:5] for w in words]

    def score(line: str) -> int:
        toks = line.lower().split()
        return sum(any(t.startswith(st) for t in toks) for st in stems)

    best = max(range(len(lines)), key=lambda i: (score(lines[i]), -i))
    lo = hi = best
    size = len(lines[best])
    while True:  # grow around the best line while it fits
        grew = False
        if hi + 1 < len(lines) and size + len(lines[hi + 1]) < EXCERPT_CHARS:
            hi += 1
            size += len(lines[hi])
            grew = True
        if lo > 0 and size + len(lines[lo - 1]) < EXCERPT_CHARS:
            lo -= 1
            size += len(lines[lo])
            grew = True
        if not grew:
            break
    return _clip(" ".join(lines[lo : hi + 1]))


def source_of(hit: Hit, space: SpaceRef, words: list[str] | None = None) -> SourceDraft:
    return SourceDraft(
        space_id=space.space_id,
        start=hit.start,
        end=hit.end,
        speaker=", ".join(hit.speakers) or None,
        excerpt=excerpt(hit.text, words),
        url=space.url,
    )


def extractive(question: str, hits: list[Hit], spaces: dict[int, SpaceRef]) -> AnswerDraft:
    best = hits[:EXTRACTIVE_QUOTES]
    if not best:
        text = "No AI model is configured, and no passage of these Spaces matches your question."
        return AnswerDraft(text, [], EXTRACTIVE_MODEL, 0)
    lines = ["No AI model is configured, so here are the passages that best match your question:"]
    sources = []
    for n, hit in enumerate(best, 1):
        sp = spaces[hit.space_pk]
        src = source_of(hit, sp, terms(question))
        sources.append(src)
        who = f" {src.speaker}" if src.speaker else ""
        lines.append(f"[{n}] Space {sp.space_id} at {timestamp(hit.start)}{who}: “{src.excerpt}”")
    return AnswerDraft("\n".join(lines), sources, EXTRACTIVE_MODEL, 0)


def client(ctx: Context) -> AsyncOpenAI:
    key = ctx.secrets.openai_api_key
    return AsyncOpenAI(
        api_key=key.get_secret_value() if key else None,
        base_url=ctx.secrets.openai_base_url or None,
        timeout=ctx.settings.chat.timeout_seconds,
        max_retries=2,
    )


async def with_openai(
    ctx: Context, question: str, hits: list[Hit], spaces: dict[int, SpaceRef]
) -> AnswerDraft:
    model = ctx.settings.chat.model
    p = prompts.build(
        question, hits, spaces, model=model, max_tokens=ctx.settings.chat.max_prompt_tokens
    )
    try:
        async with client(ctx) as c:
            resp = await c.chat.completions.create(
                model=model,
                messages=p.messages,  # type: ignore[arg-type]
                max_tokens=MAX_ANSWER_TOKENS,
                temperature=0,
            )
    except Exception as e:  # any API/network failure: the question is not charged
        raise AnswerUnavailable(f"{type(e).__name__}: {e}") from e
    content = (resp.choices[0].message.content or "").strip() if resp.choices else ""
    if not content:
        raise AnswerUnavailable("the model returned an empty answer")
    text, order = prompts.cited(content, len(p.passages))
    words = terms(question)
    sources = [
        source_of(p.passages[n - 1], spaces[p.passages[n - 1].space_pk], words) for n in order
    ]
    used = resp.usage.total_tokens if resp.usage else p.tokens
    CHAT_TOKENS.labels(model=model).inc(int(used))
    return AnswerDraft(text, sources, model, int(used), prompt_tokens=p.tokens)


async def answer(
    ctx: Context, question: str, hits: list[Hit], spaces: dict[int, SpaceRef]
) -> AnswerDraft:
    if ctx.settings.chat.backend == "extractive" or not ctx.openai_enabled:
        return extractive(question, hits, spaces)
    return await with_openai(ctx, question, hits, spaces)
