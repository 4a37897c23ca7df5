"""Fixtures of the SDK tests."""

from __future__ import annotations

from tests.sdk.browser_app import app_page, browser

__all__ = ["app_page", "browser"]
