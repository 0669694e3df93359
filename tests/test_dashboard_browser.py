"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright, in
the same event loop as the engine.  The page opens from the link with the token, its
charts and numbers update, a switch stops a source in the engine, the Mint button mints
a bundle that is then listed with its public part, and a screenshot is saved."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import running_dashboard

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright is in the test extra"
)
if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed (scripts/test installs it)", allow_module_level=True
    )


TEXT_IS = "([sel, text]) => document.querySelector(sel).textContent === text"
TAIL_HAS = (
    "([sel, word]) => [...document.querySelectorAll(sel)].some(li => li.textContent.includes(word))"
)


async def until(predicate: Callable[[], Any], timeout: float = 60.0) -> None:
    """Poll a condition on the engine while the browser works (a bounded wait)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


async def painted_pixels(page: Any, selector: str) -> int:
    """How many pixels of a canvas are not transparent (the chart really drew)."""
    return await page.eval_on_selector(
        selector,
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }""",
    )


def test_dashboard_in_chromium(tmp_path: Path) -> None:
    screenshot = tmp_path / "dashboard.png"
    passphrase = "browser test passphrase"

    async def scenario() -> None:
        async with (
            running_dashboard(tmp_path / "home") as (engine, server),
            playwright_api.async_playwright() as pw,
        ):
            context = await pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=str(CHROMIUM),
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": 1440, "height": 900},
            )
            try:
                await browse(context, engine, server)
            finally:
                await context.close()

    async def browse(context: Any, engine: Any, server: Any) -> None:
        errors: list[str] = []
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(server.control_url)
        assert "token=" not in page.url  # read once, then removed from the address bar
        await page.wait_for_function(
            "() => Number(document.body.dataset.updates || 0) >= 3", timeout=30_000
        )
        assert (await page.text_content("#control-mode")) == "control enabled"
        assert (await page.text_content("#connection")) == "live"

        # numbers update
        cell = 'tr[data-source="cpu-jitter"] td.samples'
        first = await page.text_content(cell)
        await page.wait_for_function(
            "([sel, old]) => document.querySelector(sel).textContent !== old",
            arg=[cell, first],
            timeout=30_000,
        )
        fingerprint = await page.text_content("#pool-fingerprint")
        assert fingerprint is not None and len(fingerprint) == 16 and int(fingerprint, 16) >= 0
        fill = await page.text_content("#pool-fill")
        assert fill is not None and fill.endswith("%")

        # charts hold points and are drawn: pool, conditioned output, one per source
        for selector in (
            'canvas[data-chart="pool-credit"]',
            'canvas[data-chart="pool-output"]',
            'canvas[data-chart="source:cpu-jitter"]',
            'canvas[data-chart="source:os-rng"]',
        ):
            await page.wait_for_function(
                "sel => Number(document.querySelector(sel).dataset.points) >= 2",
                arg=selector,
                timeout=30_000,
            )
            assert await painted_pixels(page, selector) > 500, selector
        draws = int(await page.get_attribute('canvas[data-chart="pool-credit"]', "data-draws") or 0)
        await page.wait_for_function(
            "n => Number(document.querySelector('[data-chart=\"pool-credit\"]').dataset.draws) > n",
            arg=draws,
            timeout=30_000,
        )
        assert await page.locator("#compare-bars .bar-row").count() >= 3

        # a switch stops the source in the engine, and the page shows it
        await page.click('tr[data-source="system"] input.switch')
        await until(lambda: engine.source_states()["system"]["state"] == "stopped")
        assert engine.source_states()["system"]["enabled"] is False
        await page.wait_for_function(
            TEXT_IS, arg=['tr[data-source="system"] .state', "stopped"], timeout=30_000
        )
        assert not await page.is_checked('tr[data-source="system"] input.switch')
        await page.wait_for_function(TAIL_HAS, arg=["#log-tail li", "stopped"], timeout=30_000)
        # and on again: keys need credit from two independent sources (the key quorum)
        await page.click('tr[data-source="system"] input.switch')
        await until(lambda: engine.source_states()["system"]["state"] == "ok")

        # the Mint button mints a bundle, which is listed with a link to its public part
        await page.select_option("#mint-kem", "ML-KEM-768")
        await page.fill("#mint-passphrase", passphrase)
        # the first mint creates the identity: the passphrase is asked twice
        await page.wait_for_selector("#mint-confirm-label:not([hidden])")
        await page.fill("#mint-confirm", passphrase)
        await page.wait_for_function(
            "() => !document.querySelector('#mint-button').disabled", timeout=30_000
        )
        await page.click("#mint-button")
        row = page.locator("#bundles tbody tr")
        await row.first.wait_for(timeout=120_000)
        bundle_id = await row.first.get_attribute("data-bundle")
        assert bundle_id and (tmp_path / "home" / "keys" / f"bundle-{bundle_id}.json").exists()
        link = await row.first.locator("a").get_attribute("href")
        assert link == f"/api/bundles/{bundle_id}/public"
        assert await page.input_value("#mint-passphrase") == ""  # cleared after the mint
        await page.wait_for_function(TAIL_HAS, arg=["#audit-tail li", "mint"], timeout=30_000)
        public = await context.new_page()
        await public.goto(server.url.rstrip("/") + link)
        text = await public.inner_text("body")
        doc = json.loads(text)
        assert doc["id"] == bundle_id and doc["kem"]["algorithm"] == "ML-KEM-768"
        assert '"secret_key"' not in text and "ciphertext" not in text
        await public.close()

        # a page opened without the token is read-only
        readonly = await context.new_page()  # a new tab: its own, empty sessionStorage
        await readonly.goto(server.url)
        await readonly.wait_for_function(
            "() => Number(document.body.dataset.updates || 0) >= 1", timeout=30_000
        )
        assert await readonly.text_content("#control-mode") == "read-only"
        assert await readonly.is_visible("#readonly-notice")
        assert await readonly.is_disabled('tr[data-source="cpu-jitter"] input.switch')
        assert await readonly.is_disabled("#mint-button")
        await readonly.close()

        await page.evaluate("() => window.scrollTo(0, 0)")
        await page.wait_for_timeout(1200)
        await page.screenshot(path=str(screenshot), full_page=True)
        assert not errors, errors

    asyncio.run(scenario())
    assert screenshot.stat().st_size > 10_000
    keep = os.environ.get("CHAOS_TEST_OUTPUT")
    if keep:  # e.g. CI: keep the screenshot where a person can look at it
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(keep) / "dashboard-browser.png")


