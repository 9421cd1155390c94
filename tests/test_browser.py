"""End to end in a real browser: JupyterLab on localhost, the explorer notebook in headless Chromium.

Uses Debian's chromium (``.ci/run`` installs it) driven by Playwright with
``executable_path``; no browser is downloaded. Skips only where no Chromium
binary exists.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "semkit-browser-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on 127.0.0.1 serving a smoke-parameterized copy of the explorer notebook."""
    root = tmp_path / "lab"
    root.mkdir()
    papermill.execute_notebook(
        NOTEBOOKS / "04_explorer.ipynb", root / "explorer.ipynb", parameters={"smoke": True, "store": str(tmp_path / "maps")},
        prepare_only=True, progress_bar=False,
    )
    port = _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}", "--allow-root",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "wb"), env=env, cwd=root,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    pytest.fail(f"JupyterLab did not start: {(tmp_path / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()


def run_all_cells(page) -> None:
    """Run > Run All Cells, again where a click left the cells unrun (seen in long suites: no cell ever started)."""
    from playwright.sync_api import expect

    started = page.locator(".jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]"))
    for _ in range(3):
        page.locator(".jp-Notebook").click()
        page.keyboard.press("Escape")
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            expect(started.first).to_be_attached(timeout=30_000)
            return
        except AssertionError:
            continue
    pytest.fail("Run > Run All Cells never started a cell of the explorer notebook")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (Debian: apt-get install chromium; .ci/run does)")
def test_explorer_in_jupyterlab(jupyterlab, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"{jupyterlab}/lab/tree/explorer.ipynb?token={TOKEN}")
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
            expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_be_attached(timeout=60_000)
            run_all_cells(page)
            top1 = page.locator(".semkit-top1")
            expect(top1).to_be_visible(timeout=240_000)
            before = page.locator(".semkit-prediction").inner_text()
            assert "azimuth 30" in before

            readout = page.locator(".widget-slider").first.locator(".widget-readout")
            readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("250")
            page.keyboard.press("Enter")
            expect(page.locator(".semkit-prediction")).to_contain_text("azimuth 250", timeout=60_000)
            after = page.locator(".semkit-prediction").inner_text()
            assert after != before
            news = page.get_by_role("button", name="No", exact=True)
            if news.count():
                news.click()

            # click the map: the view moves there, the sliders follow
            picture = page.locator(".semkit-map img")
            expect(picture).to_have_attribute("src", re.compile("^data:image/png"), timeout=120_000)
            picture.scroll_into_view_if_needed()
            box = picture.bounding_box()
            page.mouse.click(box["x"] + 0.5 * box["width"], box["y"] + 0.45 * box["height"])
            expect(page.locator(".semkit-prediction")).not_to_contain_text("azimuth 250", timeout=60_000)
            clicked = page.locator(".semkit-prediction").inner_text()
            assert re.search(r"azimuth \d+", clicked) and clicked != after
            # the arrow keys step the cursor where the map has focus
            page.keyboard.press("ArrowLeft")
            expect(page.locator(".semkit-prediction")).not_to_have_text(clicked, timeout=60_000)

            # a trust button: its answer is said and drawn on the map
            drawn = picture.get_attribute("src")
            page.get_by_role("button", name="find failures").click()
            expect(page.locator(".semkit-answer")).to_contain_text("criterion", timeout=180_000)
            expect(picture).not_to_have_attribute("src", drawn, timeout=60_000)
            page.locator(".semkit-answer").scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "explorer.png"))
            assert (tmp_path / "explorer.png").stat().st_size > 20_000
            shutil.copy(tmp_path / "explorer.png", os.environ.get("SEMKIT_SCREENSHOT", tmp_path / "explorer-copy.png"))
        finally:
            browser.close()
