"""X (Twitter) Space ids and links: parse, validate, canonicalise.

Only ids of exactly 13 ASCII letters/digits pass, and the only URL ever built from one is
``https://x.com/i/spaces/<id>``: user input never reaches a path, a URL or a query as is.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from core.errors import InvalidInput

SPACE_ID_RE = re.compile(r"[A-Za-z0-9]{13}")
_HOSTS = {
    "x.com",
    "twitter.com",
    "mobile.x.com",
    "mobile.twitter.com",
    "www.x.com",
    "www.twitter.com",
}
_MAX_INPUT = 2048
HELP = (
    "A Space link looks like https://x.com/i/spaces/1RDxlAoOeQRKL "
    "(or a bare 13-character id such as 1RDxlAoOeQRKL)."
)


class InvalidSpace(InvalidInput):
    code = "invalid_space"


def canonical_url(space_id: str) -> str:
    return f"https://x.com/i/spaces/{validate_id(space_id)}"


def validate_id(space_id: str) -> str:
    if not isinstance(space_id, str) or not SPACE_ID_RE.fullmatch(space_id):
        raise InvalidSpace(f"That is not a Space id. {HELP}")
    return space_id


def parse_space(text: str) -> str:
    """Return the validated Space id from a bare id or an X/Twitter Space link."""
    if not isinstance(text, str):
        raise InvalidSpace(f"No Space given. {HELP}")
    s = text.strip().strip("<>")  # Discord/Telegram may wrap links in <>
    if not s:
        raise InvalidSpace(f"No Space given. {HELP}")
    if len(s) > _MAX_INPUT:
        raise InvalidSpace(f"That link is too long. {HELP}")
    if SPACE_ID_RE.fullmatch(s):
        return s
    candidate = s if "://" in s else "https://" + s
    try:
        parts = urlsplit(candidate)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        raise InvalidSpace(f"That link could not be read. {HELP}") from None
    if parts.scheme not in ("http", "https") or host not in _HOSTS or port not in (None, 443, 80):
        raise InvalidSpace(f"Only X (Twitter) Space links are accepted. {HELP}")
    if parts.username or parts.password:
        raise InvalidSpace(f"Only X (Twitter) Space links are accepted. {HELP}")
    segs = [p for p in parts.path.split("/") if p]
    # /i/spaces/<id>[/peek|/...]   or   /i/broadcasts? no: Spaces only.
    if len(segs) >= 3 and segs[0] == "i" and segs[1] == "spaces":
        sid = segs[2]
        if SPACE_ID_RE.fullmatch(sid):
            return sid
        raise InvalidSpace(f"That link does not contain a valid Space id. {HELP}")
    raise InvalidSpace(f"That is not a Space link. {HELP}")


def space_dir(root: Path, space_id: str) -> Path:
    """``<root>/<space_id>``; the id is validated, so the result never leaves ``root``."""
    d = (root / validate_id(space_id)).resolve()
    if d.parent != root.resolve():
        raise InvalidSpace("Space id escapes the data directory")
    return d