def test_nodes_panel_shows_link_states_in_chromium(tmp_path: Path) -> None:
    """A node whose port is a pty it may not open: the page shows its link `waiting` with
    the reason and its sources `waiting`, never `ok`; the pty receives nothing."""
    import pty
    import select

    from chaosmagnet.nodes.boards import load_board
    from chaosmagnet.nodes.registry import NodeRecord
    from chaosmagnet.nodes.sources import build_node_sources
    from dashboard_helpers import local_sources

    master, slave = pty.openpty()
    board = load_board("um_feathers3")
    record = NodeRecord(
        "stray", bytes(range(8)), bytes(32), board.name, os.ttyname(slave), False,
        board.node_sources_config(), serial_number="SN-DESK",
    )  # fmt: skip

    async def scenario() -> None:
        sources = [*local_sources(), *build_node_sources(record)]
        async with (
            running_dashboard(tmp_path / "home", sources=sources) as (engine, server),
            playwright_api.async_playwright() as pw,
        ):
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                page = await browser.new_page()
                await page.goto(server.url)
                link = 'tr[data-node="stray"] .pill.link'
                await page.wait_for_selector(link, timeout=30_000)
                assert await page.text_content(link) == "waiting"
                assert await page.get_attribute(link, "data-link") == "waiting"
                row = await page.text_content('tr[data-node="stray"]')
                assert row is not None and "port now belongs to another device" in row
                pills = await page.locator('tr[data-node="stray"] .pill.state').all_text_contents()
                assert pills == ["adc waiting", "rng waiting", "jitter waiting"]
                state = await page.text_content('tr[data-source="node:stray:adc"] .state')
                assert state == "waiting"
            finally:
                await browser.close()

    try:
        asyncio.run(scenario())
        assert select.select([master], [], [], 0.2)[0] == []  # nothing was written to the pty
    finally:
        os.close(master)
        os.close(slave)


def test_dependence_card_shows_a_group_and_why_in_chromium(tmp_path: Path) -> None:
    """A group held by the engine's dependence tracker: the Dependence card lists its
    members, the credited member and the evidence; each source's note says how it is credited."""
    from chaosmagnet.dependence import PairResult

    async def scenario() -> None:
        async with (
            running_dashboard(tmp_path / "home") as (engine, server),
            playwright_api.async_playwright() as pw,
        ):
            tracker = engine.dependence
            evidence = PairResult(
                "cpu-jitter", "system", 0.0, 0.13, 4.6e-8, 0.02, 240, 0.4, 0, "mean", 1e-3, 9.2e-8, True, "mi"
            )
            # what a test that found the pair leaves behind (the first real test is tens of seconds away)
            tracker._dependent[("cpu-jitter", "system")] = evidence  # noqa: SLF001
            tracker._tested_at[("cpu-jitter", "system")] = float("inf")  # noqa: SLF001
            tracker._regroup({"cpu-jitter": 2.0, "system": 1.0})  # noqa: SLF001
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                page = await browser.new_page()
                await page.goto(server.url)
                row = 'tr[data-group="cpu-jitter+system"]'
                await page.wait_for_selector(row, timeout=30_000)
                text = await page.text_content(row)
                assert text is not None and "cpu-jitter + system" in text
                assert "p 9.2e-8" in text and "MI 0.130 bits over 240 bins" in text and "lag 0 s" in text
                assert await page.is_hidden("#dependence-empty")
                note = await page.text_content('tr[data-source="system"] .reason')
                assert note is not None and "credited once via cpu-jitter" in note
                note = await page.text_content('tr[data-source="cpu-jitter"] .reason')
                assert note is not None and "credited for group cpu-jitter+system" in note
            finally:
                await browser.close()

    asyncio.run(scenario())
