"""Question → a bounded set of search terms, safe for FTS5 MATCH and to_tsquery.

Terms are ASCII/Unicode word characters only (no operators, quotes or column filters can
come from the user), lower-cased, stop-words dropped, at most MAX_TERMS of MAX_TERM_CHARS.
The expression is still passed as a bound parameter.
"""

from __future__ import annotations

import re

MAX_TERMS = 12
MAX_TERM_CHARS = 40
_WORD = re.compile(r"[^\W_]+", re.UNICODE)

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "said",
        "same",
        "say",
        "says",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "tell",
        "talk",
        "talked",
        "mention",
        "mentioned",
        "space",
        "spaces",
        "anyone",
        "someone",
        "something",
        "did",
        "does",
        "discuss",
        "discussed",
    ]
)


def terms(question: str) -> list[str]:
    seen: list[str] = []
    for word in _WORD.findall(question.lower()):
        if len(word) < 2 or word in STOPWORDS or len(word) > MAX_TERM_CHARS:
            continue
        if word not in seen:
            seen.append(word)
        if len(seen) >= MAX_TERMS:
            break
    return seen


def fts5_expression(words: list[str]) -> str:
    """``"a" OR "b"``: each term a quoted FTS5 string (terms hold no quotes by construction)."""
    return " OR ".join(f'"{w}"' for w in words)


def tsquery_expression(words: list[str]) -> str:
    """``a | b`` for ``to_tsquery('english', ...)`` (stemmed and stop-word filtered there)."""
    return " | ".join(words)
