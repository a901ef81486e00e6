"""The console in Debian's headless Chromium, driven by Playwright, against a real stack.

Playwright's own browser download cannot work offline, so the tests launch the system
Chromium (``/usr/bin/chromium``); ``make test`` installs it through tools/install-test-deps.sh.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, sync_playwright

from shipyard.local.harness import Stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver (sync API)."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session", autouse=True)
def chromium() -> Path:
    """Debian's Chromium; checked before any stack starts, and never skipped silently."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium, which "
                    "`make test` installs via tools/install-test-deps.sh (or run "
                    "`bash tools/install-test-deps.sh` yourself)", pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(playwright: Playwright, chromium: Path) -> Iterator[Browser]:
    """Debian's Chromium, headless; never Playwright's downloaded browsers."""
    launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page (own context, so no token left in localStorage by another test).

    Uncaught JavaScript errors on the page fail the test.
    """
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    if errors:
        pytest.fail(f"uncaught JavaScript errors on the console page: {errors}", pytrace=False)


SCREENS = Path(os.environ.get("SHIPYARD_SCREENSHOT_DIR")
               or Path(__file__).parents[2] / ".test-artifacts" / "screens")


@pytest.fixture
def screenshot(page: Page) -> Callable[[str], Path]:
    """Save the whole page as ``<name>.png`` among the test artifacts (SHIPYARD_SCREENSHOT_DIR, or
    .test-artifacts/screens in the checkout); the path."""

    def take(name: str) -> Path:
        SCREENS.mkdir(parents=True, exist_ok=True)
        target = SCREENS / f"{name}.png"
        page.screenshot(path=str(target), full_page=True)
        assert target.stat().st_size > 0
        return target

    return take


@pytest.fixture
def signed_in(stack: Stack, page: Page) -> Page:
    """The page, signed in as the first admin through the sign-in form, on the dashboard."""
    page.goto(f"{stack.http_url}/")
    page.locator("#token").fill(stack.admin_token())
    page.locator("#login button[type=submit]").click()
    page.wait_for_url(f"{stack.http_url}/")
    return page
