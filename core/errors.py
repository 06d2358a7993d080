"""The root of spacescribe's exceptions. Each carries a user-safe message.

Refusals a user causes (bad link, unpaid Space, wrong payment) are *outcomes*, returned as
values with a reason code; these exceptions are for what callers cannot go on from.
"""


class SpacescribeError(Exception):
    """Root class. ``str(err)`` is safe to show to a user or operator."""

    code = "error"


class ConfigError(SpacescribeError):
    code = "config"


class InvalidInput(SpacescribeError, ValueError):
    """User input that was refused; the message says what is expected."""

    code = "invalid_input"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code
