"""/chat, /search, split by what each module owns:

- :mod:`~core.service.chat.asking`: the checks every entry point shares (access, limits,
  price — decided before any model sees a transcript), the quote, and the paid answer;
- :mod:`~core.service.chat.recording`: a paid answer's ``chat_sessions`` row and the
  ``chat_answer`` message that brings it;
- :mod:`~core.service.chat.fulfilment`: payments' "chat_query" fulfiller (answer after the
  payment is verified and before it is settled, record in the crediting transaction, or
  leave the answer owed);
- :mod:`~core.service.chat.delivery`: the answer a ``chat_answer`` message carries (an owed
  one produced then), a recorded answer shown again to its buyer only;
- :mod:`~core.service.chat.searching`: titles and participants for everyone, passages in
  owned Spaces.

The names callers use are re-exported here.
"""

from core.service.chat.asking import (
    RETRIEVE_LIMIT,
    Checked,
    answer,
    ask,
    clean_question,
    validate,
)
from core.service.chat.delivery import (
    UNANSWERED,
    answer_for,
    answer_of,
    answers_on,
    delivered_answer,
    valid_answer_id,
)
from core.service.chat.fulfilment import draft_from_json, draft_to_json, fulfiller
from core.service.chat.recording import record_answer
from core.service.chat.searching import (
    MAX_SEARCH_CHARS,
    SEARCH_LIMIT,
    SEARCH_OWNED_SPACES,
    search,
    titled,
)

__all__ = [
    "MAX_SEARCH_CHARS",
    "RETRIEVE_LIMIT",
    "SEARCH_LIMIT",
    "SEARCH_OWNED_SPACES",
    "UNANSWERED",
    "Checked",
    "answer",
    "answer_for",
    "answer_of",
    "answers_on",
    "ask",
    "clean_question",
    "delivered_answer",
    "draft_from_json",
    "draft_to_json",
    "fulfiller",
    "record_answer",
    "search",
    "titled",
    "valid_answer_id",
    "validate",
]
