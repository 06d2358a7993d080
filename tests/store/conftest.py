"""Fixtures of the storefront tests: headless Chromium as the pay-page tests start it."""

from tests.paypage.conftest import browser  # noqa: F401 (fixture)
