"""Fixtures of the storefront tests: headless Chromium, the real web server on the session's
anvil chain and a test browser wallet, as the pay-page tests have them."""

from tests.paypage.conftest import browser, wallet_page, web  # noqa: F401 (fixtures)
