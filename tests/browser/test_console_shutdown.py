"""Stopping a stack while the console is open in a browser: the gateway ends the console's event
streams and stops within the supervisor's grace period, and browsers going away are no errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from shipyard.local.harness import Stack

pytestmark = pytest.mark.browser


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack of this test's own, which the test stops itself."""
    running = Stack(tmp_path / "data", env={"SHIPYARD_PATH_IMPORT_ROOTS": ""}).start()
    try:
        yield running
    finally:
        running.stop()


def _sign_in(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.http_url}/")
    page.locator("#token").fill(stack.admin_token())
    page.locator("#login button[type=submit]").click()
    page.wait_for_url(f"{stack.http_url}/")


def _errors(log: Path) -> list[dict[str, object]]:
    """The gateway log's records at ERROR or above (the log is JSON, one record a line)."""
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [r for r in records if r.get("level") in ("error", "critical")]


def test_ctrl_c_with_the_console_open_stops_the_gateway_without_errors(own_stack: Stack, page: Page) -> None:
    _sign_in(own_stack, page)
    for path in ("/runs", "/activity", "/"):  # each page opens a stream; leaving it closes that one
        page.goto(f"{own_stack.http_url}{path}")
        expect(page.locator("[sse-connect]").first).to_be_attached()
    assert own_stack.stop() == 0
    said = (own_stack.data_dir / "up.out").read_text()
    assert "gateway did not stop" not in said, said[-2000:]
    assert _errors(own_stack.data.logs / "gateway.log") == []
