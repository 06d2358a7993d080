"""The payment fixtures (anvil, the test token, a paying context) of tests/payments."""

from tests.payments.conftest import pay_ctx, recorded_spaces  # noqa: F401
