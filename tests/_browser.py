"""Debian's Chromium, headless through Playwright, for the page tests (tests/test_app.py, tests/test_study_browser.py).

Skips on a user's machine without the browser or the test extra; fails instead when TALKINGHEAD_REQUIRE_BROWSER=1
(CI: .ci/run installs Chromium and sets it).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync")


def unavailable(reason: str) -> NoReturn:
    """Skip on a user's machine; fail in CI, which installs the browser."""
    if os.environ.get("TALKINGHEAD_REQUIRE_BROWSER") == "1":
        pytest.fail(f"the browser test must run here: {reason}")
    pytest.skip(reason)


@contextmanager
def chromium(profile: Path, width: int, height: int, needs: tuple[str, ...] = ()) -> Iterator:
    """A persistent Chromium context with its profile in ``profile`` and a ``width`` x ``height`` viewport;
    ``needs``: further modules the test imports (from the test extra), checked before the browser starts."""
    if not CHROMIUM.exists():
        unavailable(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it)")
    try:
        for module in needs:
            importlib.import_module(module)
        from playwright import sync_api as playwright_api
    except ImportError as error:
        unavailable(f"the browser test needs the test extra (pip install -e \".[test]\"): {error}")
    with playwright_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=list(ARGS),
            viewport={"width": width, "height": height})
        yield context
        context.close()
