"""The browser tests must not depend on an idle machine (issue 10, finding 9): every
Playwright ``expect`` waits as long as page actions do, not its own 5 s default."""

from __future__ import annotations

import pytest


def test_browser_assertions_wait_as_long_as_page_actions():
    sync_api = pytest.importorskip("playwright.sync_api")
    import test_ui_browser as browser_tests

    assert browser_tests.TIMEOUT_MS >= 30_000
    # expect.set_options keeps the timeout on the shared `expect` object (None: the 5 s default).
    assert getattr(sync_api.expect, "_timeout", None) == browser_tests.TIMEOUT_MS
