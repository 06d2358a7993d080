"""What yt-dlp's X Spaces extractor (``TwitterSpacesIE``) answered, in our terms.

Every outcome of the extractor maps to one :class:`Outcome`; the README's outcome table is
the same list. Structured fields are read first (``live_status``, formats, the HTTP status of
the failed request); only where yt-dlp gives nothing but a message are its exact words used
(they are pinned by ``tests/pipeline/test_x_outcomes.py`` against the pinned yt-dlp).
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

from core.pipeline.errors import PipelineError, SpaceUnavailable

# yt-dlp's exact messages (yt_dlp/extractor/twitter.py, TwitterSpacesIE / TwitterBaseIE)
MSG_NOT_FOUND = "Twitter Space not found"
MSG_REPLAY_DISABLED = "Twitter Space ended and replay is disabled"
MSG_NOT_STARTED = "Twitter Space not started yet"
MSG_NOT_DOWNLOADABLE = "Twitter Space ended but not downloadable yet"
MSG_NO_GUEST_TOKEN = "Could not retrieve guest token"
MSG_LOGIN = "not authorized"  # X's GraphQL error, raised by yt-dlp as "login required"

COOKIES_HINT = "X refuses us: set `transcription.cookies_file`"


class Outcome(StrEnum):
    READY = "ready"  # ended, replay downloadable
    NOT_FOUND = "not_found"
    PRIVATE = "private"
    NO_REPLAY = "no_replay"  # ended, replay disabled
    SCHEDULED = "scheduled"  # not started yet
    LIVE = "live"
    NOT_YET = "not_yet"  # ended, replay not downloadable yet
    REFUSED = "x_refuses_us"  # 403 / guest token refused / login required: operator problem
    UNREACHABLE = "unreachable"  # network: try later


WAITING = (Outcome.SCHEDULED, Outcome.LIVE, Outcome.NOT_YET)


class XRefusesUs(PipelineError):
    """X refuses this server (no guest token, 403, login required): the operator's problem."""

    code = "x_refuses_us"


class SpaceUnreachable(PipelineError):
    code = "space_unreachable"


class SpaceNotReady(PipelineError):
    """Live, scheduled, or ended with its replay not downloadable yet: wait, then ask again."""

    code = "space_waiting"

    def __init__(self, message: str, outcome: Outcome, since: float | None) -> None:
        super().__init__(message, retryable=True)
        self.outcome = outcome
        self.since = since  # unix time the wait is counted from (scheduled or actual start)


# ---------------------------------------------------------------- operator health

_refused_at: float | None = None


def note_refused() -> None:
    global _refused_at
    _refused_at = time.time()


def note_answered() -> None:
    global _refused_at
    _refused_at = None


def refused_since() -> float | None:
    """When X last refused this process (None: it answered since, or never refused)."""
    return _refused_at


# ---------------------------------------------------------------- classification

USER_TEXT = {
    Outcome.NOT_FOUND: "This Space does not exist or was deleted.",
    Outcome.PRIVATE: "This Space is private: its host's account is protected.",
    Outcome.NO_REPLAY: "This Space ended without a replay (its host did not record it): "
    "there is nothing to transcribe.",
    Outcome.SCHEDULED: "This Space has not started yet; it will be transcribed when it ends.",
    Outcome.LIVE: "This Space is live; it will be transcribed when it ends.",
    Outcome.NOT_YET: "This Space has ended and X is still preparing its replay; "
    "it will be transcribed as soon as the replay can be downloaded.",
    Outcome.REFUSED: "X refuses our requests right now (an operator problem). "
    "Nothing was charged; try again later.",
    Outcome.UNREACHABLE: "X could not be reached for this Space; nothing was charged. "
    "Try again in a few minutes.",
}


def outcome_of_info(info: dict[str, Any], warnings: list[str]) -> Outcome:
    """The outcome of an extraction that returned (``ignore_no_formats_error`` is on, so
    "no formats" comes back as ``live_status`` without formats plus a warning)."""
    status = info.get("live_status")
    has_media = bool(info.get("formats") or info.get("url"))
    if status == "is_upcoming":
        return Outcome.SCHEDULED
    if status == "is_live":
        return Outcome.LIVE
    if has_media:
        return Outcome.READY
    if any(MSG_REPLAY_DISABLED in w for w in warnings):
        return Outcome.NO_REPLAY
    if status == "post_live" or any(MSG_NOT_DOWNLOADABLE in w for w in warnings):
        return Outcome.NOT_YET
    # ended, replay allowed, but the playlist could not be read (yt-dlp reads it non-fatally)
    return Outcome.UNREACHABLE


def outcome_of_error(exc: BaseException, logged_in: bool) -> tuple[Outcome, str]:
    """The outcome of an extraction that raised (a yt-dlp DownloadError/ExtractorError)."""
    from yt_dlp.networking.exceptions import HTTPError, TransportError

    # DownloadError.exc_info holds what was being handled when the ExtractorError was made:
    # the network error itself (HTTPError, TransportError), or the ExtractorError
    inner: BaseException = exc
    info = getattr(exc, "exc_info", None)
    if info and info[1] is not None:
        inner = info[1]
    cause = inner if isinstance(inner, (HTTPError, TransportError)) else None
    cause = cause or getattr(inner, "cause", None)
    msg = str(exc).replace("ERROR: ", "").strip().splitlines()[0] if str(exc) else ""
    low = msg.lower()
    if isinstance(cause, HTTPError):
        if cause.status in (401, 403):
            return Outcome.REFUSED, msg
        if cause.status == 404:
            return Outcome.NOT_FOUND, msg
        return Outcome.UNREACHABLE, msg  # 429, 5xx: X is busy or down
    if isinstance(cause, TransportError):
        return Outcome.UNREACHABLE, msg
    if MSG_NOT_FOUND.lower() in low:
        return Outcome.NOT_FOUND, msg
    if "protected" in low or "private" in low:
        return Outcome.PRIVATE, msg
    if MSG_LOGIN in low or "registered users" in low:
        # with our cookies X still says no: the Space is closed to us, not our setup
        return (Outcome.PRIVATE if logged_in else Outcome.REFUSED), msg
    if MSG_NO_GUEST_TOKEN.lower() in low:
        return Outcome.REFUSED, msg
    if MSG_REPLAY_DISABLED.lower() in low:
        return Outcome.NO_REPLAY, msg
    if MSG_NOT_STARTED.lower() in low:
        return Outcome.SCHEDULED, msg
    if MSG_NOT_DOWNLOADABLE.lower() in low:
        return Outcome.NOT_YET, msg
    return Outcome.UNREACHABLE, msg


def error_for(outcome: Outcome, detail: str = "", since: float | None = None) -> PipelineError:
    """The exception the pipeline raises for an outcome that is not READY."""
    text = USER_TEXT[outcome]
    if outcome in (Outcome.NOT_FOUND, Outcome.PRIVATE, Outcome.NO_REPLAY):
        err: PipelineError = SpaceUnavailable(text, retryable=False)
        err.code = f"space_{outcome.value}"
        return err
    if outcome in WAITING:
        return SpaceNotReady(text, outcome, since)
    if outcome is Outcome.REFUSED:
        note_refused()
        return XRefusesUs(f"{COOKIES_HINT} ({detail[:160]})" if detail else COOKIES_HINT)
    return SpaceUnreachable(f"{text} ({detail[:160]})" if detail else text)
