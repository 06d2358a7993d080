"""Token counts with the model's own BPE tables, offline (bpe-openai embeds them; tiktoken
would download them at first use, which this deployment cannot rely on)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import bpe_openai

# chat message framing (role markers, separators) per OpenAI's counting recipe
PER_MESSAGE = 4
PER_REPLY = 3


@lru_cache(maxsize=8)
def _encoding(model: str) -> Any:
    try:
        return bpe_openai.encoding_for_model(model)
    except Exception:  # unknown or custom model name: the newer, larger table
        return bpe_openai.get_encoding("o200k_base")


def count(text: str, model: str = "gpt-4o") -> int:
    return len(_encoding(model).encode(text))


def count_messages(messages: list[dict[str, str]], model: str = "gpt-4o") -> int:
    return PER_REPLY + sum(PER_MESSAGE + count(m["content"], model) for m in messages)


def truncate(text: str, max_tokens: int, model: str = "gpt-4o") -> str:
    enc = _encoding(model)
    ids = enc.encode(text)
    if len(ids) <= max_tokens:
        return text
    return str(enc.decode(ids[:max_tokens])).rstrip() + " …"
