"""Pipeline errors: a user-safe message, and whether trying again later may help."""

from core.errors import SpacescribeError


class PipelineError(SpacescribeError):
    code = "pipeline"

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class SpaceUnavailable(PipelineError):
    """The Space cannot be transcribed (live, not recorded, private, gone)."""

    code = "space_unavailable"
